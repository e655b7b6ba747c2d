"""The whole wizard through the Flask test client, as a plain browser and as htmx."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import SMTP_PASSWORD, database_text, run_connection_test, smtp_form
from helpers import choose_other, enable_prechat


def run_wizard(merchant, server, htmx: bool):
    """Steps 1-5 against ``server``; returns the final send-step response."""
    # After each successful POST: a redirect without JavaScript, an HX-Location (200) with htmx.
    moved = 200 if htmx else 302
    r = enable_prechat(merchant, htmx)
    assert r.status_code == moved
    r = choose_other(merchant, htmx)
    assert r.status_code == moved
    r = merchant.post("/wizard/smtp", smtp_form(server), htmx=htmx)
    assert r.status_code == moved, r.get_data(as_text=True)
    r = run_connection_test(merchant, htmx)
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    assert 'data-category="ok"' in body, body
    r = merchant.post("/wizard/save", {}, htmx=htmx)
    assert r.status_code == moved
    r = merchant.post("/wizard/send", {"recipient": "customer@example.com"}, htmx=htmx)
    assert r.status_code == moved
    return r


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_full_wizard_sends_a_real_email(merchant, starttls_server, htmx):
    r = run_wizard(merchant, starttls_server, htmx)
    if htmx:
        location = json.loads(r.headers["HX-Location"])
        assert location["path"].startswith("/wizard/send?sent=")
        page = merchant.get(location["path"], htmx=True)
        assert page.get_data(as_text=True).lstrip().startswith("{#") is False
        assert "<html" not in page.get_data(as_text=True)
    else:
        assert r.headers["Location"].startswith("/wizard/send?sent=")
        page = merchant.get(r.headers["Location"])
        assert "<html" in page.get_data(as_text=True)
    body = page.get_data(as_text=True)
    assert "Sent — the server accepted the message" in body
    assert "queued as TEST000001" in body and "Queue id at the server" in body
    [received] = starttls_server.messages
    assert received.envelope_to == ["customer@example.com"]
    assert str(received.message["From"]) == "Blue Fern Support <merchant@bluefern.example.com>"
    assert "Blue Fern Shop" in received.message["Subject"]
    assert "spam" in received.message.get_content()
    done = merchant.get("/wizard/done").get_data(as_text=True)
    assert "tested" in done and "untested" not in done


def test_password_never_leaves_the_server(app, merchant, starttls_server, caplog):
    caplog.set_level(logging.DEBUG)
    run_wizard(merchant, starttls_server, htmx=False)
    run_wizard(merchant, starttls_server, htmx=True)
    # Live validation with the password typed, and every page revisited.
    merchant.post("/wizard/smtp/check", smtp_form(starttls_server), htmx=True, trigger="password")
    for url in ("/wizard/pre-chat-form", "/wizard/provider", "/wizard/smtp", "/wizard/test", "/wizard/send",
                "/wizard/done", "/contacts", "/wizard/smtp?x=1"):
        merchant.get(url)
        merchant.get(url, htmx=True)
    assert len(merchant.bodies) > 20
    for body in merchant.bodies:
        assert SMTP_PASSWORD not in body
    app_records = [r for r in caplog.records if not r.name.startswith("mail.log")]
    for record in app_records:
        assert SMTP_PASSWORD not in record.getMessage()
    # The database holds only ciphertext: neither its contents nor (SQLite) its files show the password.
    assert SMTP_PASSWORD not in database_text(app)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        db_path = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in db_path.parent.glob("wizard.sqlite*"))
        assert SMTP_PASSWORD.encode() not in raw
    assert "gAAAA" in database_text(app)  # Fernet tokens are there instead


def test_posting_without_csrf_token_is_refused(merchant, client):
    response = client.post("/wizard/pre-chat-form", data={"enabled": "y", "email_required": "y"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    htmx_response = client.post("/wizard/smtp/check", data={"host": "smtp.gmail.com"}, headers={"HX-Request": "true"})
    assert htmx_response.status_code == 400
