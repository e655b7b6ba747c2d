"""Reading replies with a Microsoft sign-in: the sign-in asks for IMAP as well as
SMTP (one token serves both at Exchange Online), and a sign-in made when it
asked for sending alone is refused on "Bring replies into HeiChat" with a
sentence that says what to do, instead of a login failure at every fetch."""
from __future__ import annotations

import html
from dataclasses import replace

from sqlmodel import Session
from test_outbox import drain, queue_email, rows

from wizard.catalogue import load_catalogue
from wizard.inbound.imap_settings import ServerChoice, get_fetching, turn_on
from wizard.models import OAuthGrant
from wizard.models.outbox import SENT
from wizard.oauth.clients import sign_in_clients
from wizard.oauth.flow import SignInClient

from conftest import run_connection_test
from oauth_helpers import (
    choose_provider,
    fill_smtp,
    grants_of,
    merchant_store,
    saved_of,
    secret_box,
    sign_in_with,
    signin_server,
    xoauth2_server,
)

IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
SEND_ONLY = "https://outlook.office.com/SMTP.Send offline_access openid email"


def saved_microsoft_sign_in(app, merchant, certs) -> int:
    with signin_server(app) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        choose_provider(merchant, "microsoft")
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, "microsoft")
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
    return merchant_store(app, merchant)


def test_a_sign_in_from_before_the_reading_scope_still_renews_and_sends(app, merchant, certs):
    """Consented when HeiChat asked for SMTP.Send alone: renewing asks for what the grant holds,
    not for the longer list of today, which Microsoft would refuse."""
    with signin_server(app, access_token_lifetime=2) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        current = sign_in_clients(app.config)["microsoft"]
        before = SignInClient(replace(current.provider, scopes=tuple(SEND_ONLY.split())))
        app.extensions["sign_in_clients"] = {**sign_in_clients(app.config), "microsoft": before}
        choose_provider(merchant, "microsoft")
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, "microsoft")
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
        store_id = merchant_store(app, merchant)
        [grant] = grants_of(app, store_id)
        assert IMAP_SCOPE not in grant.scope.split()
        queue_email(app, store_id, "after-the-upgrade")

        # Today's clients (the IMAP scope in their list); the token is about to expire.
        stats = drain(app, sign_in_clients=sign_in_clients(app.config))

        assert stats.sent == 1 and [r.status for r in rows(app)] == [SENT]
        [renewed] = grants_of(app, store_id)
        assert renewed.status == "connected" and renewed.refreshed_at > grant.refreshed_at
        assert IMAP_SCOPE not in renewed.scope.split()  # still what was consented


def test_a_microsoft_sign_in_covers_reading_and_reading_can_be_turned_on(app, merchant, certs):
    store_id = saved_microsoft_sign_in(app, merchant, certs)
    [grant] = grants_of(app, store_id)
    assert IMAP_SCOPE in grant.scope.split() and "https://outlook.office.com/SMTP.Send" in grant.scope.split()

    with Session(app.extensions["db_engine"]) as session:
        row = turn_on(session, store_id, saved_of(app, store_id), ServerChoice("outlook.office365.com", 993, "ssl"),
                      secret_box(app), load_catalogue())
        assert (row.enabled, row.auth_method, row.oauth_grant_id) == (True, "xoauth2", grant.id)
        assert row.password_encrypted is None


def test_a_send_only_microsoft_sign_in_is_told_to_sign_in_again(app, merchant, certs):
    store_id = saved_microsoft_sign_in(app, merchant, certs)
    with Session(app.extensions["db_engine"]) as session:
        grant = session.get(OAuthGrant, grants_of(app, store_id)[0].id)
        grant.scope = SEND_ONLY  # as Microsoft granted it before HeiChat asked for reading
        session.add(grant)
        session.commit()

    response = merchant.post("/inbox/replies", {"enabled": "y", "host": "outlook.office365.com", "port": "993",
                                                "security": "ssl", "folder": "INBOX"})

    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200
    assert 'data-field="enabled"' in body
    assert "Your Microsoft sign-in allows sending only. Sign in with Microsoft again" in body
    assert 'value="outlook.office365.com"' in body  # the typed server is kept
    with Session(app.extensions["db_engine"]) as session:
        assert get_fetching(session, store_id) is None  # nothing saved, nothing tried


def test_disconnecting_the_sign_in_stops_reading_and_says_why(app, merchant, certs):
    store_id = saved_microsoft_sign_in(app, merchant, certs)
    with Session(app.extensions["db_engine"]) as session:
        turn_on(session, store_id, saved_of(app, store_id), ServerChoice("outlook.office365.com", 993, "ssl"),
                secret_box(app), load_catalogue())

    with signin_server(app):
        response = merchant.post("/oauth/disconnect")

    assert response.status_code == 302  # not a broken page: reading no longer holds the grant
    assert grants_of(app, store_id) == []
    with Session(app.extensions["db_engine"]) as session:
        row = get_fetching(session, store_id)
        assert (row.enabled, row.oauth_grant_id, row.last_category) == (False, None, "login_unavailable")
    page = html.unescape(merchant.get("/inbox/replies").get_data(as_text=True))
    assert 'data-enabled="no"' in page
    assert "Reading stopped: the sign-in it used was disconnected." in page
