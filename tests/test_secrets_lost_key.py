"""Issue 9, item 10: losing the encryption key. Start-up never writes a new key over
stored secrets (the CLI stops with a message naming the missing file), and a
secret that cannot be decrypted — here a wrong key — is asked for again in the
wizard and holds the store's outbox mail, never a 500."""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from sqlmodel import Session, select
from test_inbox import compose_post, configure_email, deliver, emails, open_compose

from wizard import create_app
from wizard.models.outbox import QUEUED, SENT

from conftest import CSRF_IN_PAGE, SMTP_PASSWORD, Merchant, run_connection_test, sign_up, smtp_form
from helpers import conversation_row, enable_prechat, set_last_seen, start_chat

UNREADABLE = "Your saved password can no longer be read — type it again"
FLASK = str(Path(sys.executable).with_name("flask"))


def flask_cli(instance: Path, database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIZARD_")}
    env.update(WIZARD_INSTANCE_PATH=str(instance), DATABASE_URL=database_url, SECRET_KEY="test-secret-key")
    return subprocess.run([FLASK, "--app", "wizard", *args], env=env, capture_output=True, text=True, timeout=60)


def app_on(instance: Path, database_url: str, **extra):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "DATABASE_URL": database_url,
                       "SECRET_KEY": "test-secret-key", "DEV_MAILBOX": False, **extra})


def test_start_up_refuses_to_replace_a_lost_key_over_stored_secrets(tmp_path, database_url, monkeypatch):
    monkeypatch.delenv("WIZARD_ENCRYPTION_KEY", raising=False)
    instance = tmp_path / "instance"  # where the SQLite database of this test lives too
    key_file = instance / "encryption.key"
    # An empty database: the first start generates the key (mode 0600).
    first = flask_cli(instance, database_url, "routes")
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # A merchant stores a password (encrypted with that key).
    app = app_on(instance, database_url)
    merchant = sign_up(app.test_client())
    enable_prechat(merchant)
    merchant.post("/wizard/provider", {"provider": "custom"})
    merchant.post("/wizard/smtp", smtp_form(type("S", (), {"port": 587, "mode": "starttls"})))
    app.extensions["db_engine"].dispose()

    key_file.unlink()
    stopped = flask_cli(instance, database_url, "routes")
    assert stopped.returncode != 0
    assert str(key_file) in stopped.stderr and "missing" in stopped.stderr
    assert "WIZARD_ENCRYPTION_KEY" in stopped.stderr and "Traceback" not in stopped.stderr
    assert not key_file.exists()  # no new key was written over the stored secrets
    assert SMTP_PASSWORD not in stopped.stdout + stopped.stderr


def sign_in(client, email: str) -> Merchant:
    token = CSRF_IN_PAGE.search(client.get("/signin").get_data(as_text=True)).group(1)
    response = client.post("/signin", data={"email": email, "password": "merchant-pass-1", "csrf_token": token})
    assert response.status_code == 302
    return Merchant(client, email)


def test_an_unreadable_password_is_asked_again_and_holds_the_outbox(app, merchant, starttls_server, database_url,
                                                                    tmp_path, certs):
    enable_prechat(merchant)
    configure_email(merchant, starttls_server)
    start_chat(app)
    conversation_id = conversation_row(app).id
    set_last_seen(app, conversation_id, 60)
    app.extensions["db_engine"].dispose()

    # The same database, started with another key (WIZARD_ENCRYPTION_KEY set wrongly).
    wrong = create_app({**{k: app.config[k] for k in ("TESTING", "SMTP_EXTRA_CA_FILE", "SMTP_TIMEOUT",
                                                     "SMTP_GREETING_TIMEOUT", "SMTP_ALLOWED_NETWORKS",
                                                     "SMTP_ALLOWED_PORTS", "SECRET_KEY")},
                        "INSTANCE_PATH": str(tmp_path / "other-instance"), "DATABASE_URL": database_url,
                        "DEV_MAILBOX": False, "ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    owner = sign_in(wrong.test_client(), merchant.email)
    logins = len(starttls_server.auth_attempts)

    smtp = owner.get("/wizard/smtp")
    assert smtp.status_code == 200 and UNREADABLE in smtp.get_data(as_text=True)
    for htmx in (False, True):
        tested = run_connection_test(owner, htmx=htmx)
        assert tested.status_code == 200 and UNREADABLE in tested.get_data(as_text=True)
    sent = owner.post("/wizard/send", {"recipient": "me@bluefern.example.com"})
    assert sent.status_code == 200 and UNREADABLE in sent.get_data(as_text=True)
    assert owner.get("/troubleshooting").status_code == 200
    assert owner.get("/wizard/done").status_code == 200

    _page, key = open_compose(owner, conversation_id)
    compose_post(owner, conversation_id, key, "send", subject="Hi", body="Hello {visitor_name}")
    deliver(wrong)
    [held] = emails(wrong)
    assert held.status == QUEUED and held.attempts == 0 and held.last_category == "password_unreadable"
    timeline = owner.get(f"/inbox/{conversation_id}")
    assert timeline.status_code == 200
    body = timeline.get_data(as_text=True)
    assert UNREADABLE in body and 'data-status="queued"' in body and "The server said" not in body
    assert len(starttls_server.auth_attempts) == logins and starttls_server.messages == []

    # Typing the password again (then test and save) releases the held mail.
    owner.post("/wizard/smtp", smtp_form(starttls_server))
    assert 'data-category="ok"' in run_connection_test(owner).get_data(as_text=True)
    assert owner.post("/wizard/save").status_code == 302
    with Session(wrong.extensions["db_engine"]) as db:
        from wizard.models import utcnow
        from wizard.models.outbox import OutboxEmail

        row = db.exec(select(OutboxEmail)).one()
        row.next_attempt_at = utcnow()  # the hold is re-checked every minute; do not wait for it
        db.add(row)
        db.commit()
    deliver(wrong)
    assert [e.status for e in emails(wrong)] == [SENT]
    assert re.search(r"Hello Ada", starttls_server.messages[-1].message.get_body(("plain",)).get_content())
    assert SMTP_PASSWORD not in "\n".join(owner.bodies)
    wrong.extensions["db_engine"].dispose()
