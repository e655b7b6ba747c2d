"""Unsubscribe links carry opaque random tokens stored with what they suppress
(issue 9, item 12): nothing readable in the URL, an expiry, RFC 8058 one-click
still works, and links of the old readable scheme work only through a stored
row (the migration maps the ones already sent) — the app never decodes them."""
from __future__ import annotations

import base64
import re
from datetime import timedelta

from alembic import command
from cryptography.fernet import Fernet
from itsdangerous import URLSafeSerializer
from sqlalchemy import MetaData, insert
from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, open_compose  # noqa: F401
from test_unsubscribe import ADDRESS, store_id, suppressions

from wizard import create_app
from wizard.db import make_engine, schema
from wizard.models import Conversation, utcnow

from conftest import CSRF_IN_PAGE

FOOTER = re.compile(r"To stop these reminders, open http://localhost/u/([^\s<\"]+)")
OLD_SALT = "heichat.unsubscribe.reminders"  # the salt the readable tokens were signed with


def tokens(app) -> list:
    from wizard.models.outbox import UnsubscribeToken  # (here, so each test fails alone on a schema without it)

    with Session(app.extensions["db_engine"]) as session:
        return list(session.exec(select(UnsubscribeToken).order_by(UnsubscribeToken.id)).all())


def send_reminder(app, merchant, conversation_id: int, body: str = "Still deciding?") -> str:
    """Preview, then send a reminder from one draft; the token its footer carries."""
    _page, key = open_compose(merchant, conversation_id, "reminder")
    preview = compose_post(merchant, conversation_id, key, "preview", kind="reminder", subject="Hi", body=body)
    token = FOOTER.search(preview.get_data(as_text=True)).group(1)
    sent = compose_post(merchant, conversation_id, key, "send", kind="reminder", subject="Hi", body=body)
    assert sent.status_code == 302
    return token


def readable(token: str) -> str:
    """Whatever a base64 decoder makes of the token (the old tokens decoded to JSON)."""
    payload = token.split(".")[0]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("latin-1")


def test_a_sent_reminder_carries_an_opaque_stored_token_that_one_click_honours(app, merchant, chatting,
                                                                               starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    token = send_reminder(app, merchant, conversation_id)
    deliver(app)
    [reminder] = [received.message for received in starttls_server.messages]
    header = reminder["List-Unsubscribe"].strip()
    assert header == f"<http://localhost/u/{token}/one-click>"
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Nothing about the store or the address can be read from the link.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    for text in (token, readable(token)):
        assert "ada" not in text.lower() and "store" not in text and "example" not in text
    [row] = tokens(app)
    assert (row.token, row.store_id, row.email) == (token, store_id(app), ADDRESS)
    assert timedelta(days=364) < row.expires_at - row.created_at <= timedelta(days=366)
    # RFC 8058: the mail client's POST, without any CSRF token, unsubscribes and answers 200.
    response = app.test_client().post(f"/u/{token}/one-click", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "You are unsubscribed" in response.get_data(as_text=True)
    assert suppressions(app) == [(ADDRESS, "unsubscribed")]


def test_one_draft_one_link_and_each_draft_its_own(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    first = send_reminder(app, merchant, conversation_id, "First reminder")
    second = send_reminder(app, merchant, conversation_id, "Second reminder")
    assert first != second and [row.token for row in tokens(app)] == [first, second]


def test_an_expired_link_says_so_and_unsubscribes_nothing(app, merchant, chatting, starttls_server):
    _visitor, conversation_id = chatting
    configure_email(merchant, starttls_server)
    token = send_reminder(app, merchant, conversation_id)
    from wizard.models.outbox import UnsubscribeToken

    with Session(app.extensions["db_engine"]) as session:
        row = session.exec(select(UnsubscribeToken)).one()
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
    visitor = app.test_client()
    page = visitor.get(f"/u/{token}")
    assert page.status_code == 410 and "This link has expired" in page.get_data(as_text=True)
    assert ADDRESS not in page.get_data(as_text=True)
    one_click = visitor.post(f"/u/{token}/one-click", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 410 and "This link has expired" in one_click.get_data(as_text=True)
    assert suppressions(app) == []


def test_a_readable_token_made_with_the_apps_own_key_is_not_honoured(app, merchant):
    """The old tokens were signed JSON: knowing the scheme (and even the key) no longer unsubscribes anyone."""
    forged = URLSafeSerializer(app.config["SECRET_KEY"], salt=OLD_SALT).dumps({"store": store_id(app), "email": ADDRESS})
    client = app.test_client()
    assert client.get(f"/u/{forged}").status_code == 404
    assert client.post(f"/u/{forged}/one-click").status_code == 404
    assert suppressions(app) == []


def _app_on(database_url: str, instance) -> object:
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url,
                       "SECRET_KEY": "test-secret-key", "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                       "DEV_MAILBOX": False})


def test_upgrade_backfills_conversations_and_keeps_sent_links_working(database_url, tmp_path):
    """A database from before revision chat01: conversations take their contact's name and address,
    and the link in a reminder already sent keeps working — through a stored row."""
    (tmp_path / "instance").mkdir(exist_ok=True)
    engine = make_engine(database_url)
    old_token = URLSafeSerializer("test-secret-key", salt=OLD_SALT).dumps({"store": 1, "email": ADDRESS})
    now = utcnow()
    with engine.begin() as connection:
        command.upgrade(schema.alembic_config(connection), "d2c8e39b1db4")
        tables = MetaData()
        tables.reflect(connection)
        t = tables.tables
        connection.execute(insert(t["store"]).values(
            id=1, name="Blue Fern Shop", slug="blue-fern-shop", created_at=now, prechat_enabled=True,
            prechat_email_required=True, prechat_name_mode="optional", prechat_intro="Hi", send_limit_per_minute=30))
        connection.execute(insert(t["contact"]).values(id=1, store_id=1, email=ADDRESS, name="Ada", created_at=now,
                                                       last_seen_at=now))
        connection.execute(insert(t["conversation"]).values(
            id=1, store_id=1, contact_id=1, token="t" * 32, started_at=now, last_seen_at=now))
        connection.execute(insert(t["conversation"]).values(
            id=2, store_id=1, contact_id=None, token="u" * 32, started_at=now, last_seen_at=now))
        connection.execute(insert(t["outboxemail"]).values(
            id=1, store_id=1, conversation_id=1, kind="reminder", idempotency_key="compose-1-1-x",
            message_id="<m1@bluefern.example.com>", references="", sender_name="Blue Fern", recipient=ADDRESS,
            sender_email="support@bluefern.example.com", subject="Hi", body_text="t", body_html="", status="sent",
            attempts=1, max_attempts=6, next_attempt_at=now, created_at=now - timedelta(days=3),
            unsubscribe_url=f"http://localhost/u/{old_token}/one-click"))
    engine.dispose()

    app = _app_on(database_url, tmp_path / "instance")
    try:
        with Session(app.extensions["db_engine"]) as session:
            first, second = session.exec(select(Conversation).order_by(Conversation.id)).all()
        assert (first.visitor_name, first.visitor_email) == ("Ada", ADDRESS)
        assert (second.visitor_name, second.visitor_email) == (None, None)
        visitor = app.test_client()
        page = visitor.get(f"/u/{old_token}").get_data(as_text=True)
        assert "Stop reminders from Blue Fern Shop?" in page and ADDRESS in page
        done = visitor.post(f"/u/{old_token}", data={"csrf_token": CSRF_IN_PAGE.search(page).group(1)})
        assert done.status_code == 302
        assert suppressions(app) == [(ADDRESS, "unsubscribed")]
        # Another address under the same old scheme was never sent, so it has no row: not honoured.
        other = URLSafeSerializer("test-secret-key", salt=OLD_SALT).dumps({"store": 1, "email": "bo@example.com"})
        assert visitor.post(f"/u/{other}/one-click").status_code == 404
    finally:
        app.extensions["db_engine"].dispose()
