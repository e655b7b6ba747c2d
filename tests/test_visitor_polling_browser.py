"""Adaptive polling in a real browser (static/chat-poll.js under the CSP): every 2 s
while the chat is active, every 15 s once it has been quiet for a minute, every
30 s while the tab is hidden, and fast again the moment the visitor types or the
merchant answers.

The page's clock is Playwright's fake clock, advanced a second at a time; after
each second the test waits until no htmx request is in flight, so it counts the
polls the page sends without sleeping. Same live server as ``test_browser.py``.
"""
from __future__ import annotations

import pytest
from browser_helpers import expect, serve_live
from sqlmodel import Session, select

from wizard.chat import conversations
from wizard.models import Conversation, Store

COUNT_POLLS = """() => {
  window.chatPolls = 0;
  document.addEventListener("htmx:beforeSend", (event) => {
    if (event.detail.elt && event.detail.elt.id === "chat-log") { window.chatPolls += 1; }
  });
}"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_live(tmp_path_factory.mktemp("browser-polling")) as app:
        with Session(app.app.extensions["db_engine"]) as db:
            db.add(Store(name="Polling Shop", slug="polling-shop"))
            db.commit()
        yield app


def advance(page, seconds: int) -> None:
    for _ in range(seconds):
        page.clock.run_for(1000)
        page.wait_for_function("() => !document.querySelector('.htmx-request')")


def polls_during(page, seconds: int) -> int:
    before = page.evaluate("() => window.chatPolls")
    advance(page, seconds)
    return page.evaluate("() => window.chatPolls") - before


def test_polling_backs_off_when_idle_or_hidden_and_speeds_up_on_activity(live, new_page):
    _context, page = new_page()
    page.clock.install()
    page.goto(live.url("/s/polling-shop/chat"))
    page.get_by_label("How can we help?").fill("Is the blue vase still available?")
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("#chat-log")).to_contain_text("Is the blue vase still available?")
    page.evaluate(COUNT_POLLS)
    with page.expect_request(lambda request: "/chat/messages?" in request.url) as polled:
        advance(page, 3)
    assert polled.value.url.endswith("&emails=1-0")  # which emails the page watches rides along (hx-vals)

    assert 8 <= polls_during(page, 20) <= 11  # active: every 2 s
    advance(page, 45)  # a minute without anything new
    assert 3 <= polls_during(page, 60) <= 5  # idle: every 15 s
    assert page.locator("#chat-log").get_attribute("data-poll-mode") == "slow"

    page.get_by_label("Your message").press_sequentially("Hel")
    assert polls_during(page, 10) >= 4  # typing makes it fast again

    advance(page, 65)
    with Session(live.app.extensions["db_engine"]) as db:
        conversation = db.exec(select(Conversation).order_by(Conversation.id.desc())).first()
        conversations.add_message(db, conversation, "merchant", "Yes, one left in stock.")
    advance(page, 16)  # the next slow poll brings the answer…
    expect(page.locator("#chat-log")).to_contain_text("Yes, one left in stock.")
    assert polls_during(page, 10) >= 4  # … and the interval is back to 2 s

    page.evaluate("""() => {
      Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert 1 <= polls_during(page, 60) <= 3  # hidden: every 30 s
    page.evaluate("""() => {
      Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
      document.dispatchEvent(new Event("visibilitychange"));
    }""")
    assert polls_during(page, 10) >= 4
