"""The merchant's page "Bring replies into HeiChat": turning reading on with the sending login, Test IMAP, turning it off."""
from __future__ import annotations

import pytest

from wizard.catalogue import load_catalogue
from wizard.inbound.imap_settings import read_identity, suggested_server
from wizard.models import SmtpSettings
from wizard.secrets import SecretBox, ServerIdentity

from conftest import database_text
from dovecot_server import dovecot  # noqa: F401  (the fixture)
from failure_peers import SMTP_PASSWORD, SMTP_USERNAME
from helpers import all_bodies, store_id_of
from imap_helpers import allow_test_imap, fetching_row, result_category, save_sending, turn_on_reading


@pytest.fixture
def sending(app, merchant, starttls_server):
    allow_test_imap(app)
    save_sending(merchant, starttls_server)
    return merchant


def test_turning_on_borrows_the_sending_login_and_tests_at_once(app, sending, dovecot):  # noqa: F811
    page = sending.get("/inbox/replies").get_data(as_text=True)
    assert "sending password" in page and SMTP_USERNAME in page  # the page says which login reads
    assert 'name="password"' not in page

    response = turn_on_reading(sending, dovecot)
    assert response.status_code == 200
    assert result_category(response) == "ok"
    body = response.get_data(as_text=True)
    assert "Connected: HeiChat can read INBOX on localhost" in body and 'data-enabled="yes"' in body

    row = fetching_row(app, store_id_of(app, sending.email))
    assert (row.enabled, row.host, row.port, row.security, row.username) == (True, "localhost", dovecot.imaps_port,
                                                                              "ssl", SMTP_USERNAME)
    assert row.last_category == "ok" and row.last_checked_at is not None
    box = SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])
    assert box.unseal(row.password_encrypted, row.password_binding, read_identity(row)) == SMTP_PASSWORD
    # Sealed for the IMAP server only: the same ciphertext is refused for the SMTP identity.
    assert not box.is_bound(row.password_binding, ServerIdentity.of("localhost", row.port, "starttls", SMTP_USERNAME))
    assert SMTP_PASSWORD not in all_bodies(sending)
    assert SMTP_PASSWORD not in database_text(app)


def test_htmx_gets_the_panel_only(app, sending, dovecot):  # noqa: F811
    response = turn_on_reading(sending, dovecot, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body
    assert 'id="replies-panel"' in body and result_category(response) == "ok"
    assert "HX-Request" in response.headers.get("Vary", "")


def test_test_imap_shows_the_stage_and_the_hint(app, sending, dovecot):  # noqa: F811
    response = turn_on_reading(sending, dovecot, folder="Replies")
    assert result_category(response) == "folder_missing"
    body = response.get_data(as_text=True)
    assert "Stopped at: <strong>Opening the folder</strong>" in body
    assert "There is no folder called Replies" in body
    row = fetching_row(app, store_id_of(app, sending.email))
    assert row.last_category == "folder_missing"

    again = sending.post("/inbox/replies", {"enabled": "y", "host": "localhost", "port": str(dovecot.imaps_port),
                                            "security": "ssl", "folder": "Replies", "action": "test"})
    assert result_category(again) == "folder_missing"


def test_the_password_never_goes_to_a_host_of_another_domain(app, sending, dovecot):  # noqa: F811
    response = turn_on_reading(sending, dovecot, host="imap.elsewhere.example.net")
    body = response.get_data(as_text=True)
    assert 'data-field="host"' in body and "same provider or domain as localhost" in body
    assert fetching_row(app, store_id_of(app, sending.email)) is None
    assert result_category(response) is None  # nothing was tried


def test_turning_off_forgets_the_borrowed_password(app, sending, dovecot):  # noqa: F811
    turn_on_reading(sending, dovecot)
    response = sending.post("/inbox/replies", {"host": "localhost", "port": str(dovecot.imaps_port),
                                               "security": "ssl", "folder": "INBOX", "action": "save"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox/replies"
    row = fetching_row(app, store_id_of(app, sending.email))
    assert row.enabled is False and row.password_encrypted is None and row.password_binding is None
    page = sending.get("/inbox/replies").get_data(as_text=True)
    assert "no longer read" in page and 'data-enabled="no"' in page and 'value="test"' not in page


def test_post_without_csrf_is_refused(app, sending, dovecot):  # noqa: F811
    response = app.test_client().post("/inbox/replies", data={"enabled": "y", "host": "localhost"})
    assert response.status_code in (302, 400)  # signed out: sign-in first; never saved
    refused = sending.client.post("/inbox/replies", data={"enabled": "y", "host": "localhost", "action": "save"})
    assert refused.status_code == 400
    assert fetching_row(app, store_id_of(app, sending.email)) is None


def test_without_saved_sending_settings_nothing_can_be_turned_on(app, merchant):
    page = merchant.get("/inbox/replies").get_data(as_text=True)
    assert "Save your sending settings" in page and 'name="host"' not in page


@pytest.mark.parametrize("provider, smtp_host, imap_host", [
    ("gmail", "smtp.gmail.com", "imap.gmail.com"),
    ("microsoft365", "smtp.office365.com", "outlook.office365.com"),
    ("zoho", "smtppro.zoho.eu", "imappro.zoho.eu"),
    ("zoho", "smtp.zoho.in", "imap.zoho.in"),
    ("custom", "smtp.bluefern.example.com", "imap.bluefern.example.com"),
])
def test_the_imap_server_is_prefilled_from_the_provider(provider, smtp_host, imap_host):
    saved = SmtpSettings(store_id=1, provider=provider, host=smtp_host, port=587, security="starttls",
                         sender_name="", sender_email="", username="", password_encrypted="", fingerprint="")
    choice = suggested_server(saved, load_catalogue())
    assert (choice.host, choice.port, choice.security) == (imap_host, 993, "ssl")


def test_the_inbox_and_the_sending_settings_lead_to_the_page(app, merchant):
    for start in ("/inbox", "/inbox/settings"):
        page = merchant.get(start).get_data(as_text=True)
        assert 'href="/inbox/replies"' in page, start
    landing = merchant.get("/inbox/replies")
    assert landing.status_code == 200 and "Bring replies into HeiChat" in landing.get_data(as_text=True)
