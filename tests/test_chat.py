"""The visitor's side of the chat: after the pre-chat form, messages both ways,
with htmx (polled message list, sends without reload) and without JavaScript."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import Session

from wizard.models import Contact, utcnow

from helpers import CHAT, MESSAGES, Visitor, chat_bodies, conversation_row, enable_prechat, set_last_seen, start_chat


def test_visitor_writes_without_javascript(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    page = visitor.get(CHAT).get_data(as_text=True)
    assert "Do you ship to Oslo?" in page and 'action="/s/blue-fern-shop/chat/messages"' in page
    sent = visitor.post(MESSAGES, {"body": "And to Bergen?"})
    assert sent.status_code == 302 and sent.headers["Location"] == CHAT
    page = visitor.get(CHAT).get_data(as_text=True)
    assert page.index("Do you ship to Oslo?") < page.index("And to Bergen?")
    conversation = conversation_row(app)
    assert chat_bodies(app, conversation.id) == [("visitor", "Do you ship to Oslo?"), ("visitor", "And to Bergen?")]
    # A plain GET of the polled list goes to the page.
    assert visitor.get(MESSAGES).headers["Location"] == CHAT


def test_visitor_writes_with_htmx_and_gets_a_fresh_form(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    response = visitor.post(MESSAGES, {"body": "Is gift wrap free?"}, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="chat-area"' in body
    assert "Is gift wrap free?" in body
    # The textarea is empty again.
    assert re.search(r'<textarea[^>]*name="body"[^>]*>\s*</textarea>', body)
    assert "HX-Request" in response.headers.get("Vary", "")


def test_empty_or_oversized_message_keeps_the_draft(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    empty = visitor.post(MESSAGES, {"body": "   "}, htmx=True).get_data(as_text=True)
    assert "Write a message first." in empty and 'aria-invalid="true"' in empty
    long_text = "z" * 2001
    plain = visitor.post(MESSAGES, {"body": long_text})
    page = plain.get_data(as_text=True)
    assert plain.status_code == 200 and "<html" in page
    assert "under 2,000 characters" in page and long_text in page
    assert chat_bodies(app, conversation_row(app).id) == [("visitor", "Do you ship to Oslo?")]


def test_polling_returns_nothing_until_the_merchant_replies(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    page = visitor.get(CHAT).get_data(as_text=True)
    poll_url = re.search(r'hx-get="(/s/blue-fern-shop/chat/messages\?after=\d+)"', page).group(1)
    assert 'hx-trigger="every 2s"' in page
    quiet = visitor.get(poll_url, htmx=True)
    assert quiet.status_code == 204 and quiet.get_data() == b""
    conversation = conversation_row(app)
    reply = merchant.post(f"/inbox/{conversation.id}/reply", {"body": "Yes, we ship to Oslo in 3 days."})
    assert reply.status_code == 302
    fresh = visitor.get(poll_url, htmx=True)
    body = fresh.get_data(as_text=True)
    assert fresh.status_code == 200 and "<html" not in body
    assert 'class="from-merchant"' in body and "Yes, we ship to Oslo in 3 days." in body
    # The new list polls from the newest message on.
    newer = re.search(r'hx-get="(/s/blue-fern-shop/chat/messages\?after=\d+)"', body).group(1)
    assert newer != poll_url and visitor.get(newer, htmx=True).status_code == 204


def test_every_visitor_request_marks_the_conversation_seen(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    conversation = conversation_row(app)
    for request in (lambda: visitor.get(CHAT), lambda: visitor.get(f"{MESSAGES}?after=0", htmx=True),
                    lambda: visitor.post(MESSAGES, {"body": "still here"}, htmx=True)):
        set_last_seen(app, conversation.id, 30)
        request()
        seen = conversation_row(app).last_seen_at
        assert utcnow().replace(tzinfo=None) - seen.replace(tzinfo=None) < timedelta(seconds=30)
    with Session(app.extensions["db_engine"]) as session:
        contact = session.get(Contact, conversation.contact_id)
        assert utcnow().replace(tzinfo=None) - contact.last_seen_at.replace(tzinfo=None) < timedelta(seconds=30)


def test_without_a_conversation_polling_stops_and_posts_go_to_the_form(app, merchant):
    enable_prechat(merchant)
    stranger = Visitor(app)
    stranger.get(CHAT)
    assert stranger.get(f"{MESSAGES}?after=0", htmx=True).status_code == 286  # htmx stops polling
    response = stranger.post(MESSAGES, {"body": "hello?"})
    assert response.status_code == 302 and response.headers["Location"] == CHAT
    assert conversation_row(app) is None


def test_a_message_without_the_csrf_token_is_refused(app, merchant):
    enable_prechat(merchant)
    visitor = start_chat(app)
    refused = visitor.client.post(MESSAGES, data={"body": "no token"})
    assert refused.status_code == 400
    assert chat_bodies(app, conversation_row(app).id) == [("visitor", "Do you ship to Oslo?")]


def test_unknown_store_chat_messages_is_404(client):
    assert client.get("/s/no-such-store/chat/messages").status_code == 404


def test_an_email_the_store_sends_shows_up_in_the_open_chat(app, merchant, starttls_server):
    from test_outbox import drain, queue_email

    from helpers import store_id_of
    from imap_helpers import save_sending

    save_sending(merchant, starttls_server)
    visitor = start_chat(app)
    poll_url = polled_url(visitor.get(CHAT).get_data(as_text=True))
    conversation = conversation_row(app)
    email = queue_email(app, store_id_of(app, merchant.email), "oslo", recipient="ada@example.com",
                        conversation_id=conversation.id)

    # Queued, not delivered: nothing the visitor received yet.
    assert visitor.get(poll_url, htmx=True).status_code == 204
    assert drain(app).sent == 1

    arrived = visitor.get(poll_url, htmx=True)
    body = arrived.get_data(as_text=True)
    assert arrived.status_code == 200 and "emailed you" in body and f'data-email-id="{email.id}"' in body
    assert visitor.get(polled_url(body), htmx=True).status_code == 204
    # Polled without emails= (a script, say): chat messages only, as before; a malformed value too.
    assert visitor.get(poll_url.split("&")[0], htmx=True).status_code == 204
    for odd in ("\u00b2-0", "1-\u00b2", "-1-0", "9" * 30 + "-0", "1"):
        assert visitor.get(poll_url.split("&")[0] + "&emails=" + odd, htmx=True).status_code == 204, odd


def test_emails_delivered_out_of_order_both_show_up(app, merchant, starttls_server):
    from datetime import timedelta

    from test_outbox import drain, queue_email

    from wizard.models.outbox import OutboxEmail

    from helpers import store_id_of
    from imap_helpers import save_sending

    save_sending(merchant, starttls_server)
    visitor = start_chat(app)
    store_id = store_id_of(app, merchant.email)
    conversation = conversation_row(app)
    first, second = (queue_email(app, store_id, key, recipient="ada@example.com", conversation_id=conversation.id)
                     for key in ("first", "second"))
    with Session(app.extensions["db_engine"]) as session:
        waiting = session.get(OutboxEmail, first.id)
        waiting.next_attempt_at = utcnow() + timedelta(hours=1)  # waits for a retry; the second goes out
        session.add(waiting)
        session.commit()
    assert drain(app).sent == 1
    page = visitor.get(CHAT).get_data(as_text=True)
    assert f'data-email-id="{second.id}"' in page and f'data-email-id="{first.id}"' not in page
    poll_url = polled_url(page)
    assert visitor.get(poll_url, htmx=True).status_code == 204

    with Session(app.extensions["db_engine"]) as session:
        due = session.get(OutboxEmail, first.id)
        due.next_attempt_at = utcnow()
        session.add(due)
        session.commit()
    assert drain(app).sent == 1

    arrived = visitor.get(poll_url, htmx=True)
    assert arrived.status_code == 200 and f'data-email-id="{first.id}"' in arrived.get_data(as_text=True)


def test_a_failed_email_the_merchant_retries_shows_up_once_sent(app, merchant, starttls_server):
    from test_outbox import drain, queue_email

    from wizard.models.outbox import FAILED, OutboxEmail
    from wizard.outbox import queue

    from helpers import store_id_of
    from imap_helpers import save_sending

    save_sending(merchant, starttls_server)
    visitor = start_chat(app)
    store_id = store_id_of(app, merchant.email)
    email = queue_email(app, store_id, "failed-once", recipient="ada@example.com",
                        conversation_id=conversation_row(app).id)
    with Session(app.extensions["db_engine"]) as session:
        failed = session.get(OutboxEmail, email.id)
        failed.status = FAILED  # gave up earlier
        session.add(failed)
        session.commit()
    poll_url = polled_url(visitor.get(CHAT).get_data(as_text=True))
    assert visitor.get(poll_url, htmx=True).status_code == 204

    with Session(app.extensions["db_engine"]) as session:
        assert queue.retry_now(session, email.id, store_id) is not None  # the timeline's Retry
    assert drain(app).sent == 1

    arrived = visitor.get(poll_url, htmx=True)
    assert arrived.status_code == 200 and f'data-email-id="{email.id}"' in arrived.get_data(as_text=True)


def polled_url(page: str) -> str:
    """The URL htmx polls: hx-get plus the hx-vals it sends along with a GET."""
    log = re.search(r'hx-get="(/s/blue-fern-shop/chat/messages\?after=\d+)"\s+hx-vals=\'\{"emails": "([0-9]+-[0-9]+)"\}\'',
                    page)
    return f"{log.group(1)}&emails={log.group(2)}"
