"""Replies come back, in a real browser (Debian's Chromium, Playwright).

On embedded defaults — the local test mailbox, the outbox worker and the
inbound SMTP server with the local inbound domain, as ``serve`` runs them —
a merchant sends a follow-up, opens it in the local test mailbox, clicks
"Reply as the visitor", and the reply appears in the conversation they have
open in another tab, without reloading. Screenshots: ``tests/artifacts/replies-*.png``.
"""
from __future__ import annotations

import pytest
from browser_helpers import expect, serve_live, shot
from test_browser_followup import SLOW_MS, VISITOR_EMAIL, set_up_email, start_chat, timeline_email

from wizard.devmailbox.store import list_messages


@pytest.fixture(scope="module")
def live_replies(tmp_path_factory):
    with serve_live(tmp_path_factory.mktemp("browser-replies"), with_worker=True, with_inbound=True,
                    INBOX_REPLY_POLL_SECONDS=1) as app:
        yield app


def test_the_visitors_emailed_reply_appears_in_the_open_conversation(live_replies, new_page, artifacts):
    live = live_replies
    context, merchant = new_page()
    chat_path = set_up_email(merchant, live, "Blue Fern Replies Shop", "owner@replies-browser.example.com")
    _visitor_context, visitor = new_page()
    start_chat(visitor, live, chat_path, "Do you ship to Oslo?")
    visitor.close()  # the visitor leaves; the conversation goes on by email

    merchant.goto(live.url("/inbox"))
    merchant.locator("#inbox-list tr[data-conversation-id] a").first.click()
    merchant.get_by_role("link", name="Follow-up", exact=True).click()
    merchant.get_by_role("button", name="Send email").click()
    expect(timeline_email(merchant, 0)).to_have_attribute("data-status", "sent", timeout=SLOW_MS)
    conversation_url = merchant.url

    # The follow-up in the local test mailbox carries the conversation's reply address.
    [message] = [m for m in list_messages(live.app.config["DEV_MAILBOX_DIR"]) if VISITOR_EMAIL in m.envelope_to]
    mailbox = context.new_page()
    mailbox.goto(live.url(f"/dev/mailbox/{message.key}"))
    expect(mailbox.get_by_role("heading", name="Reply as the visitor")).to_be_visible()
    mailbox.get_by_label("Your reply, as the visitor").fill("Perfect, please send it to Oslo on Monday.")
    shot(mailbox, artifacts, "replies-01-reply-as-visitor.png")

    # The merchant's conversation tab stays open; the reply shows up there by itself.
    mailbox.get_by_role("button", name="Reply as the visitor").click()
    expect(mailbox.locator(".flash-success")).to_contain_text("Replied as the visitor")
    mailbox.close()
    assert merchant.url == conversation_url
    reply = merchant.locator("#timeline li.chat.by-email")
    expect(reply).to_have_count(1, timeout=SLOW_MS)
    expect(reply).to_contain_text("replied by email")
    expect(reply).to_contain_text("Perfect, please send it to Oslo on Monday.")
    expect(reply).not_to_contain_text("wrote:")  # the quoted history is gone
    shot(merchant, artifacts, "replies-02-reply-in-conversation.png")

    # It counts as awaiting the merchant's reply.
    merchant.goto(live.url("/inbox?awaiting=1"))
    expect(merchant.locator("#inbox-list tr[data-conversation-id]")).to_have_count(1)
