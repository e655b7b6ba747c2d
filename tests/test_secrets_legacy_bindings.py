"""Passwords saved before secret binding existed keep working after the upgrade
(saved settings are bound to their own server at start-up), while a draft that
points at another server keeps no binding and asks for the password again."""
from __future__ import annotations

from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, emails, open_compose

from wizard import create_app
from wizard.models import SmtpDraft, SmtpSettings
from wizard.models.outbox import SENT

from helpers import conversation_row, enable_prechat, set_last_seen, start_chat, store_id_of
from smtp_servers import start_test_server

OWNER = "owner@bluefern.example.com"
CONFIG_KEYS = ("TESTING", "DATABASE_URL", "SECRET_KEY", "ENCRYPTION_KEYS", "SMTP_EXTRA_CA_FILE", "SMTP_TIMEOUT",
               "SMTP_GREETING_TIMEOUT", "DEV_MAILBOX", "SMTP_ALLOWED_NETWORKS", "SMTP_ALLOWED_PORTS")


def forget_bindings(app, store: int, draft_port: int | None = None) -> None:
    """Make the rows look as an earlier version left them: passwords without bindings."""
    with Session(app.extensions["db_engine"]) as db:
        for model in (SmtpDraft, SmtpSettings):
            row = db.exec(select(model).where(model.store_id == store)).one()
            row.password_binding = None
            if model is SmtpDraft and draft_port is not None:
                row.port = str(draft_port)
            db.add(row)
        db.commit()


def restart(app):
    """Start the app again on the same database, as an upgrade does."""
    again = create_app({"INSTANCE_PATH": app.instance_path, **{key: app.config[key] for key in CONFIG_KEYS}})
    again.extensions["db_engine"].dispose()


def rows(app, store: int):
    with Session(app.extensions["db_engine"]) as db:
        return (db.exec(select(SmtpSettings).where(SmtpSettings.store_id == store)).one(),
                db.exec(select(SmtpDraft).where(SmtpDraft.store_id == store)).one())


def test_saved_passwords_from_before_binding_keep_sending_after_the_upgrade(app, merchant, starttls_server, certs):
    enable_prechat(merchant)
    configure_email(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    forget_bindings(app, store)
    restart(app)
    saved, draft = rows(app, store)
    assert saved.password_binding and draft.password_binding  # the draft still points at the saved server

    start_chat(app)
    conversation_id = conversation_row(app).id
    set_last_seen(app, conversation_id, 60)
    _page, key = open_compose(merchant, conversation_id)
    compose_post(merchant, conversation_id, key, "send", subject="Hi", body="Hello {visitor_name}")
    deliver(app)
    [sent] = emails(app)
    assert sent.status == SENT and len(starttls_server.messages) == 1


def test_a_draft_pointing_elsewhere_before_the_upgrade_is_not_bound(app, merchant, starttls_server, certs):
    from conftest import SMTP_PASSWORD, SMTP_USERNAME

    enable_prechat(merchant)
    configure_email(merchant, starttls_server)
    store = store_id_of(app, OWNER)
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD,
                           cert=certs[0], key=certs[1]) as elsewhere:
        forget_bindings(app, store, draft_port=elsewhere.port)
        restart(app)
        saved, draft = rows(app, store)
        assert saved.password_binding and draft.password_binding is None
        page = merchant.get("/wizard/smtp").get_data(as_text=True)
        assert "type the password again" in page.lower() or "type it again" in page.lower()
        assert elsewhere.auth_attempts == []
