"""Keeping the access token fresh: the outbox worker refreshes a token about to
expire before its batch (and stores Microsoft's rotated refresh token), and a
token the SMTP server refuses before its time is replaced — by Test Connection
and by the outbox, which retries instead of failing the email."""
from __future__ import annotations

import pytest
from test_outbox import drain, queue_email, rows, wait_until

from wizard.models.outbox import FAILED, SENT

from conftest import run_connection_test
from oauth_helpers import (
    choose_provider,
    fill_smtp,
    merchant_store,
    sign_in_with,
    signin_server,
    stored_tokens,
    tokens_seen,
    worker_clients,
    xoauth2_server,
)

ROTATES = {"google": False, "microsoft": True}


def sign_in_test_and_save(app, merchant, smtp, provider: str) -> int:
    choose_provider(merchant, provider)
    fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
    sign_in_with(merchant, provider)
    assert 'data-category="ok"' in run_connection_test(merchant).get_data(as_text=True)
    assert merchant.post("/wizard/save").status_code == 302
    return merchant_store(app, merchant)


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_the_worker_refreshes_a_token_about_to_expire_before_the_batch(app, merchant, certs, provider):
    # Two seconds of life: well inside the five minutes before expiry when a token is renewed.
    with signin_server(app, access_token_lifetime=2) as signin, xoauth2_server(certs, signin, provider) as smtp:
        store_id = sign_in_test_and_save(app, merchant, smtp, provider)
        old_access, old_refresh = stored_tokens(app, store_id)
        already_seen = len(tokens_seen(smtp))
        queue_email(app, store_id, "follow-up-1")
        queue_email(app, store_id, "follow-up-2")

        stats = drain(app, sign_in_clients=worker_clients(app))

        assert stats.sent == 2 and stats.connections_opened == 1
        assert [r.status for r in rows(app)] == [SENT, SENT]
        new_access, new_refresh = stored_tokens(app, store_id)
        assert new_access != old_access
        assert tokens_seen(smtp)[already_seen:] == [new_access]  # the new token, not the old one
        if ROTATES[provider]:
            # Microsoft rotates: the new refresh token is stored, the old one is dead at the provider.
            assert new_refresh != old_refresh
            assert signin.store.find_refresh_grant(old_refresh) is None
            assert signin.store.find_refresh_grant(new_refresh) is not None
        else:
            assert new_refresh == old_refresh
            assert signin.store.find_refresh_grant(old_refresh) is not None


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_test_connection_replaces_a_token_the_server_refuses_before_its_time(app, merchant, certs, provider):
    with signin_server(app) as signin, xoauth2_server(certs, signin, provider) as smtp:
        choose_provider(merchant, provider)
        fill_smtp(merchant, host="127.0.0.1", port=smtp.port)
        sign_in_with(merchant, provider)
        store_id = merchant_store(app, merchant)
        old_access, _ = stored_tokens(app, store_id)
        [grant] = signin.store.list_grants()
        assert signin.store.expire_access_tokens(grant.grant_id)  # still an hour left, as far as the app knows

        page = run_connection_test(merchant).get_data(as_text=True)

        assert 'data-category="ok"' in page
        new_access, _ = stored_tokens(app, store_id)
        assert new_access != old_access
        assert tokens_seen(smtp) == [old_access, new_access]


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_the_outbox_retries_with_a_new_token_when_the_server_refuses_one(app, merchant, certs, provider):
    with signin_server(app) as signin, xoauth2_server(certs, signin, provider) as smtp:
        store_id = sign_in_test_and_save(app, merchant, smtp, provider)
        old_access, _ = stored_tokens(app, store_id)
        [grant] = signin.store.list_grants()
        signin.store.expire_access_tokens(grant.grant_id)
        already_seen = len(tokens_seen(smtp))
        queue_email(app, store_id, "follow-up-1")
        clients = worker_clients(app)

        first = drain(app, sign_in_clients=clients)

        assert first.failed == 0
        assert [r.status for r in rows(app)] != [FAILED]
        # The retry is an ordinary one (a short backoff here): wait until it went out.
        assert wait_until(lambda: drain(app, sign_in_clients=clients).sent == 1 or rows(app)[0].status == SENT)
        [email] = rows(app)
        assert email.status == SENT
        new_access, _ = stored_tokens(app, store_id)
        assert new_access != old_access
        assert tokens_seen(smtp)[already_seen:] == [old_access, new_access]
        with smtp.lock:
            assert len(smtp.messages) == 1
