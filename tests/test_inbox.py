"""The merchant's inbox: the list and its filters, a conversation's timeline of
chat and email, chat replies, composing follow-ups from templates (preview,
send once, limits, refusals), the outbox worker delivering to a real aiosmtpd
server, failures with their diagnosis and Retry, templates and settings."""
from __future__ import annotations

import html
import json
import re

import pytest
from markupsafe import escape
from sqlmodel import Session, select

from wizard.models import Store
from wizard.models.outbox import FAILED, QUEUED, SENT, EmailTemplate, OutboxEmail
from wizard.outbox.queue import suppress
from wizard.outbox.worker import run_worker
from wizard.secrets import SecretBox
from wizard.smtp.target_options import target_options_from_config

from conftest import SMTP_PASSWORD, SMTP_USERNAME, run_connection_test, sign_up
from helpers import chat_bodies, conversation_row, prepare, set_last_seen, start_chat
from smtp_servers import start_test_server

DRAFT_KEY = re.compile(r'name="draft_key" type="hidden" value="([^"]+)"')


# -- helpers ---------------------------------------------------------------------------

def configure_email(merchant, server) -> None:
    """Drive the wizard: SMTP settings for ``server``, tested and saved."""
    prepare(merchant, server)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302


def deliver(app) -> None:
    """One in-process outbox worker run until nothing is due."""
    options = target_options_from_config(app.config, False)
    box = SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    run_worker(app.extensions["db_engine"], box, lambda: options, once=True, worker_id="inbox-test")


def emails(app) -> list[OutboxEmail]:
    with Session(app.extensions["db_engine"]) as session:
        return list(session.exec(select(OutboxEmail).order_by(OutboxEmail.id)).all())


def open_compose(merchant, conversation_id: int, kind: str = "follow_up") -> tuple[str, str]:
    page = merchant.get(f"/inbox/{conversation_id}/compose?kind={kind}").get_data(as_text=True)
    return page, DRAFT_KEY.search(page).group(1)


def field_value(page: str, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(?:\r?\n)?(.*?)</textarea>', page, re.S)
    if found:
        return html.unescape(found.group(1))
    return html.unescape(re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page).group(1))


def compose_post(merchant, conversation_id: int, key: str, action: str, kind: str = "follow_up", htmx=False, **fields):
    data = {"draft_key": key, "action": action, **fields}
    return merchant.post(f"/inbox/{conversation_id}/compose?kind={kind}", data, htmx=htmx)


# -- the list --------------------------------------------------------------------------

def test_inbox_lists_latest_activity_first_and_filters(app, merchant):
    app.config["VISITOR_GONE_MINUTES"] = 10
    merchant.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional", "intro": "Hi"})  # email optional
    ada = start_chat(app, name="Ada", email="ada@example.com", message="Do you ship to Oslo?")
    ada_id = conversation_row(app).id
    start_chat(app, name="", email="", message="Just browsing")
    anon_id = conversation_row(app).id
    start_chat(app, name="Bo", email="bo@example.com", message="Is this in stock?")
    bo_id = conversation_row(app).id
    merchant.post(f"/inbox/{anon_id}/reply", {"body": "Let us know if we can help."})

    def listed(query: str = "") -> list[int]:
        page = merchant.get(f"/inbox{query}").get_data(as_text=True)
        return [int(n) for n in re.findall(r'<tr data-conversation-id="(\d+)"', page)]

    assert listed("?gone=1") == []  # everyone is still on the site
    assert "No conversation matches these filters" in merchant.get("/inbox?gone=1").get_data(as_text=True)
    set_last_seen(app, ada_id, 30)
    set_last_seen(app, anon_id, 30)
    assert listed() == [anon_id, bo_id, ada_id]  # the merchant's reply is the latest activity
    ada.post("/s/blue-fern-shop/chat/messages", {"body": "Hello again"})
    set_last_seen(app, ada_id, 30)
    assert listed() == [ada_id, anon_id, bo_id]
    assert listed("?email=1") == [ada_id, bo_id]
    assert listed("?gone=1") == [ada_id, anon_id]
    assert listed("?awaiting=1") == [ada_id, bo_id]
    assert listed("?email=1&gone=1&awaiting=1") == [ada_id]
    page = merchant.get("/inbox?gone=1").get_data(as_text=True)
    assert re.search(r'name="gone" value="1" checked', page) and "not seen for 10 min" in page
    assert "Visitor without email" in page and "Awaiting reply" in page
    # htmx gets the list alone, polled with the same filters.
    fragment = merchant.get("/inbox?email=1", htmx=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<div id="inbox-list"')
    assert 'hx-get="/inbox?email=1"' in body and 'hx-trigger="every 5s"' in body
    assert "HX-Request" in fragment.headers["Vary"]


def test_visitor_counts_as_gone_after_five_minutes_by_default(app, merchant, chatting):
    _visitor, conversation_id = chatting
    assert "VISITOR_GONE_MINUTES" not in app.config
    set_last_seen(app, conversation_id, 4)
    assert "The visitor is on your site now." in merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "<tr data-conversation-id" not in merchant.get("/inbox?gone=1").get_data(as_text=True)
    set_last_seen(app, conversation_id, 6)
    assert "The visitor left" in merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert f'<tr data-conversation-id="{conversation_id}"' in merchant.get("/inbox?gone=1").get_data(as_text=True)


def test_another_stores_conversation_is_404(app, chatting):
    _visitor, conversation_id = chatting
    other = sign_up(app.test_client(), email="second@bluefern.example.com", store="Second Shop")
    assert other.get(f"/inbox/{conversation_id}").status_code == 404
    assert other.get(f"/inbox/{conversation_id}/compose").status_code == 404
    assert other.post(f"/inbox/{conversation_id}/reply", {"body": "hi"}).status_code == 404
    assert f'data-conversation-id="{conversation_id}"' not in other.get("/inbox").get_data(as_text=True)


def test_inbox_needs_a_signed_in_member(client):
    response = client.get("/inbox")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


# -- a conversation --------------------------------------------------------------------

def test_timeline_shows_the_chat_and_the_merchant_replies(app, merchant, chatting):
    visitor, conversation_id = chatting
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "Do you ship to Oslo?" in page and "The visitor is on your site now." in page
    assert 'data-polling="on"' in page and f'hx-get="/inbox/{conversation_id}/timeline"' in page
    # Plain reply: post/redirect/get.
    plain = merchant.post(f"/inbox/{conversation_id}/reply", {"body": "Yes, in 3 days."})
    assert plain.status_code == 302 and plain.headers["Location"] == f"/inbox/{conversation_id}"
    # htmx reply: the conversation view comes back with an empty reply box.
    fragment = merchant.post(f"/inbox/{conversation_id}/reply", {"body": "Anything else?"}, htmx=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="inbox-view"' in body
    assert body.index("Yes, in 3 days.") < body.index("Anything else?")
    assert re.search(r'<textarea[^>]*name="body"[^>]*>\s*</textarea>', body)
    empty = merchant.post(f"/inbox/{conversation_id}/reply", {"body": " "}, htmx=True).get_data(as_text=True)
    assert "Write a reply first." in empty
    assert chat_bodies(app, conversation_id)[-2:] == [("merchant", "Yes, in 3 days."), ("merchant", "Anything else?")]
    # The visitor sees both replies.
    chat = visitor.get("/s/blue-fern-shop/chat").get_data(as_text=True)
    assert "Yes, in 3 days." in chat and "Anything else?" in chat
    # Once the visitor has gone and nothing is on its way, the timeline stops polling.
    set_last_seen(app, conversation_id, 60)
    still = merchant.get(f"/inbox/{conversation_id}/timeline", htmx=True).get_data(as_text=True)
    assert 'data-polling="off"' in still and "hx-trigger" not in still and "The visitor left" in still
    assert merchant.get(f"/inbox/{conversation_id}/timeline").status_code == 302


def test_reply_without_csrf_token_is_refused(app, merchant, chatting):
    _visitor, conversation_id = chatting
    refused = merchant.client.post(f"/inbox/{conversation_id}/reply", data={"body": "sneaky"})
    assert refused.status_code == 400
    assert ("merchant", "sneaky") not in chat_bodies(app, conversation_id)


def test_conversation_without_email_address_offers_no_email(app, merchant, starttls_server):
    configure_email(merchant, starttls_server)
    merchant.post("/wizard/pre-chat-form", {"enabled": "y", "name_mode": "optional", "intro": "Hi"})
    start_chat(app, name="", email="", message="Anonymous question")
    conversation_id = conversation_row(app).id
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert 'id="email-blocked"' in page and "did not leave an email address" in page
    assert "/compose?kind=" not in page
    compose_page = merchant.get(f"/inbox/{conversation_id}/compose?kind=follow_up").get_data(as_text=True)
    assert 'id="compose-blocked"' in compose_page and 'id="compose-form"' not in compose_page
    refused = compose_post(merchant, conversation_id, "k" * 32, "send", subject="Hi", body="Hello")
    assert "did not leave an email address" in refused.get_data(as_text=True)
    assert emails(app) == []


def test_without_saved_settings_compose_says_so(app, merchant, chatting):
    _visitor, conversation_id = chatting
    page = merchant.get(f"/inbox/{conversation_id}/compose?kind=support_reply").get_data(as_text=True)
    assert "Email sending is not set up yet" in page and 'id="compose-form"' not in page


def test_unknown_kind_and_foreign_ids_are_404(app, merchant, chatting):
    _visitor, conversation_id = chatting
    assert merchant.get(f"/inbox/{conversation_id}/compose?kind=newsletter").status_code == 404
    assert merchant.get("/inbox/999999").status_code == 404
    assert merchant.post(f"/inbox/{conversation_id}/emails/999999/retry").status_code == 404


# -- compose, send, deliver ----------------------------------------------------------------

def test_follow_up_preview_send_once_deliver_and_thread(app, merchant, chatting, starttls_server):
    visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    merchant.post("/inbox/settings", {"reply_to": "help@bluefern.example.com", "per_minute": "30", "per_day": ""})
    set_last_seen(app, conversation_id, 60)
    page, key = open_compose(merchant, conversation_id)
    assert field_value(page, "subject") == "Your chat with {store_name}"
    assert "{last_messages}" in field_value(page, "body")
    assert f"{SMTP_USERNAME}" in page and "help@bluefern.example.com" in page  # From and Reply-To shown

    # Preview (htmx): the email with the placeholders filled in, HTML in a sandboxed frame.
    preview = compose_post(merchant, conversation_id, key, "preview", htmx=True,
                           subject=field_value(page, "subject"), body=field_value(page, "body")).get_data(as_text=True)
    assert '<dd id="preview-subject">Your chat with Blue Fern Shop</dd>' in preview
    assert "&gt; You: Do you ship to Oslo?" in preview  # quoted in the text version
    # The HTML version loads in a sandboxed frame from its own URL (its own policy lets the
    # email's inline styles apply); the draft is posted into it.
    assert re.search(r'<iframe class="mail-html[^"]*" id="preview-html" name="preview-frame" sandbox=""', preview)
    assert "srcdoc" not in preview
    frame_url = f"/inbox/{conversation_id}/compose/preview?kind=follow_up"
    assert re.search(r'target="preview-frame" data-fills-frame="preview-html"\s+action="' + re.escape(frame_url), preview)
    frame = merchant.post(f"/inbox/{conversation_id}/compose/preview?kind=follow_up",
                          {"draft_key": key, "subject": field_value(page, "subject"), "body": field_value(page, "body")})
    assert frame.status_code == 200 and frame.mimetype == "text/html"
    policy = frame.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in policy and "default-src 'none'" in policy and "script-src" not in policy
    assert "frame-ancestors 'self'" in policy
    framed = frame.get_data(as_text=True)
    assert "<blockquote>" in framed and "Do you ship to Oslo?" in framed and "sans-serif" in framed
    assert merchant.post(f"/inbox/{conversation_id}/compose/preview?kind=follow_up",
                         {"draft_key": "short", "subject": "x", "body": "y"}).status_code == 400
    assert DRAFT_KEY.search(preview).group(1) == key  # the same draft
    assert emails(app) == []

    # Send: queued once, even when the form is submitted twice.
    data = dict(subject="Your chat with {store_name}", body="Hi {visitor_name},\n\n{last_messages}\n\nYes, we do!")
    first = compose_post(merchant, conversation_id, key, "send", **data)
    assert first.status_code == 302 and first.headers["Location"] == f"/inbox/{conversation_id}"
    again = compose_post(merchant, conversation_id, key, "send", htmx=True, **data)
    location = json.loads(again.headers["HX-Location"])
    assert location["path"] == f"/inbox/{conversation_id}" and location["select"] == "#inbox-view"
    [queued] = emails(app)
    assert queued.status == QUEUED and queued.kind == "follow_up" and queued.recipient == "ada@example.com"
    assert queued.reply_to == "help@bluefern.example.com" and queued.unsubscribe_url is None
    timeline = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "is queued for ada@example.com" in timeline
    assert f'data-email-id="{queued.id}" data-status="queued"' in timeline
    assert 'data-polling="on"' in timeline and 'hx-trigger="every 2s"' in timeline

    deliver(app)
    [sent] = emails(app)
    assert sent.status == SENT and sent.queue_id
    timeline = merchant.get(f"/inbox/{conversation_id}/timeline", htmx=True).get_data(as_text=True)
    assert 'data-status="sent"' in timeline and f'<code class="queue-id">{sent.queue_id}</code>' in timeline
    assert 'data-polling="off"' in timeline
    # The chat message comes before the email in the timeline.
    assert timeline.index("Do you ship to Oslo?") < timeline.index(f'data-email-id="{sent.id}"')
    [received] = starttls_server.messages
    message = received.message
    assert received.envelope_to == ["ada@example.com"]
    assert str(message["From"]) == f"Blue Fern Support <{SMTP_USERNAME}>"
    assert str(message["Reply-To"]) == "help@bluefern.example.com"
    assert message["Subject"] == "Your chat with Blue Fern Shop"
    text = message.get_body(("plain",)).get_content()
    assert "Hi Ada," in text and "> You: Do you ship to Oslo?" in text and "Yes, we do!" in text
    assert "<blockquote>" in message.get_body(("html",)).get_content()

    # A second email answers the first (threading from the queue).
    _page, key2 = open_compose(merchant, conversation_id, "support_reply")
    assert key2 != key
    compose_post(merchant, conversation_id, key2, "send", kind="support_reply",
                 subject="Re: your question", body="Delivery takes 3 days.")
    deliver(app)
    second = starttls_server.messages[1].message
    assert second["In-Reply-To"] == message["Message-ID"]
    assert len(emails(app)) == 2


def test_resubmitting_a_sent_draft_with_new_text_sends_nothing_new(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    _page, key = open_compose(merchant, conversation_id)
    compose_post(merchant, conversation_id, key, "send", subject="First", body="One")
    response = compose_post(merchant, conversation_id, key, "send", subject="Changed", body="Two")
    assert response.status_code == 302
    assert "already sent" in merchant.get(response.headers["Location"]).get_data(as_text=True)
    assert [e.subject for e in emails(app)] == ["First"]


def test_tampered_draft_key_is_refused(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    assert compose_post(merchant, conversation_id, "short", "send", subject="Hi", body="Hello").status_code == 400
    assert compose_post(merchant, conversation_id, "x" * 30 + "/..", "send", subject="Hi", body="Hi").status_code == 400
    assert emails(app) == []


@pytest.mark.parametrize("fields, field, code, text", [
    ({"subject": "", "body": "Hello"}, "subject", "subject_empty", "Enter a subject."),
    ({"subject": "Hi", "body": ""}, "body", "body_empty", "Write the message."),
    ({"subject": "Hi\r\nBcc: everyone@example.com", "body": "Hello"}, "subject", "subject_control", "must be one line"),
    ({"subject": "Hi", "body": "Your code: {coupon_code}"}, "body", "unknown_placeholder", "{coupon_code}"),
    ({"subject": "Hi", "body": "x" * 101}, "body", "body_too_long", "the limit is 100"),
])
def test_bad_input_is_refused_beside_the_field_and_the_draft_is_kept(app, merchant, chatting, starttls_server,
                                                                     fields, field, code, text):
    app.config["MAX_EMAIL_BODY_CHARS"] = 100
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    _page, key = open_compose(merchant, conversation_id)
    for htmx in (False, True):
        page = compose_post(merchant, conversation_id, key, "send", htmx=htmx, **fields).get_data(as_text=True)
        errors = re.search(rf'<div id="{field}-errors".*?</div>', page, re.S).group(0)
        assert f'data-code="{code}"' in errors and text in html.unescape(errors)
        if field != "subject":
            assert field_value(page, "subject") == fields["subject"]
        assert field_value(page, "body") == fields["body"]
        assert DRAFT_KEY.search(page).group(1) == key
    assert emails(app) == []


def test_order_update_fields_and_tracking_link(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    page, key = open_compose(merchant, conversation_id, "order_update")
    for label in ("Order number", "Carrier", "Tracking link"):
        assert f">{label}</label>" in page
    subject, body = field_value(page, "subject"), field_value(page, "body")
    missing = compose_post(merchant, conversation_id, key, "preview", kind="order_update", subject=subject, body=body,
                           order_number="", carrier="Posten", tracking_link="").get_data(as_text=True)
    assert 'data-code="value_missing"' in missing and "Enter the order number" in missing
    assert field_value(missing, "carrier") == "Posten"
    preview = compose_post(merchant, conversation_id, key, "preview", kind="order_update", subject=subject, body=body,
                           order_number="A-1001", carrier="Posten",
                           tracking_link="https://track.example/A-1001").get_data(as_text=True)
    assert "News about your Blue Fern Shop order A-1001" in preview
    assert str(escape('<a href="https://track.example/A-1001">')) in preview  # inside srcdoc, escaped
    compose_post(merchant, conversation_id, key, "send", kind="order_update", subject=subject, body=body,
                 order_number="A-1001", carrier="Posten", tracking_link="https://track.example/A-1001")
    [email] = emails(app)
    assert email.kind == "order_update" and "on its way with Posten" in email.body_text


def test_suppressed_address_refuses_reminders_with_the_reason(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).first()
        suppress(session, store.id, "ada@example.com", "unsubscribed")
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "unsubscribed from reminders, so no reminder can be sent" in page
    assert f"/inbox/{conversation_id}/compose?kind=support_reply" in page
    assert f"/inbox/{conversation_id}/compose?kind=reminder" not in page
    reminder = merchant.get(f"/inbox/{conversation_id}/compose?kind=reminder").get_data(as_text=True)
    assert 'id="compose-blocked"' in reminder and "unsubscribed from reminders" in reminder
    refused = compose_post(merchant, conversation_id, "r" * 32, "send", kind="reminder", subject="Hi", body="Come back")
    assert "unsubscribed" in refused.get_data(as_text=True)
    # A support reply is not a reminder: it still goes, with a note.
    support, key = open_compose(merchant, conversation_id, "support_reply")
    assert "This is not a reminder" in support
    compose_post(merchant, conversation_id, key, "send", kind="support_reply", subject="Re: Oslo", body="Yes.")
    assert [e.kind for e in emails(app)] == ["support_reply"]


def test_hard_bounced_address_gets_no_email_at_all(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).first()
        suppress(session, store.id, "Ada@Example.com", "hard_bounce")
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "bounced" in page and "/compose?kind=" not in page


def test_failed_email_shows_the_diagnosis_and_retries(app, merchant, chatting, certs):
    _visitor, conversation_id = chatting
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           data_reply="550 The from address does not match a verified Sender Identity.") as server:
        configure_email(merchant, server)
        set_last_seen(app, conversation_id, 60)
        _page, key = open_compose(merchant, conversation_id)
        compose_post(merchant, conversation_id, key, "send", subject="Hello", body="Hi {visitor_name}")
        deliver(app)
    [email] = emails(app)
    assert email.status == FAILED and email.last_category == "sender_rejected"
    page = merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert f'data-email-id="{email.id}" data-status="failed"' in page
    assert 'data-category="sender_rejected"' in page and "verified Sender Identity" in page
    assert 'data-polling="off"' in page
    retry_url = f"/inbox/{conversation_id}/emails/{email.id}/retry"
    assert f'action="{retry_url}"' in page and ">Retry</button>" in page
    fragment = merchant.post(retry_url, htmx=True).get_data(as_text=True)
    assert "<html" not in fragment and 'data-status="queued"' in fragment and 'data-polling="on"' in fragment
    assert "“Hello” is queued again." in fragment
    assert emails(app)[0].status == QUEUED and emails(app)[0].attempts == 0
    assert merchant.client.post(retry_url).status_code == 400  # no CSRF token


# -- templates and settings ------------------------------------------------------------

def test_store_templates_edit_check_and_reset(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    page = merchant.get("/inbox/templates").get_data(as_text=True)
    for label in ("Follow-up", "Support reply", "Order update", "Conversion reminder"):
        assert label in page
    assert page.count('data-wording="default"') == 4
    bad = merchant.post("/inbox/templates", {"kind": "reminder", "action": "save", "reminder-subject": "Hey {name}",
                                             "reminder-body": "Come back"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 200 and 'data-code="unknown_placeholder"' in body and "{name}" in body
    assert field_value(body, "reminder-subject") == "Hey {name}"
    saved = merchant.post("/inbox/templates", {"kind": "reminder", "action": "save",
                                               "reminder-subject": "We miss you at {store_name}",
                                               "reminder-body": "Hi {visitor_name}, come back soon."})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("#template-reminder")
    page = merchant.get("/inbox/templates").get_data(as_text=True)
    assert page.count('data-wording="own"') == 1 and "Reset to default" in page
    compose_page, _key = open_compose(merchant, conversation_id, "reminder")
    assert field_value(compose_page, "subject") == "We miss you at {store_name}"
    merchant.post("/inbox/templates", {"kind": "reminder", "action": "reset"})
    with Session(app.extensions["db_engine"]) as session:
        assert session.exec(select(EmailTemplate)).all() == []
    compose_page, _key = open_compose(merchant, conversation_id, "reminder")
    assert field_value(compose_page, "subject") == "Still deciding? {store_name} can help"
    assert merchant.post("/inbox/templates", {"kind": "newsletter", "action": "save"}).status_code == 400


@pytest.mark.parametrize("fields, message", [
    ({"reply_to": "not an address", "per_minute": "30", "per_day": ""}, "An email address must have an @-sign."),
    ({"reply_to": "", "per_minute": "", "per_day": ""}, "Enter how many emails may go out per minute."),
    ({"reply_to": "", "per_minute": "abc", "per_day": ""}, "whole number from 1 to 1,000"),
    ({"reply_to": "", "per_minute": "0", "per_day": ""}, "whole number from 1 to 1,000"),
    ({"reply_to": "", "per_minute": "30", "per_day": "-5"}, "whole number from 1 to 1,000,000"),
    ({"reply_to": "", "per_minute": "²", "per_day": ""}, "whole number from 1 to 1,000"),
    ({"reply_to": "", "per_minute": "30", "per_day": "9" * 10_000}, "whole number from 1 to 1,000,000"),
])
def test_sending_settings_are_validated(app, merchant, fields, message):
    response = merchant.post("/inbox/settings", fields)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and message in body
    for name, _value in fields.items():
        assert f'name="{name}"' in body
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).first()
        assert store.reply_to is None and store.send_limit_per_minute == 30


def test_sending_settings_are_saved(app, merchant):
    response = merchant.post("/inbox/settings", {"reply_to": "Help@BlueFern.example.com", "per_minute": "12",
                                                 "per_day": "400"})
    assert response.status_code == 302
    page = merchant.get("/inbox/settings").get_data(as_text=True)
    assert "Sending settings saved." in page
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).first()
        assert (store.reply_to, store.send_limit_per_minute, store.send_limit_per_day) == \
            ("Help@bluefern.example.com", 12, 400)
    merchant.post("/inbox/settings", {"reply_to": "", "per_minute": "30", "per_day": ""})
    with Session(app.extensions["db_engine"]) as session:
        store = session.exec(select(Store)).first()
        assert store.reply_to is None and store.send_limit_per_day is None
