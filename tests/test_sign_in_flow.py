"""The whole "Sign in with Google / Microsoft" code flow through the test client,
against the local test sign-in server's google and microsoft flavours and a real
aiosmtpd server that takes XOAUTH2: the account becomes the login and the sender,
Outlook.com moves to its own host, and Test Connection logs in with the token
the provider issued (the transcript hides it). On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlmodel import Session, select

from wizard.models import ConnectionTest

from conftest import run_connection_test
from oauth_helpers import (
    choose_provider,
    draft_of,
    fill_smtp,
    landing_page,
    merchant_store,
    sign_in_with,
    signin_server,
    stored_tokens,
    tokens_seen,
    xoauth2_server,
)

PROVIDERS = ["google", "microsoft"]
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signing_in_makes_the_account_the_login_and_test_connection_uses_its_token(app, merchant, certs, provider):
    store_id = merchant_store(app, merchant)
    with signin_server(app) as signin, xoauth2_server(certs, signin, provider) as smtp:
        choose_provider(merchant, provider)
        # The merchant points the card at the test server first (a relay host is kept as typed).
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)

        round_trip = sign_in_with(merchant, provider)

        assert round_trip.callback.headers["Location"].endswith("/wizard/smtp")
        page = landing_page(merchant, round_trip.callback)
        assert f"Signed in with {PROVIDER_NAMES[provider]} as {merchant.email}" in page
        assert 'id="password"' not in page  # no password field with a sign-in
        draft = draft_of(app, store_id)
        assert (draft.auth_method, draft.username, draft.sender_email) == ("xoauth2", merchant.email, merchant.email)
        assert (draft.host, draft.port) == ("127.0.0.1", str(smtp.port))
        assert draft.password_encrypted is None

        result = run_connection_test(merchant)

        assert result.status_code == 200
        assert 'data-category="ok"' in result.get_data(as_text=True)
        access_token, _refresh = stored_tokens(app, store_id)
        assert tokens_seen(smtp) == [access_token]  # the token the provider issued, for this account
        assert [a.username for a in smtp.xoauth2_attempts] == [merchant.email]
        assert smtp.auth_attempts == [("XOAUTH2", merchant.email)]
        with Session(app.extensions["db_engine"]) as session:
            [test] = session.exec(select(ConnectionTest).where(ConnectionTest.store_id == store_id)).all()
        assert "C: AUTH XOAUTH2 [redacted]" in test.transcript
        assert access_token not in " ".join(test.transcript)


@pytest.mark.parametrize("provider, alias_words", [
    ("google", "Send mail as"),
    ("microsoft", "Send As"),
])
def test_another_sender_can_be_typed_and_gets_the_send_as_hint(app, merchant, provider, alias_words):
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, provider)
        fill_smtp(merchant, host="127.0.0.1", port=2525)
        sign_in_with(merchant, provider)

        response = fill_smtp(merchant, host="127.0.0.1", port=2525, sender_email="orders@bluefern.example.com")

        assert response.status_code == 302  # a hint, not an error: on to the test
        draft = draft_of(app, store_id)
        assert (draft.auth_method, draft.username) == ("xoauth2", merchant.email)
        assert draft.sender_email == "orders@bluefern.example.com"
        assert draft.oauth_grant_id is not None  # the sender is not part of the sign-in
        page = merchant.get("/wizard/smtp").get_data(as_text=True)
        assert "Sender email differs from Username" in page and alias_words in page


def test_an_outlook_com_account_moves_to_the_outlook_com_host(app, client):
    from conftest import sign_up

    merchant = sign_up(client, email="someone@outlook.com", store="Someone's Shop")
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, "microsoft")
        assert draft_of(app, store_id).host == "smtp.office365.com"  # the card's host

        sign_in_with(merchant, "microsoft")

        draft = draft_of(app, store_id)
        assert (draft.host, draft.port, draft.security) == ("smtp-mail.outlook.com", "587", "starttls")
        assert draft.username == "someone@outlook.com"
        page = merchant.get("/wizard/smtp").get_data(as_text=True)
        assert 'value="smtp-mail.outlook.com"' in page
        assert "Use a password instead" not in page  # Outlook.com has no password path


def test_a_work_account_on_the_microsoft_card_keeps_the_office365_host(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, "microsoft")
        sign_in_with(merchant, "microsoft")
        assert draft_of(app, store_id).host == "smtp.office365.com"
        assert "Use a password instead" in merchant.get("/wizard/smtp").get_data(as_text=True)
