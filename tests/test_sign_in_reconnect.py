"""The provider refuses the refresh token (revoked, expired, password changed):
the connection needs signing in again. Held mail stays queued (never failed)
with the reason on each email, the wizard, troubleshooting and inbox pages show
one "Sign in again" banner, and signing in again with the same account sends
the held mail — each email exactly once. On SQLite and PostgreSQL."""
from __future__ import annotations

import html

import pytest
from test_outbox import drain, make_conversation, queue_email, received_ids, rows

from wizard.models.outbox import QUEUED, SENT

from conftest import run_connection_test
from oauth_helpers import (
    BANNER,
    audit_actions,
    choose_provider,
    fill_smtp,
    grants_of,
    landing_page,
    merchant_store,
    saved_of,
    sign_in_with,
    signin_server,
    worker_clients,
    xoauth2_server,
)

HELD_TITLE = "The mailbox sign-in has stopped working — sign in again"


@pytest.mark.parametrize("provider", ["google", "microsoft"])
@pytest.mark.parametrize("expiring", [False, True], ids=["token-still-valid", "token-expiring"])
def test_a_revoked_sign_in_holds_the_mail_until_the_merchant_signs_in_again(app, merchant, certs, provider,
                                                                            expiring):
    # token-still-valid: the SMTP server refuses the revoked token, the renewal is refused;
    # token-expiring: the worker renews before the batch and the provider refuses at once.
    lifetime = 2 if expiring else 3600
    with signin_server(app, access_token_lifetime=lifetime) as signin, xoauth2_server(certs, signin, provider) as smtp:
        choose_provider(merchant, provider)
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, provider)
        assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
        assert merchant.post("/wizard/save").status_code == 302
        store_id = merchant_store(app, merchant)
        [grant] = grants_of(app, store_id)
        [at_provider] = signin.store.list_grants()
        assert signin.store.revoke_grant(at_provider.grant_id)  # the merchant removed the app at the provider
        conversation_id = make_conversation(app, store_id)
        emails = [queue_email(app, store_id, f"follow-up-{n}", conversation_id=conversation_id) for n in (1, 2, 3)]
        clients = worker_clients(app)

        stats = drain(app, sign_in_clients=clients)

        assert stats.sent == 0 and stats.failed == 0
        held = rows(app)
        assert [(r.status, r.last_category) for r in held] == [(QUEUED, "reconnect_needed")] * 3
        with smtp.lock:
            assert smtp.messages == []
        assert "oauth.refresh_failed" in audit_actions(app, store_id)
        [needs_sign_in] = grants_of(app, store_id)
        assert needs_sign_in.status == "reconnect_needed"
        # Running the worker again sends nothing: the mail waits for the merchant.
        assert drain(app, sign_in_clients=clients).sent == 0

        conversation = html.unescape(merchant.get(f"/inbox/{conversation_id}").get_data(as_text=True))
        assert HELD_TITLE in conversation and 'data-category="reconnect_needed"' in conversation
        for path in ("/wizard/smtp", "/wizard/test", "/troubleshooting", "/inbox", f"/inbox/{conversation_id}"):
            page = html.unescape(merchant.get(path).get_data(as_text=True))
            assert page.count(BANNER) == 1, path
            assert "3 emails are waiting in the outbox" in page, path
            assert merchant.email in page

        # "Sign in again" on the inbox banner, same account: back to the inbox, mail due at once.
        again = sign_in_with(merchant, provider, return_to="inbox")

        assert again.callback.headers["Location"].endswith("/inbox")
        page = html.unescape(landing_page(merchant, again.callback))
        assert BANNER not in page and "Held emails are on their way" in page
        [renewed] = grants_of(app, store_id)
        assert (renewed.id, renewed.status) == (grant.id, "connected")  # the same sign-in, renewed
        assert saved_of(app, store_id).oauth_grant_id == grant.id
        assert audit_actions(app, store_id)[-1] == "oauth.reconnected"

        stats = drain(app, sign_in_clients=clients)

        assert stats.sent == 3
        assert [r.status for r in rows(app)] == [SENT] * 3
        assert received_ids(smtp) == {email.message_id: 1 for email in emails}
        assert drain(app, sign_in_clients=clients).sent == 0  # nothing twice
        assert received_ids(smtp) == {email.message_id: 1 for email in emails}
