"""Reading replies with a Microsoft sign-in: a plain sign-in asks to send only;
"Allow reading with Microsoft" on "Bring replies into HeiChat" asks for
IMAP.AccessAsUser.All too (one token then serves SMTP and IMAP at Exchange
Online), and from then on renewals and new sign-ins keep it. A sign-in that
allows sending only is refused for reading with a sentence saying what to do,
instead of a login failure at every fetch. Disconnecting turns reading off."""
from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session
from test_outbox import drain, queue_email, rows

from wizard.catalogue import load_catalogue
from wizard.inbound.imap_settings import ServerChoice, get_fetching, turn_on
from wizard.models.outbox import SENT
from wizard.oauth.clients import sign_in_clients

from conftest import run_connection_test
from oauth_helpers import (
    audit_actions,
    choose_provider,
    draft_of,
    fill_smtp,
    grants_of,
    landing_page,
    merchant_store,
    saved_of,
    secret_box,
    sign_in_with,
    signin_server,
    xoauth2_server,
)

IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
ALLOW = "Allow reading with Microsoft"
READING_SERVER = ServerChoice("outlook.office365.com", 993, "ssl")


def asked_scopes(round_trip) -> set[str]:
    return set(parse_qs(urlsplit(round_trip.start.headers["Location"]).query)["scope"][0].split())


def save_microsoft_sign_in(app, merchant, smtp):
    choose_provider(merchant, "microsoft")
    fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
    round_trip = sign_in_with(merchant, "microsoft")
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    return round_trip


def turn_on_directly(app, store_id: int):
    """Turning reading on without its connection test (the real Exchange host is not reachable here)."""
    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        return turn_on(session, store_id, saved_of(app, store_id), READING_SERVER, secret_box(app), load_catalogue())


def allow_reading(app, merchant) -> None:
    round_trip = sign_in_with(merchant, "microsoft", return_to="replies", purpose="reading")
    assert IMAP_SCOPE in asked_scopes(round_trip)
    assert round_trip.callback.headers["Location"].endswith("/inbox/replies")


def test_a_plain_sign_in_asks_to_send_only_and_reading_asks_to_allow_it(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        first = save_microsoft_sign_in(app, merchant, smtp)
        store_id = merchant_store(app, merchant)
        assert SMTP_SCOPE in asked_scopes(first) and IMAP_SCOPE not in asked_scopes(first)
        [grant] = grants_of(app, store_id)
        assert IMAP_SCOPE not in grant.scope.split()

        page = html.unescape(merchant.get("/inbox/replies").get_data(as_text=True))
        assert ALLOW in page and 'name="purpose" value="reading"' in page
        refused = html.unescape(merchant.post("/inbox/replies", {
            "enabled": "y", "host": "outlook.office365.com", "port": "993", "security": "ssl", "folder": "INBOX",
        }).get_data(as_text=True))
        assert 'data-field="enabled"' in refused
        assert "Your Microsoft sign-in allows sending only." in refused and ALLOW in refused
        assert 'value="outlook.office365.com"' in refused  # the typed server is kept
        with Session(app.extensions["db_engine"]) as session:
            assert get_fetching(session, store_id) is None  # nothing saved, nothing tried

        allow_reading(app, merchant)

        [allowed] = grants_of(app, store_id)
        assert allowed.id == grant.id and IMAP_SCOPE in allowed.scope.split()  # the same sign-in, renewed
        assert ALLOW not in html.unescape(merchant.get("/inbox/replies").get_data(as_text=True))
        row = turn_on_directly(app, store_id)
        assert (row.enabled, row.auth_method, row.oauth_grant_id, row.password_encrypted) == (
            True, "xoauth2", grant.id, None)


def test_allowing_reading_renews_the_saved_sign_in_and_leaves_the_draft_alone(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        save_microsoft_sign_in(app, merchant, smtp)
        store_id = merchant_store(app, merchant)
        [saved_grant] = grants_of(app, store_id)
        # Step 3 edited after saving: another host in the draft (its sign-in is dropped there).
        fill_smtp(merchant, host="localhost", port=smtp.port)
        assert draft_of(app, store_id).host == "localhost"

        # Another account at Microsoft: refused, nothing changes.
        wrong = sign_in_with(merchant, "microsoft", email="someone-else@example.com", return_to="replies",
                             purpose="reading")
        page = html.unescape(landing_page(merchant, wrong.callback))
        assert f"You signed in as someone-else@example.com, but HeiChat sends as {merchant.email}" in page
        assert [(g.id, IMAP_SCOPE in g.scope.split()) for g in grants_of(app, store_id)] == [(saved_grant.id, False)]

        allow_reading(app, merchant)

        [allowed] = grants_of(app, store_id)
        assert allowed.id == saved_grant.id and IMAP_SCOPE in allowed.scope.split()
        assert saved_of(app, store_id).oauth_grant_id == saved_grant.id
        draft = draft_of(app, store_id)
        assert (draft.host, draft.oauth_grant_id) == ("localhost", None)  # the draft as the merchant left it
        assert turn_on_directly(app, store_id).enabled
        assert audit_actions(app, store_id)[-1] == "oauth.reading_allowed"


def test_a_sign_in_that_reads_keeps_reading_when_renewed_and_signed_in_again(app, merchant, certs):
    with signin_server(app, access_token_lifetime=2) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        save_microsoft_sign_in(app, merchant, smtp)
        store_id = merchant_store(app, merchant)
        allow_reading(app, merchant)
        turn_on_directly(app, store_id)
        [grant] = grants_of(app, store_id)
        queue_email(app, store_id, "after-allowing")

        # The token is about to expire: the worker renews it, asking for what the grant holds.
        stats = drain(app, sign_in_clients=sign_in_clients(app.config))

        assert stats.sent == 1 and [r.status for r in rows(app)] == [SENT]
        [renewed] = grants_of(app, store_id)
        assert renewed.refreshed_at > grant.refreshed_at and IMAP_SCOPE in renewed.scope.split()

        # "Sign in again" (no "reading" purpose) still asks for reading: the store reads with it.
        again = sign_in_with(merchant, "microsoft")
        assert IMAP_SCOPE in asked_scopes(again)
        assert IMAP_SCOPE in grants_of(app, store_id)[0].scope.split()


def test_disconnecting_the_sign_in_stops_reading_and_says_why(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin, "microsoft") as smtp:
        save_microsoft_sign_in(app, merchant, smtp)
        store_id = merchant_store(app, merchant)
        allow_reading(app, merchant)
        turn_on_directly(app, store_id)

        response = merchant.post("/oauth/disconnect")

    assert response.status_code == 302  # not a broken page: reading no longer holds the grant
    assert grants_of(app, store_id) == []
    with Session(app.extensions["db_engine"]) as session:
        row = get_fetching(session, store_id)
        assert (row.enabled, row.oauth_grant_id, row.last_category) == (False, None, "login_unavailable")
    page = html.unescape(merchant.get("/inbox/replies").get_data(as_text=True))
    assert 'data-enabled="no"' in page
    assert "Reading stopped: the sign-in it used was disconnected." in page


def test_a_google_sign_in_reads_without_being_asked_again(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin, "google") as smtp:
        choose_provider(merchant, "google")
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, "google")
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
    assert ALLOW.replace("Microsoft", "Google") not in merchant.get("/inbox/replies").get_data(as_text=True)
    store_id = merchant_store(app, merchant)
    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        row = turn_on(session, store_id, saved_of(app, store_id), ServerChoice("imap.gmail.com", 993, "ssl"),
                      secret_box(app), load_catalogue())
    assert row.enabled and row.auth_method == "xoauth2"
