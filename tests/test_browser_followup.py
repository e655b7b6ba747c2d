"""Following up by email, in a real browser: a visitor chats, the merchant
answers in the inbox, composes a follow-up from a template, previews and sends
it, and watches it become "sent"; a second email threads under the first.

Same set-up as ``test_browser.py`` (Debian's Chromium through Playwright, a
live werkzeug server, the local test mailbox) plus the embedded outbox worker
that delivers the queued emails. The visitor and the merchant each have their
own browser context. Screenshots go to ``tests/artifacts/followup-*.png``.
"""
from __future__ import annotations

import re

import pytest
from browser_helpers import (
    LiveApp,
    choose_local_mailbox,
    complete_pre_chat_form,
    expect,
    fill_smtp,
    serve_live,
    shot,
    sign_up,
    step,
    url_is,
)

from wizard.devmailbox.store import list_messages

VISITOR_NAME = "Ada Lovelace"
VISITOR_EMAIL = "ada@visitor.example.com"
SLOW_MS = 15_000  # an email's way through the worker and back into the polled timeline


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port with the local test mailbox and an outbox worker."""
    with serve_live(tmp_path_factory.mktemp("browser-followup"), with_worker=True) as app:
        yield app


def set_up_email(page, live: LiveApp, store: str, owner: str) -> str:
    """Sign up and walk the wizard to saved settings for the local test mailbox; returns the chat page URL."""
    sign_up(page, live, store, owner)
    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    choose_local_mailbox(page)
    expect(step(page, "smtp")).to_be_visible()
    fill_smtp(page)
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(step(page, "test")).to_be_visible()
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#result[data-category=ok]")).to_be_visible()
    page.locator("#save-button").click()
    expect(page).to_have_url(url_is(live, "/wizard/send"))
    return page.get_by_role("link", name="Your chat page").get_attribute("href")


def start_chat(page, live: LiveApp, chat_path: str, message: str) -> None:
    page.goto(live.url(chat_path))
    page.get_by_label("Your name").fill(VISITOR_NAME)
    page.get_by_label("Your email").fill(VISITOR_EMAIL)
    page.get_by_label("How can we help?").fill(message)
    page.get_by_role("button", name="Start chat").click()
    expect(page.locator("p.msg-ok")).to_contain_text("conversation has started")


def timeline_email(page, index: int):
    return page.locator("#timeline li.email").nth(index)


def test_visitor_chats_and_the_merchant_follows_up_by_email(live, new_page, artifacts):
    _merchant_context, merchant = new_page()
    chat_path = set_up_email(merchant, live, "Blue Fern Followup Shop", "owner@followup-browser.example.com")

    # The visitor, in a browser of their own: the pre-chat form, then a second message through htmx.
    _visitor_context, visitor = new_page()
    start_chat(visitor, live, chat_path, "Do you ship to Oslo?")
    visitor.get_by_label("Your message").fill("And is gift wrap free?")
    visitor.get_by_role("button", name="Send").click()
    expect(visitor.locator("ol.chat-log li.from-visitor")).to_have_count(2)
    expect(visitor.get_by_label("Your message")).to_have_value("")
    expect(visitor).to_have_url(url_is(live, chat_path))
    shot(visitor, artifacts, "followup-01-visitor-chat.png")

    # The merchant finds the conversation in the inbox (the list refreshes itself).
    merchant.get_by_role("link", name="Inbox", exact=True).click()
    expect(merchant).to_have_url(url_is(live, "/inbox"))
    row = merchant.locator("#inbox-list tr[data-conversation-id]", has_text=VISITOR_NAME)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Awaiting reply")
    expect(row).to_contain_text("And is gift wrap free?")
    merchant.get_by_label("Awaiting your reply").check()  # htmx filter, URL pushed
    expect(merchant).to_have_url(re.compile(re.escape(live.url("/inbox?awaiting=1")) + "$"))
    expect(row).to_have_count(1)
    shot(merchant, artifacts, "followup-02-inbox.png")
    row.get_by_role("link", name=VISITOR_NAME).click()
    conversation_url = merchant.url
    expect(merchant.locator("#timeline")).to_contain_text("Do you ship to Oslo?")
    expect(merchant.locator("#timeline")).to_contain_text("The visitor is on your site now.")

    # A chat reply reaches the visitor's page by polling.
    merchant.get_by_label("Reply in the chat").fill("Yes, Oslo takes 3 days, and gift wrap is free.")
    merchant.get_by_role("button", name="Send in chat").click()
    expect(merchant.locator("#timeline li.chat.from-merchant")).to_have_count(1)
    expect(merchant.get_by_label("Reply in the chat")).to_have_value("")
    expect(visitor.locator("ol.chat-log li.from-merchant")).to_contain_text("gift wrap is free")
    shot(merchant, artifacts, "followup-03-conversation.png")
    visitor.close()  # the visitor leaves the site

    # A follow-up from the template: preview, then send.
    merchant.get_by_role("link", name="Follow-up", exact=True).click()
    expect(merchant.locator("#inbox-view[data-view=compose]")).to_be_visible()
    expect(merchant.get_by_label("Subject")).to_have_value("Your chat with {store_name}")
    body = merchant.get_by_label("Message", exact=True)
    expect(body).to_have_value(re.compile(r"\{last_messages\}"))
    body.fill(body.input_value().replace("Anything else you would like to know?",
                                         "Your order can leave today if you like."))
    merchant.get_by_role("button", name="Preview").click()
    preview = merchant.locator("#preview")
    expect(preview).to_be_visible()
    expect(merchant.locator("#preview-subject")).to_have_text("Your chat with Blue Fern Followup Shop")
    expect(merchant.locator("#preview-text")).to_contain_text(f"Hi {VISITOR_NAME},")
    expect(merchant.locator("#preview-text")).to_contain_text("> You: Do you ship to Oslo?")
    frame = merchant.frame_locator("#preview-html")
    expect(frame.locator("blockquote")).to_contain_text("Do you ship to Oslo?")
    expect(frame.locator("p", has_text="can leave today")).to_have_count(1)
    # Chromium paints a sandboxed frame only once it has been on screen.
    merchant.locator("#preview-html").scroll_into_view_if_needed()
    shot(merchant, artifacts, "followup-04-preview.png")
    merchant.get_by_role("button", name="Send email").click()
    expect(merchant).to_have_url(conversation_url)
    expect(merchant.locator("#inbox-view .flash-success")).to_contain_text(f"is queued for {VISITOR_EMAIL}")
    first = timeline_email(merchant, 0)
    expect(first).to_have_attribute("data-status", "sent", timeout=SLOW_MS)
    expect(first.locator("code.queue-id")).to_have_text(re.compile(r"\S+"))
    shot(merchant, artifacts, "followup-05-sent.png")

    # A second email, written straight away: it answers the first.
    merchant.get_by_role("link", name="Support reply", exact=True).click()
    expect(merchant.locator("#inbox-view[data-view=compose][data-kind=support_reply]")).to_be_visible()
    body = merchant.get_by_label("Message", exact=True)
    body.fill(body.input_value().replace("[Write your answer here.]", "Gift wrap is free on every order."))
    merchant.get_by_role("button", name="Send email").click()
    expect(merchant).to_have_url(conversation_url)
    second = timeline_email(merchant, 1)
    expect(second).to_have_attribute("data-status", "sent", timeout=SLOW_MS)
    shot(merchant, artifacts, "followup-06-second-sent.png")

    # The local test mailbox got both; the second threads under the first.
    received = list_messages(live.app.config["DEV_MAILBOX_DIR"])
    by_subject = {m.subject: m for m in received if VISITOR_EMAIL in m.envelope_to}
    follow_up = by_subject["Your chat with Blue Fern Followup Shop"]
    reply = by_subject["Re: your question to Blue Fern Followup Shop"]
    assert reply.in_reply_to == follow_up.message_id
    assert follow_up.message_id in (reply.references or "")
    assert "Your order can leave today" in follow_up.text_body
    assert "Gift wrap is free on every order." in reply.text_body
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)


def test_without_javascript_chat_and_email_still_work(live, new_page, artifacts):
    """No JS on either side: plain form posts and reloads give the same results."""
    _merchant_context, merchant = new_page(java_script_enabled=False)
    chat_path = set_up_email(merchant, live, "Blue Fern No-Script Inbox", "owner@noscript-inbox.example.com")

    _visitor_context, visitor = new_page(java_script_enabled=False)
    start_chat(visitor, live, chat_path, "Can I pay by invoice?")
    visitor.get_by_label("Your message").fill("For a company order.")
    visitor.get_by_role("button", name="Send").click()
    expect(visitor).to_have_url(url_is(live, chat_path))
    expect(visitor.locator("ol.chat-log li.from-visitor")).to_have_count(2)

    merchant.goto(live.url("/inbox"))
    merchant.get_by_label("Has an email address").check()
    merchant.get_by_role("button", name="Apply filters").click()
    expect(merchant).to_have_url(re.compile(re.escape(live.url("/inbox?email=1")) + "$"))
    merchant.locator("#inbox-list tr[data-conversation-id]").get_by_role("link", name=VISITOR_NAME).click()
    merchant.get_by_label("Reply in the chat").fill("Yes, invoices are fine.")
    merchant.get_by_role("button", name="Send in chat").click()
    expect(merchant.locator("#timeline li.chat.from-merchant")).to_contain_text("invoices are fine")
    visitor.get_by_role("link", name="Check for new replies").click()
    expect(visitor.locator("ol.chat-log li.from-merchant")).to_contain_text("invoices are fine")

    merchant.get_by_role("link", name="Order update", exact=True).click()
    merchant.get_by_label("Order number").fill("A-2002")
    merchant.get_by_label("Carrier").fill("Posten")
    merchant.get_by_label("Tracking link").fill("https://track.example/A-2002")
    merchant.get_by_label("Subject").fill("")
    merchant.get_by_role("button", name="Send email").click()
    # Refused beside the field; what was typed is still there.
    expect(merchant.locator("#subject-errors [data-code=subject_empty]")).to_be_visible()
    expect(merchant.get_by_label("Order number")).to_have_value("A-2002")
    merchant.get_by_label("Subject").fill("Your order {order_number}")
    merchant.get_by_role("button", name="Preview").click()
    expect(merchant.locator("#preview-subject")).to_have_text("Your order A-2002")
    shot(merchant, artifacts, "followup-07-nojs-preview.png")
    merchant.get_by_role("button", name="Send email").click()
    email = timeline_email(merchant, 0)
    expect(email).to_be_visible()
    for _ in range(60):  # no polling without JS: reload until the worker is done
        if email.get_attribute("data-status") == "sent":
            break
        merchant.wait_for_timeout(250)
        merchant.reload()
    expect(email).to_have_attribute("data-status", "sent")
    shot(merchant, artifacts, "followup-08-nojs-sent.png")
    assert new_page.problems.items == [], "\n".join(new_page.problems.items)
