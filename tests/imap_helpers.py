"""Helpers for the IMAP tests: a merchant whose sending settings are saved, reading switched on at the test Dovecot."""
from __future__ import annotations

import re

from sqlmodel import Session

from wizard.inbound.imap_settings import get_fetching
from wizard.models.inbound import ImapFetching

from conftest import run_connection_test
from helpers import prepare

RESULT_CATEGORY = re.compile(r'id="imap-result" data-category="([a-z_]+)"')


def save_sending(merchant, smtp_server) -> None:
    """The wizard: SMTP settings for ``smtp_server`` (host localhost), tested and saved."""
    prepare(merchant, smtp_server)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302


def allow_test_imap(app) -> None:
    """Dovecot listens on random loopback ports: allowed like the SMTP test peers are."""
    app.config["IMAP_ALLOWED_PORTS"] = ""


def turn_on_reading(merchant, dovecot, htmx: bool = False, **overrides):
    values = {"enabled": "y", "host": "localhost", "port": str(dovecot.imaps_port), "security": "ssl",
              "folder": "INBOX", "action": "save"}
    values.update(overrides)
    return merchant.post("/inbox/replies", values, htmx=htmx)


def fetching_row(app, store_id: int) -> ImapFetching | None:
    with Session(app.extensions["db_engine"]) as session:
        return get_fetching(session, store_id)


def result_category(response) -> str | None:
    found = RESULT_CATEGORY.search(response.get_data(as_text=True))
    return found.group(1) if found else None


# -- a follow-up email the visitor can answer, and the answer in the mailbox ------------------

DRAFT_KEY = re.compile(r'name="draft_key" type="hidden" value="([^"]+)"')


def send_follow_up(app, merchant, conversation_id: int) -> str:
    """Compose and deliver one follow-up to the visitor; its Message-ID (with angle brackets)."""
    from sqlmodel import select

    from wizard.models.outbox import OutboxEmail
    from wizard.outbox.worker import run_worker
    from wizard.secrets import SecretBox
    from wizard.smtp.target_options import target_options_from_config

    from helpers import set_last_seen

    set_last_seen(app, conversation_id, 60)
    page = merchant.get(f"/inbox/{conversation_id}/compose?kind=follow_up").get_data(as_text=True)
    key = DRAFT_KEY.search(page).group(1)
    sent = merchant.post(f"/inbox/{conversation_id}/compose?kind=follow_up", {
        "draft_key": key, "action": "send", "subject": "Your chat with {store_name}",
        "body": "Hi {visitor_name},\n\nYes, we ship to Oslo.\n"})
    assert sent.status_code == 302
    options = target_options_from_config(app.config, False)
    box = SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    run_worker(app.extensions["db_engine"], box, lambda: options, once=True, worker_id="imap-test")
    with Session(app.extensions["db_engine"]) as session:
        email = session.exec(select(OutboxEmail).where(OutboxEmail.conversation_id == conversation_id)
                             .order_by(OutboxEmail.id.desc())).first()
        assert email.status == "sent", (email.status, email.last_category)
        return email.message_id if email.message_id.startswith("<") else f"<{email.message_id}>"


def gmail_reply(in_reply_to: str, text: str, message_id: str, sender: str = "Ada <ada@example.com>",
                to: str = "merchant@bluefern.example.com") -> bytes:
    """A reply shaped like Gmail's web client writes one: multipart/alternative, the quote under "On … wrote:"."""
    boundary = "000000000000a1b2c3d4e5f60718"
    quoted = "> Hi Ada,\r\n>\r\n> Yes, we ship to Oslo.\r\n"
    return (
        f"MIME-Version: 1.0\r\n"
        f"Date: Tue, 1 Dec 2026 10:15:00 +0100\r\n"
        f"References: {in_reply_to}\r\n"
        f"In-Reply-To: {in_reply_to}\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Subject: Re: Your chat with Blue Fern Shop\r\n"
        f"From: {sender}\r\n"
        f"To: {to}\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: text/plain; charset="UTF-8"\r\n'
        f"\r\n"
        f"{text}\r\n\r\nOn Tue, 1 Dec 2026 at 09:00, Blue Fern Support <merchant@bluefern.example.com> wrote:\r\n"
        f"{quoted}\r\n"
        f"--{boundary}\r\n"
        f'Content-Type: text/html; charset="UTF-8"\r\n'
        f"\r\n"
        f'<div dir="ltr">{text}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, 1 Dec 2026 '
        f"at 09:00, Blue Fern Support &lt;merchant@bluefern.example.com&gt; wrote:<br></div>"
        f'<blockquote class="gmail_quote">Hi Ada,<br><br>Yes, we ship to Oslo.</blockquote></div>\r\n'
        f"--{boundary}--\r\n"
    ).encode()


def newsletter(message_id: str) -> bytes:
    """Mail that answers nothing of ours."""
    return (f"From: News <news@shop-supplies.example.org>\r\nTo: merchant@bluefern.example.com\r\n"
            f"Subject: December offers\r\nMessage-ID: {message_id}\r\nDate: Tue, 1 Dec 2026 08:00:00 +0000\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTwenty percent off boxes.\r\n").encode()
