"""A sign-in that does not complete brings the merchant back to step 3 with a plain
explanation (never a 500, never a half-made sign-in): cancelled, Microsoft's admin
consent (AADSTS65001), a replayed or foreign callback, a provider this
installation has not registered, a provider that does not answer."""
from __future__ import annotations

import html

import pytest

from conftest import Merchant
from helpers import sign_in
from oauth_helpers import (
    answer_consent,
    begin_sign_in,
    choose_provider,
    draft_of,
    fill_smtp,
    grants_of,
    landing_page,
    local_path,
    merchant_store,
    sign_in_with,
    signin_server,
    stored_tokens,
)


def page_after(merchant, response) -> str:
    assert response.status_code == 302, response.status_code
    return html.unescape(landing_page(merchant, response))


def assert_not_signed_in(app, store_id: int) -> None:
    draft = draft_of(app, store_id)
    assert draft.auth_method == "password" and draft.oauth_grant_id is None
    assert grants_of(app, store_id) == []


@pytest.mark.parametrize("provider, decision, title", [
    ("google", "cancel", "Sign-in was cancelled"),
    ("microsoft", "cancel", "Sign-in was cancelled"),
    ("microsoft", "admin_consent", "Your organisation's admin must approve HeiChat first"),
])
def test_a_refusal_at_the_provider_comes_back_to_the_step_explained(app, merchant, provider, decision, title):
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, provider)
        fill_smtp(merchant, host="127.0.0.1", port=2525)

        round_trip = sign_in_with(merchant, provider, decision=decision)

        assert round_trip.callback.headers["Location"].endswith("/wizard/smtp")
        page = page_after(merchant, round_trip.callback)
        assert title in page
        if decision == "admin_consent":
            assert "Enterprise applications" in page  # where the admin approves it
            assert "AADSTS65001" in round_trip.callback_url  # what Microsoft said, read by the app
        assert_not_signed_in(app, store_id)
        assert 'id="password"' in page  # the password path is still there


def test_a_replayed_callback_changes_nothing_and_is_explained(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app) as signin:
        choose_provider(merchant, "google")
        round_trip = sign_in_with(merchant, "google")
        [grant] = grants_of(app, store_id)

        replay = merchant.get(round_trip.callback_url)

        page = page_after(merchant, replay)
        assert "That sign-in link was not ours or has expired" in page
        [same] = grants_of(app, store_id)
        assert (same.id, same.access_token_encrypted) == (grant.id, grant.access_token_encrypted)
        # The code never went back to the provider (a replayed code would revoke the sign-in there).
        access, _refresh = stored_tokens(app, store_id)
        assert signin.store.check_access_token(merchant.email, access)


def test_a_callback_opened_in_another_browser_is_refused_and_the_first_still_works(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, "google")
        start = begin_sign_in(merchant, "google")
        callback_url = local_path(answer_consent(start.headers["Location"], email=merchant.email).headers["Location"])
        # The same merchant, signed in on another browser, opens that link.
        other_client = app.test_client()
        assert sign_in(other_client, merchant.email, "merchant-pass-1").status_code == 302
        other = Merchant(other_client, merchant.email)

        response = other.get(callback_url)

        assert "That sign-in link was not ours or has expired" in page_after(other, response)
        assert_not_signed_in(app, store_id)
        # The browser that started it can still finish: the code was never spent.
        assert merchant.get(callback_url).status_code == 302
        assert draft_of(app, store_id).auth_method == "xoauth2"


def test_a_callback_with_a_state_of_another_sign_in_is_refused(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app):
        choose_provider(merchant, "google")
        first = begin_sign_in(merchant, "google")
        old_answer = answer_consent(first.headers["Location"], email=merchant.email)
        begin_sign_in(merchant, "google")  # a second start replaces the first in this browser

        response = merchant.get(local_path(old_answer.headers["Location"]))

        assert "That sign-in link was not ours or has expired" in page_after(merchant, response)
        assert_not_signed_in(app, store_id)


@pytest.mark.parametrize("provider, name, settings", [
    ("google", "Google", "WIZARD_OAUTH_GOOGLE_CLIENT_ID and WIZARD_OAUTH_GOOGLE_CLIENT_SECRET"),
    ("microsoft", "Microsoft", "WIZARD_OAUTH_MICROSOFT_CLIENT_ID and WIZARD_OAUTH_MICROSOFT_CLIENT_SECRET"),
])
def test_a_provider_not_registered_here_says_which_settings_are_missing(app, merchant, provider, name, settings):
    store_id = merchant_store(app, merchant)
    choose_provider(merchant, provider)

    card = html.unescape(merchant.get("/wizard/smtp").get_data(as_text=True))
    assert f"Sign-in with {name} is not set up on this installation" in card and settings in card
    assert 'id="password"' in card  # the password path stays

    response = merchant.post(f"/oauth/{provider}/start", {"return_to": "smtp"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/wizard/smtp")
    assert settings in page_after(merchant, response)
    assert_not_signed_in(app, store_id)


def test_a_stopped_provider_is_explained_at_the_start(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app) as signin:
        choose_provider(merchant, "google")
        signin.stop()  # the provider no longer answers (nothing discovered yet)

        response = merchant.post("/oauth/google/start", {"return_to": "smtp"})

        assert "Google could not be reached" in page_after(merchant, response)
        assert_not_signed_in(app, store_id)


def test_a_provider_that_stops_before_the_code_is_exchanged_is_explained(app, merchant):
    store_id = merchant_store(app, merchant)
    with signin_server(app) as signin:
        choose_provider(merchant, "microsoft")
        start = begin_sign_in(merchant, "microsoft")
        answer = answer_consent(start.headers["Location"], email=merchant.email)
        signin.stop()  # gone between the consent and the token endpoint

        response = merchant.get(local_path(answer.headers["Location"]))

        assert "Microsoft could not be reached" in page_after(merchant, response)
        assert_not_signed_in(app, store_id)
