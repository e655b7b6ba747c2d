"""Secrets at rest: key rotation, and a database copy alone reveals nothing."""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat

from cryptography.fernet import Fernet

from wizard import create_app

from conftest import SMTP_PASSWORD, run_connection_test, sign_up
from helpers import prepare


def instance_app(instance, **extra):
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "SMTP_TIMEOUT": 5.0,
                       "SMTP_GREETING_TIMEOUT": 1.0, "DEV_MAILBOX": False, "SMTP_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
                       "SMTP_ALLOWED_PORTS": "", **extra})


def stored_tokens(db_path):
    with sqlite3.connect(db_path) as connection:
        return [row[0] for row in connection.execute(
            "select password_encrypted from smtpsettings union all select password_encrypted from smtpdraft")]


def test_rotate_key_reencrypts_everything_and_keeps_working(tmp_path, monkeypatch, starttls_server, certs):
    monkeypatch.delenv("WIZARD_ENCRYPTION_KEY", raising=False)
    instance = tmp_path / "instance"
    app = instance_app(instance, SMTP_EXTRA_CA_FILE=str(certs[0]))
    merchant = sign_up(app.test_client())
    prepare(merchant, starttls_server)
    run_connection_test(merchant)
    merchant.post("/wizard/save")
    old_key = (instance / "encryption.key").read_text().strip()
    before = stored_tokens(instance / "wizard.sqlite")

    result = app.test_cli_runner().invoke(args=["rotate-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 secrets" in result.output
    new_key = (instance / "encryption.key").read_text().strip()
    assert new_key != old_key and "," not in new_key
    assert stat.S_IMODE(os.stat(instance / "encryption.key").st_mode) == 0o600
    after = stored_tokens(instance / "wizard.sqlite")
    assert all(a != b for a, b in zip(before, after, strict=False))
    for token in after:
        assert Fernet(new_key.encode()).decrypt(token.encode()).decode() == SMTP_PASSWORD
    app.extensions["db_engine"].dispose()

    # A restarted app reads the new key; the saved settings still pass and send.
    again = instance_app(instance, SMTP_EXTRA_CA_FILE=str(certs[0]))
    client = again.test_client()
    page = client.get("/signin").get_data(as_text=True)
    import re
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    client.post("/signin", data={"email": merchant.email, "password": "merchant-pass-1", "csrf_token": token})
    assert "tested" in client.get("/wizard/done").get_data(as_text=True)
    assert 'id="save-button"' in client.get("/wizard/test").get_data(as_text=True)  # fingerprints survive
    again.extensions["db_engine"].dispose()


def test_rotate_key_with_environment_keys_needs_the_new_key_first(tmp_path, monkeypatch):
    monkeypatch.setenv("WIZARD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    app = instance_app(tmp_path / "instance")
    result = app.test_cli_runner().invoke(args=["rotate-key"])
    assert result.exit_code == 2 and "WIZARD_ENCRYPTION_KEY=NEW,OLD" in result.output
    assert len(app.test_cli_runner().invoke(args=["rotate-key", "--generate"]).output.strip()) == 44
    app.extensions["db_engine"].dispose()


def test_a_copy_of_the_database_alone_reveals_no_password(tmp_path, monkeypatch, starttls_server):
    monkeypatch.delenv("WIZARD_ENCRYPTION_KEY", raising=False)
    instance = tmp_path / "instance"
    app = instance_app(instance)
    merchant = sign_up(app.test_client())
    prepare(merchant, starttls_server)
    app.extensions["db_engine"].dispose()
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    for path in instance.glob("wizard.sqlite*"):
        shutil.copy(path, stolen / path.name)
    raw = b"".join(p.read_bytes() for p in stolen.iterdir())
    assert SMTP_PASSWORD.encode() not in raw
    # Without instance/encryption.key, the token cannot be opened with any other key.
    token = stored_tokens(stolen / "wizard.sqlite")[0]
    import pytest
    from cryptography.fernet import InvalidToken

    with pytest.raises(InvalidToken):
        Fernet(Fernet.generate_key()).decrypt(token.encode())
