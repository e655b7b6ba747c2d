"""axe-core (bundled by axe-playwright-python, runs offline) on every page a merchant
or a customer meets: each wizard step (and its states: a live Fix, a finished test,
the confirm panel, a sent email, the summary), the home page (and its menus at 390 px), troubleshooting, the inbox, a
conversation, compose with its preview, the visitor's chat page and the
unsubscribe page. Zero violations each."""
from __future__ import annotations

import pytest
from browser_helpers import (
    choose_local_mailbox,
    complete_pre_chat_form,
    expect,
    fill_smtp,
    sign_up,
    step,
)
from sqlmodel import select

from wizard.models import Store
from wizard.web.unsubscribe import unsubscribe_token

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - the test extras ship it
    Axe = None


def assert_no_violations(page, where: str) -> None:
    results = Axe().run(page)
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


def test_no_axe_violations_anywhere(live, new_page):
    if Axe is None:
        pytest.fail("axe-playwright-python is not installed (pip install -e '.[test]')")
    _context, page = new_page()
    sign_up(page, live, "Axe Candles", "owner@axe.example.com")
    assert_no_violations(page, "step 1")
    complete_pre_chat_form(page)
    expect(step(page, "provider")).to_be_visible()
    assert_no_violations(page, "step 2")
    choose_local_mailbox(page)
    expect(step(page, "smtp")).to_be_visible()
    assert_no_violations(page, "step 3")
    page.get_by_label("Port", exact=True).fill("465")
    expect(page.locator("#feedback-port [data-code=port_security_mismatch]")).to_be_visible()
    assert_no_violations(page, "step 3 with a Fix and its button")
    page.get_by_role("button", name="Find my settings").click()
    expect(page.locator("#detect-results ul.detected")).to_be_visible()
    assert_no_violations(page, "step 3 with Find my settings' results")
    page.get_by_label("Port", exact=True).fill(str(live.mailbox_port))
    expect(page.locator("#feedback-port [data-code=port_security_mismatch]")).to_have_count(0)
    fill_smtp(page)
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(step(page, "test")).to_be_visible()
    assert_no_violations(page, "step 4")
    page.get_by_role("button", name="Save without a passing test…").click()
    expect(page.locator(".confirm")).to_be_visible()
    assert_no_violations(page, "step 4's confirm panel")
    page.get_by_role("link", name="Cancel").click()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#result[data-status=finished]")).to_have_attribute("data-category", "ok")
    assert_no_violations(page, "step 4 with a passed test")
    page.locator("#save-button").click()
    expect(step(page, "send")).to_be_visible()
    assert_no_violations(page, "step 5")
    page.get_by_role("button", name="Send test email").click()
    expect(page.locator("#result")).to_have_attribute("data-category", "ok")
    assert_no_violations(page, "step 5 with a sent email and the checklist")
    page.get_by_role("link", name="Finish").click()
    expect(step(page, "done")).to_be_visible()
    assert_no_violations(page, "the summary")
    page.goto(live.url("/"))
    expect(page.locator("#email-health")).to_have_attribute("data-state", "tested")
    assert_no_violations(page, "the home page")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("details.nav-menu summary").click()
    page.locator("details.account-menu summary").click()
    assert_no_violations(page, "the home page at 390 px with both menus open")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live.url("/troubleshooting"))
    assert_no_violations(page, "troubleshooting")
    page.goto(live.url("/inbox"))
    assert_no_violations(page, "the empty inbox")

    # A visitor writes on the store's chat page.
    with live.app.app_context():
        from wizard.db import get_session

        store = get_session().exec(select(Store).where(Store.name == "Axe Candles")).one()
        slug, store_id = store.slug, store.id
    _visitor_context, visitor = new_page()
    visitor.goto(live.url(f"/s/{slug}/chat"))
    assert_no_violations(visitor, "the chat page")
    visitor.get_by_label("Your email").fill("ada@example.com")
    visitor.get_by_label("How can we help?").fill("Do you ship to Oslo?")
    visitor.get_by_role("button", name="Start chat").click()
    expect(visitor.locator("p.msg-ok")).to_contain_text("conversation has started")
    assert_no_violations(visitor, "the chat page with a conversation")
    with live.app.app_context():
        token = unsubscribe_token(store_id, "ada@example.com")
    visitor.goto(live.url(f"/u/{token}"))
    assert_no_violations(visitor, "the unsubscribe page")

    page.goto(live.url("/inbox"))
    page.locator("#inbox-list tr[data-conversation-id] a").first.click()
    expect(page.locator("#inbox-view[data-view=conversation]")).to_be_visible()
    assert_no_violations(page, "a conversation")
    page.goto(page.url + "/compose?kind=follow_up")
    expect(page.locator("#inbox-view[data-view=compose]")).to_be_visible()
    assert_no_violations(page, "compose")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_be_visible()
    assert_no_violations(page, "compose with its preview")
    assert new_page.problems.items == []
