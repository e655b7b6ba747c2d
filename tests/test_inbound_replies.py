"""Replies come back: the reply address, the inbound SMTP server, matching,
bounces and auto-replies, the timeline and the unmatched list."""
from __future__ import annotations

import smtplib
from email.utils import make_msgid

import pytest
from inbound_helpers import (
    INBOUND_DOMAIN,
    chat_messages,
    engine_of,
    gmail_style_reply,
    inbound_rows,
    inbound_server,
    outbox_row,
    reply_to_of,
    saved_settings_for,
    send_to,
    sent_follow_up,
    store_with_conversation,
)
from sqlmodel import Session, select

from wizard.inbound.ingest import DUPLICATE, IMPORTED, UNMATCHED, ingest
from wizard.models import ChatMessage, Store
from wizard.models.outbox import BOUNCED, SENT, Suppression
from wizard.outbox import queue
from wizard.outbox.messages import build_message
from wizard.outbox.reply_addresses import store_reply_address


def dsn(original_message_id: str, recipient: str, *, status: str = "5.1.1", action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes one."""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: support@shop.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.example.net")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered to {recipient}.

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; 550 {status} User unknown

--BOUNDARY
Content-Type: text/rfc822-headers

From: Shop <support@shop.example.com>
To: {recipient}
Subject: About your order
Message-ID: {original_message_id}

--BOUNDARY--
""".replace("\n", "\r\n").encode()


def test_a_follow_up_carries_its_conversations_reply_address(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    address = reply_to_of(app, conversation_id)
    assert email.reply_to == address and address.endswith("@" + INBOUND_DOMAIN) and address.startswith("reply+")
    message = build_message(email)
    assert message["Reply-To"] == address
    assert message["From"].addresses[0].addr_spec == "support@alpha.example.com"  # the merchant stays the sender
    # A second email of the same conversation has the same address; another conversation another one.
    assert sent_follow_up(app, store_id, conversation_id, "k2").reply_to == address
    _other_store, other_conversation = store_with_conversation(app, "beta")
    assert reply_to_of(app, other_conversation) != address


def test_the_inbound_server_takes_only_known_reply_addresses(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    sent_follow_up(app, store_id, conversation_id, "k1")
    good = reply_to_of(app, conversation_id)
    with inbound_server(app) as server:
        for refused in ("postmaster@" + INBOUND_DOMAIN, "reply+" + "a" * 32 + "@" + INBOUND_DOMAIN,
                        good.replace(INBOUND_DOMAIN, "elsewhere.example"), "someone@gmail.com"):
            with pytest.raises(smtplib.SMTPRecipientsRefused) as no:
                send_to(server, gmail_style_reply(refused, None, "hi"), [refused])
            code, text = no.value.recipients[refused]
            assert code == 550, text
    assert inbound_rows(app) == []


def test_a_reply_lands_once_in_its_conversation_without_the_quoted_history(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    reply = gmail_style_reply(reply_to_of(app, conversation_id), email, "Yes please, send it to Oslo.")
    with inbound_server(app) as server:
        assert send_to(server, reply) == {}
        assert send_to(server, reply) == {}  # delivered twice (a retry): stored once
    (row,) = inbound_rows(app)
    assert (row.store_id, row.conversation_id, row.kind, row.matched_by, row.source) == (
        store_id, conversation_id, "message", "token", "smtp")
    assert row.outbox_email_id == email.id and row.sender == "ada@example.com"
    visitor = [m for m in chat_messages(app, conversation_id) if m.inbound_email_id == row.id]
    assert [(m.author, m.body) for m in visitor] == [("visitor", "Yes please, send it to Oslo.")]


def test_without_a_token_the_reply_is_matched_by_its_references_within_the_store(app):
    store_a, conversation_a = store_with_conversation(app, "alpha")
    store_b, conversation_b = store_with_conversation(app, "beta")
    email_a = sent_follow_up(app, store_a, conversation_a, "a1", inbound_domain=None)
    email_b = sent_follow_up(app, store_b, conversation_b, "b1", inbound_domain=None)
    with Session(engine_of(app), expire_on_commit=False) as session:
        # Fetched from store A's mailbox (IMAP): a reply to A's email.
        first = ingest(session, gmail_style_reply("support@alpha.example.com", email_a, "Thanks!").as_bytes(),
                       source="imap", store_id=store_a, keep_unmatched=False)
        assert first.outcome == IMPORTED and first.email.conversation_id == conversation_a
        assert first.email.matched_by == "references"
        # A reply to store B's email found in store A's mailbox is never filed in A (nor in B from A's fetch).
        stray = ingest(session, gmail_style_reply("support@alpha.example.com", email_b, "Wrong shop").as_bytes(),
                       source="imap", store_id=store_a, keep_unmatched=False)
        assert stray.outcome == UNMATCHED
        # A token of store A with References to store B's email: the token decides, B learns nothing.
        mixed = gmail_style_reply(reply_to_of(app, conversation_a), email_b, "Token wins")
        assert ingest(session, mixed.as_bytes(), source="smtp").email.conversation_id == conversation_a
    assert [m.body for m in chat_messages(app, conversation_b) if m.inbound_email_id] == []


def test_the_next_email_answers_the_visitors_reply(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    reply = gmail_style_reply(reply_to_of(app, conversation_id), email, "And to Bergen?",
                              message_id="<visitor-1@mail.gmail.com>")
    with Session(engine_of(app), expire_on_commit=False) as session:
        assert ingest(session, reply.as_bytes(), source="smtp").outcome == IMPORTED
    answer = sent_follow_up(app, store_id, conversation_id, "k2")
    assert answer.in_reply_to == "<visitor-1@mail.gmail.com>"
    assert answer.references.split() == [email.message_id, "<visitor-1@mail.gmail.com>"]


def test_an_auto_reply_is_a_note_that_never_awaits_an_answer(app, merchant):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    away = gmail_style_reply(reply_to_of(app, conversation_id), email, "I am away until Monday.")
    away.replace_header("Subject", "Automatic reply: About your order")
    away["Auto-Submitted"] = "auto-replied"
    with Session(engine_of(app), expire_on_commit=False) as session:
        result = ingest(session, away.as_bytes(), source="smtp")
    assert result.outcome == IMPORTED and result.email.kind == "auto_reply"
    # No visitor message: the merchant spoke last, so the conversation does not await a reply.
    assert chat_messages(app, conversation_id)[-1].author == "merchant"


def test_a_permanent_bounce_marks_the_email_and_stops_further_mail(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    with Session(engine_of(app), expire_on_commit=False) as session:
        result = ingest(session, dsn(email.message_id, "ada@example.com"), source="imap", store_id=store_id,
                        keep_unmatched=False)
    assert result.outcome == IMPORTED and result.email.kind == "bounce"
    bounced = outbox_row(app, email.id)
    assert bounced.status == BOUNCED and bounced.last_category == "recipient_rejected"
    assert "does not exist" in bounced.last_reply_text
    with Session(engine_of(app), expire_on_commit=False) as session:
        assert session.exec(select(Suppression).where(Suppression.store_id == store_id)).one().reason == "hard_bounce"
        store = session.get(Store, store_id)
        with pytest.raises(queue.SuppressedAddress):  # follow-ups too, not only reminders
            queue.enqueue(session, store=store, kind="follow_up", recipient="ada@example.com", subject="Again",
                          body_text="x", body_html="<p>x</p>", idempotency_key="k9", conversation=conversation_id)


def test_a_delayed_bounce_is_only_a_note_and_a_forged_one_suppresses_nobody(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    with Session(engine_of(app), expire_on_commit=False) as session:
        delayed = ingest(session, dsn(email.message_id, "ada@example.com", status="4.4.7", action="delayed"),
                         source="imap", store_id=store_id)
        assert delayed.outcome == IMPORTED and delayed.email.bounce_action == "delayed"
        forged = ingest(session, dsn(email.message_id, "someone-else@example.com"), source="imap", store_id=store_id)
        assert forged.outcome == IMPORTED
        assert session.exec(select(Suppression)).all() == []
    assert outbox_row(app, email.id).status in (SENT, BOUNCED)


def test_the_merchant_sees_the_reply_in_the_timeline_and_can_open_the_original(app, merchant, chatting):
    from helpers import CHAT, store_id_of

    store_id = store_id_of(app, merchant.email)
    visitor, conversation_id = chatting
    saved_settings_for(app, store_id)
    email = sent_follow_up(app, store_id, conversation_id, "web-1")
    reply = gmail_style_reply(reply_to_of(app, conversation_id), email, "Lovely, thank you!")
    reply.make_alternative()
    reply.add_alternative('<p>Lovely, thank you!</p><img src="https://tracker.example/pixel.gif">'
                          '<script>alert(1)</script><a href="javascript:alert(2)">x</a>', subtype="html")
    with Session(engine_of(app), expire_on_commit=False) as session:
        result = ingest(session, reply.as_bytes(), source="smtp")
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "replied by email" in page and "Lovely, thank you!" in page
    assert merchant.get("/inbox?awaiting=1").get_data(as_text=True).count(f"/inbox/{conversation_id}") >= 1
    original = merchant.get(f"/inbox/{conversation_id}/emails/{result.email.id}")
    assert original.status_code == 200 and "Remote images are blocked" in original.get_data(as_text=True)
    frame = merchant.get(f"/inbox/{conversation_id}/emails/{result.email.id}/html")
    html = frame.get_data(as_text=True)
    assert "Lovely, thank you!" in html and "<script" not in html and "javascript:" not in html
    assert "tracker.example" not in html  # no tracking pixel unless asked
    assert "default-src 'none'" in frame.headers["Content-Security-Policy"]
    assert "tracker.example" in merchant.get(f"/inbox/{conversation_id}/emails/{result.email.id}/html?images=1"
                                             ).get_data(as_text=True)
    # The visitor, back on the chat page, sees the exchange by email.
    visitor_page = visitor.get(CHAT).get_data(as_text=True)
    assert "emailed you" in visitor_page and "Lovely, thank you!" in visitor_page


def test_another_stores_member_cannot_open_an_inbound_email(app, merchant, chatting):
    from conftest import sign_up
    from helpers import store_id_of

    _visitor, conversation_id = chatting
    store_id = store_id_of(app, merchant.email)
    saved_settings_for(app, store_id)
    email = sent_follow_up(app, store_id, conversation_id, "web-2")
    with Session(engine_of(app), expire_on_commit=False) as session:
        result = ingest(session, gmail_style_reply(reply_to_of(app, conversation_id), email, "Mine").as_bytes(),
                        source="smtp")
    other = sign_up(app.test_client(), email="owner@other.example.com", store="Other Shop")
    for path in (f"/inbox/{conversation_id}/emails/{result.email.id}",
                 f"/inbox/{conversation_id}/emails/{result.email.id}/html"):
        assert other.get(path).status_code == 404


def test_mail_to_the_stores_own_address_waits_in_the_unmatched_list_until_filed(app, merchant, chatting):
    from helpers import store_id_of

    _visitor, conversation_id = chatting
    store_id = store_id_of(app, merchant.email)
    with Session(engine_of(app), expire_on_commit=False) as session:
        address = store_reply_address(session, session.get(Store, store_id), INBOUND_DOMAIN)
    stray = gmail_style_reply(address, None, "Is my parcel on its way?", sender="someone@example.org")
    with inbound_server(app) as server:
        send_to(server, stray)
    (row,) = inbound_rows(app)
    assert row.store_id == store_id and row.conversation_id is None
    page = merchant.get("/inbox/unmatched").get_data(as_text=True)
    assert "Is my parcel on its way?" in page
    filed = merchant.post("/inbox/unmatched", {"email_id": row.id, "conversation_id": conversation_id})
    assert filed.status_code == 302
    with Session(engine_of(app), expire_on_commit=False) as session:
        messages = session.exec(select(ChatMessage).where(ChatMessage.inbound_email_id == row.id)).all()
    assert [(m.conversation_id, m.body) for m in messages] == [(conversation_id, "Is my parcel on its way?")]
    assert "Nothing waiting" in merchant.get("/inbox/unmatched").get_data(as_text=True)


def test_a_message_stored_twice_by_two_paths_is_one(app):
    store_id, conversation_id = store_with_conversation(app, "alpha")
    email = sent_follow_up(app, store_id, conversation_id, "k1")
    reply = gmail_style_reply(reply_to_of(app, conversation_id), email, "Once only").as_bytes()
    with Session(engine_of(app), expire_on_commit=False) as session:
        assert ingest(session, reply, source="smtp").outcome == IMPORTED
        assert ingest(session, reply, source="imap", store_id=store_id).outcome == DUPLICATE
    assert len(inbound_rows(app)) == 1
