"""The sign-in's tokens: encrypted at rest, never in a page (the merchant's or
support's), a log, a transcript or a URL; re-encrypted by ``rotate-key``; and
bound to the SMTP host and account they were issued for — changing either drops
the sign-in, and the token never reaches the new server."""
from __future__ import annotations

import logging

from test_outbox import drain, queue_email, rows

from wizard.models.outbox import SENT

from conftest import database_text, run_connection_test
from helpers import all_bodies, support_agent
from oauth_helpers import (
    CLIENT_SECRET,
    choose_provider,
    draft_of,
    fill_smtp,
    grants_of,
    merchant_store,
    saved_of,
    sign_in_with,
    signin_server,
    stored_tokens,
    tokens_seen,
    worker_clients,
    xoauth2_server,
)


def signed_in_and_saved(app, merchant, signin, smtp, provider="google") -> int:
    """Sign in, pass Test Connection and save; returns the store id."""
    choose_provider(merchant, provider)
    fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
    sign_in_with(merchant, provider)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    return merchant_store(app, merchant)


def test_tokens_never_appear_in_the_database_pages_logs_transcripts_or_urls(app, merchant, certs, caplog):
    caplog.set_level(logging.DEBUG)
    with signin_server(app, access_token_lifetime=2) as signin, xoauth2_server(certs, signin) as smtp:
        store_id = signed_in_and_saved(app, merchant, signin, smtp)
        queue_email(app, store_id, "follow-up-1")
        # A short-lived token: the worker refreshes it, so two token pairs exist.
        first_access, first_refresh = stored_tokens(app, store_id)
        assert drain(app, sign_in_clients=worker_clients(app)).sent == 1
        secrets = {first_access, first_refresh, *stored_tokens(app, store_id), *tokens_seen(smtp), CLIENT_SECRET}
        assert len(secrets) >= 4
        for path in ("/wizard/smtp", "/wizard/test", "/wizard/send", "/wizard/done", "/troubleshooting", "/inbox",
                     "/audit"):
            merchant.get(path)
        agent = support_agent(app)
        agent.get(f"/support/stores/{store_id}")

        stored = database_text(app)
        seen = all_bodies(merchant, agent)  # every page and header, redirects' Locations included
        for secret in secrets:
            assert secret not in stored
            assert secret not in seen
            assert secret not in caplog.text
        assert "AUTH XOAUTH2 [redacted]" in seen  # the transcript, as support sees it
        assert "Bearer" not in seen and "Bearer" not in caplog.text
        assert "/google/token" in caplog.text  # the log did record the token requests (their paths)


def test_rotate_key_reencrypts_the_tokens_and_sending_still_works(app, merchant, certs, monkeypatch):
    monkeypatch.delenv("WIZARD_ENCRYPTION_KEY", raising=False)
    with signin_server(app) as signin, xoauth2_server(certs, signin) as smtp:
        store_id = signed_in_and_saved(app, merchant, signin, smtp)
        [before] = grants_of(app, store_id)
        old_key = app.config["ENCRYPTION_KEYS"]

        result = app.test_cli_runner().invoke(args=["rotate-key"])

        assert result.exit_code == 0, result.output
        assert "Re-encrypted 2 secrets" in result.output  # the access and the refresh token
        assert app.config["ENCRYPTION_KEYS"] != old_key and "," not in app.config["ENCRYPTION_KEYS"]
        [after] = grants_of(app, store_id)
        assert after.access_token_encrypted != before.access_token_encrypted
        assert after.refresh_token_encrypted != before.refresh_token_encrypted
        # Only the new key from here on: the worker still signs in and sends.
        queue_email(app, store_id, "after-rotation")
        assert drain(app, sign_in_clients=worker_clients(app)).sent == 1
        assert [r.status for r in rows(app)] == [SENT]
        assert tokens_seen(smtp)[-1] == stored_tokens(app, store_id)[0]


def test_changing_the_host_drops_the_sign_in_and_the_token_never_goes_there(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin) as first, xoauth2_server(certs, signin) as other:
        choose_provider(merchant, "google")
        fill_smtp(merchant, host="127.0.0.1", port=first.port)
        sign_in_with(merchant, "google")
        store_id = merchant_store(app, merchant)

        # "localhost" is another host name for the token, whatever it resolves to.
        response = fill_smtp(merchant, host="localhost", port=other.port)

        assert response.status_code == 200  # back on the step with the reason
        assert "so the sign-in was dropped" in response.get_data(as_text=True)
        draft = draft_of(app, store_id)
        assert draft.oauth_grant_id is None
        page = merchant.get("/wizard/smtp").get_data(as_text=True)
        assert "so the sign-in was dropped" in page and "Sign in with Google" in page
        tested = merchant.post("/wizard/test", follow_redirects=True)
        assert tested.status_code == 200
        assert other.auth_attempts == [] and tokens_seen(other) == []
        assert tokens_seen(first) == []


def test_changing_the_username_drops_the_sign_in(app, merchant, certs):
    with signin_server(app) as signin, xoauth2_server(certs, signin) as smtp:
        choose_provider(merchant, "google")
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, "google")
        store_id = merchant_store(app, merchant)

        response = fill_smtp(merchant, host="127.0.0.1", port=smtp.port, username="someone-else@bluefern.example.com")

        assert "so the sign-in was dropped" in response.get_data(as_text=True)
        assert draft_of(app, store_id).oauth_grant_id is None
        merchant.post("/wizard/test", follow_redirects=True)
        assert smtp.auth_attempts == []  # neither the old token nor anything else was sent


def test_a_saved_sign_in_is_not_sent_to_a_host_it_was_not_issued_for(app, merchant, certs):
    """Saved settings whose host was changed behind the app's back (a restored
    backup, a hand edit): the outbox holds the mail rather than send the token."""
    from sqlmodel import Session

    with signin_server(app) as signin, xoauth2_server(certs, signin) as smtp, xoauth2_server(certs, signin) as other:
        store_id = signed_in_and_saved(app, merchant, signin, smtp)
        with Session(app.extensions["db_engine"]) as session:
            saved = session.get(type(saved_of(app, store_id)), saved_of(app, store_id).id)
            saved.host, saved.port = "localhost", other.port
            session.add(saved)
            session.commit()
        queue_email(app, store_id, "follow-up")

        stats = drain(app, sign_in_clients=worker_clients(app))

        assert stats.sent == 0 and other.auth_attempts == []
        [email] = rows(app)
        assert email.status == "queued", (email.status, email.last_category)


def test_signing_in_again_for_a_new_draft_host_keeps_the_saved_settings_sending(app, merchant, certs):
    """Saved settings send with their sign-in while the merchant edits the draft:
    moving the draft to another host and signing in again (same account) must not
    rebind the saved settings' tokens to the draft's new host."""
    with signin_server(app) as signin, xoauth2_server(certs, signin) as smtp, xoauth2_server(certs, signin) as other:
        store_id = signed_in_and_saved(app, merchant, signin, smtp)
        fill_smtp(merchant, host="localhost", port=other.port)  # drops the draft's sign-in
        sign_in_with(merchant, "google")
        assert draft_of(app, store_id).oauth_grant_id is not None
        queue_email(app, store_id, "while-editing")

        stats = drain(app, sign_in_clients=worker_clients(app))

        assert stats.sent == 1, [(r.status, r.last_category) for r in rows(app)]
        assert [r.status for r in rows(app)] == [SENT]
        assert other.auth_attempts == []  # the saved settings still go to their own server
