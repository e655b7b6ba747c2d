"""Disconnect: the provider revokes the sign-in where it offers revocation
(Google), the tokens are deleted either way, the page says which happened, and
the audit log records it."""
from __future__ import annotations

import html

import pytest

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
    sign_in_with,
    signin_server,
    stored_tokens,
    xoauth2_server,
)

REVOKED = "The provider confirmed HeiChat's access is revoked."
NOT_REVOKED = "Its tokens are deleted here; you can also remove HeiChat from your account's connected apps"


@pytest.mark.parametrize("provider, revoked_at_provider", [("google", True), ("microsoft", False)])
def test_disconnect_revokes_where_the_provider_can_and_deletes_the_tokens(app, merchant, provider,
                                                                          revoked_at_provider):
    with signin_server(app) as signin:
        choose_provider(merchant, provider)
        fill_smtp(merchant, host="127.0.0.1", port=2525)
        sign_in_with(merchant, provider)
        store_id = merchant_store(app, merchant)
        access, refresh = stored_tokens(app, store_id)
        assert signin.store.check_access_token(merchant.email, access)

        response = merchant.post("/oauth/disconnect")

        assert response.status_code == 302 and response.headers["Location"].endswith("/wizard/smtp")
        page = html.unescape(landing_page(merchant, response))
        assert f"Disconnected {merchant.email}." in page
        assert (REVOKED in page) is revoked_at_provider
        assert (NOT_REVOKED in page) is not revoked_at_provider
        assert grants_of(app, store_id) == []
        assert draft_of(app, store_id).oauth_grant_id is None
        # Revoked at Google: the access token no longer works there either. Microsoft
        # offers no revocation endpoint, so its token lives on until it expires.
        assert signin.store.check_access_token(merchant.email, access) is not revoked_at_provider
        assert (signin.store.find_refresh_grant(refresh) is None) is revoked_at_provider
        assert audit_actions(app, store_id)[-1] == "oauth.disconnected"
        assert "Sign in with" in page  # the card offers signing in again


def test_disconnect_without_a_sign_in_says_so(app, merchant):
    with signin_server(app):
        choose_provider(merchant, "google")
        response = merchant.post("/oauth/disconnect")
        assert "There is no sign-in to disconnect." in html.unescape(landing_page(merchant, response))


def test_a_sign_in_nothing_uses_any_more_is_deleted(app, merchant, certs):
    other = "sales@" + merchant.email.split("@", 1)[1]
    with signin_server(app) as signin, xoauth2_server(certs, signin, "google") as smtp:
        choose_provider(merchant, "google")
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, "google")
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
        store_id = merchant_store(app, merchant)
        [first] = grants_of(app, store_id)

        # Another account in the draft: the saved settings still send with the first one.
        sign_in_with(merchant, "google", email=other)
        assert sorted(g.account_email for g in grants_of(app, store_id)) == sorted([merchant.email, other])
        assert saved_of(app, store_id).oauth_grant_id == first.id

        # Saved with the other account: nothing uses the first grant, so its tokens go.
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
        [kept] = grants_of(app, store_id)
        assert kept.account_email == other and saved_of(app, store_id).oauth_grant_id == kept.id
        assert draft_of(app, store_id).oauth_grant_id == kept.id
