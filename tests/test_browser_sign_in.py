"""Sign in instead of a password, in a real browser (Debian's Chromium, Playwright).

The app runs as ``serve`` runs it on embedded defaults: the local test mailbox
(which takes XOAUTH2 tokens from the local test sign-in server) and the local
test sign-in server with its consent page. A newcomer signs in, tests, saves
and sends a test email; then the access token expires (a refresh), the
access is revoked ("Sign in again" banner) and signing in again makes sending
work once more. Screenshots go to ``tests/artifacts/``.
"""
from __future__ import annotations

import re

import pytest
from browser_helpers import SENDER_NAME, choose_local_mailbox, complete_pre_chat_form, expect, serve_live, shot, step, url_is
from browser_helpers import sign_up as browser_sign_up

from wizard.devmailbox.store import list_messages

from oauth_helpers import CLIENT_ID, CLIENT_SECRET, PRESET_OF, configure_sign_in, xoauth2_server


@pytest.fixture(scope="module")
def live_signin(tmp_path_factory):
    with serve_live(tmp_path_factory.mktemp("browser-signin"), with_signin=True) as app:
        yield app


def consent(page, email: str | None = None, decision: str = "Allow") -> None:
    """The local test sign-in server's consent page: the account, then a decision."""
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in with")
    if email is not None:
        page.get_by_label("Account email").fill(email)
    page.get_by_role("button", name=decision, exact=True).click()


def send_test_email(page, live, email: str) -> None:
    page.goto(live.url("/wizard/send"))
    expect(page.get_by_label("Send the test email to")).to_have_value(email)
    page.locator("#send-button").click()
    # Step 5 shows the last send on arrival (issue 13): wait for this send's own result.
    expect(page).to_have_url(re.compile(r"/wizard/send\?sent=\d+$"))


def test_newcomer_signs_in_tests_saves_and_sends(live_signin, new_page, artifacts):
    live = live_signin
    context, page = new_page()
    email = "owner@signin-browser.example.com"
    browser_sign_up(page, live, "Sign-in Browser Shop", email)
    complete_pre_chat_form(page)
    expect(page).to_have_url(url_is(live, "/wizard/provider"))
    choose_local_mailbox(page)
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))

    # Step 3 offers the sign-in first, the password below it.
    panel = page.locator("#sign-in-panel")
    expect(panel.get_by_role("button", name="Sign in with the local test sign-in server")).to_be_visible()
    expect(panel).to_contain_text("Recommended")
    expect(page.locator("#password")).to_be_visible()
    shot(page, artifacts, "signin-01-smtp-step.png")

    panel.get_by_role("button", name="Sign in with the local test sign-in server").click()
    expect(page).to_have_url(re.compile(re.escape(live.signin.url) + r"/local/authorize\?"))
    # The wizard sent the merchant's address as the login hint.
    expect(page.get_by_label("Account email")).to_have_value(email)
    shot(page, artifacts, "signin-02-consent.png")
    consent(page)

    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(page.locator(".flash, .flashes").first).to_contain_text(f"as {email}")
    expect(panel).to_contain_text(f"Signed in with the local test sign-in server as {email}")
    expect(page.locator("#password")).to_have_count(0)  # no password with a sign-in
    expect(page.get_by_label("Username")).to_have_value(email)
    expect(page.get_by_label("Sender Email")).to_have_value(email)
    shot(page, artifacts, "signin-03-signed-in.png")
    page.get_by_label("Sender Name").fill(SENDER_NAME)
    page.get_by_role("button", name="Save draft and continue to test").click()
    expect(page).to_have_url(url_is(live, "/wizard/test"))

    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#result[data-category=ok]")
    expect(result).to_be_visible()
    shot(page, artifacts, "signin-04-test-passed.png")
    page.locator("#save-button").click()
    expect(page).to_have_url(url_is(live, "/wizard/send"))
    page.locator("#send-button").click()
    expect(page.locator("#result[data-category=ok]")).to_be_visible()
    shot(page, artifacts, "signin-05-sent.png")
    [message] = list_messages(live.app.config["DEV_MAILBOX_DIR"])
    assert message.envelope_to == [email] and email in (message.from_header or "")

    # The access token runs out: the next send refreshes it first and still works.
    signin_home = context.new_page()
    signin_home.goto(live.signin.url + "/")
    signin_home.get_by_role("button", name=f"Expire the access token of {email} now").click()
    send_test_email(page, live, email)
    expect(page.locator("#result[data-category=ok]")).to_be_visible()
    assert len(list_messages(live.app.config["DEV_MAILBOX_DIR"])) == 2

    # The access is revoked at the provider: nothing is sent, one banner says what to do.
    signin_home.goto(live.signin.url + "/")
    signin_home.get_by_role("button", name=f"Revoke access of {email}").click()
    signin_home.close()
    send_test_email(page, live, email)
    banner = page.get_by_role("alert").filter(has_text="Sign in again to keep sending email")
    expect(banner).to_be_visible()
    expect(page.locator("#wizard-step")).to_contain_text("sign in again")
    assert len(list_messages(live.app.config["DEV_MAILBOX_DIR"])) == 2
    for path in ("/troubleshooting", "/inbox"):
        page.goto(live.url(path))
        expect(page.get_by_role("alert").filter(has_text="Sign in again to keep sending email")).to_have_count(1)
    shot(page, artifacts, "signin-06-reconnect-banner.png")

    page.get_by_role("button", name="Sign in again").click()
    consent(page)
    expect(page).to_have_url(url_is(live, "/inbox"))
    expect(page.get_by_role("alert").filter(has_text="Sign in again to keep sending email")).to_have_count(0)
    send_test_email(page, live, email)
    expect(page.locator("#result[data-category=ok]")).to_be_visible()
    assert len(list_messages(live.app.config["DEV_MAILBOX_DIR"])) == 3
    # No token ever reached a page: the grant's tokens are sealed in the database.
    assert "Bearer" not in page.content()


def test_cancelled_consent_comes_back_with_an_explanation(live_signin, new_page):
    live = live_signin
    _context, page = new_page()
    browser_sign_up(page, live, "Cancel Shop", "owner@cancel-browser.example.com")
    complete_pre_chat_form(page)
    choose_local_mailbox(page)
    page.get_by_role("button", name="Sign in with the local test sign-in server").click()
    consent(page, decision="Cancel")
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    expect(page.get_by_text("Sign-in was cancelled")).to_be_visible()
    # Still the password path, nothing changed.
    expect(page.locator("#password")).to_be_visible()
    expect(step(page, "smtp")).to_be_visible()


@pytest.fixture(scope="module")
def live_providers(tmp_path_factory, certs):
    """The app with Google and Microsoft sign-ins pointed at the local test sign-in server's
    Google-like and Microsoft-like flavours; SMTP to the tests' loopback servers allowed."""
    with serve_live(tmp_path_factory.mktemp("browser-providers"), with_signin=True,
                    SMTP_EXTRA_CA_FILE=str(certs[0]), SMTP_ALLOWED_NETWORKS="127.0.0.0/8, ::1/128",
                    SMTP_ALLOWED_PORTS="") as app:
        app.signin.store.register_client(CLIENT_ID, CLIENT_SECRET, [
            app.url(f"/oauth/{key}/callback") for key in ("google", "microsoft")], "HeiChat email wizard (tests)")
        configure_sign_in(app.app, app.signin)
        yield app


@pytest.mark.parametrize("provider, button, account", [
    ("google", "Sign in with Google", "owner@fern-google.example.com"),
    ("microsoft", "Sign in with Microsoft", "owner@fern-microsoft.example.com"),
])
def test_sign_in_with_a_google_like_and_a_microsoft_like_provider(live_providers, new_page, artifacts, certs,
                                                                  provider, button, account):
    live = live_providers
    _context, page = new_page()
    browser_sign_up(page, live, f"Fern {provider} Shop", account)
    complete_pre_chat_form(page)
    page.locator(f"input[name=provider][value={PRESET_OF[provider]}]").check()
    page.get_by_role("button", name="Use this provider").click()
    expect(page).to_have_url(url_is(live, "/wizard/smtp"))
    with xoauth2_server(certs, live.signin, provider) as server:
        # The server of this mailbox (a relay of the tests on loopback), typed before signing in.
        page.get_by_label("SMTP Host").fill("localhost")
        page.get_by_label("Port", exact=True).fill(str(server.port))
        expect(page.locator("#feedback-port")).to_be_attached()
        page.get_by_label("Sender Name").fill(SENDER_NAME)
        page.get_by_label("Sender Name").blur()
        page.wait_for_load_state("networkidle")
        page.locator("#sign-in-panel").get_by_role("button", name=button).click()
        expect(page).to_have_url(re.compile(re.escape(live.signin.url) + rf"/{provider}/"))
        shot(page, artifacts, f"signin-{provider}-consent.png")
        consent(page, account)
        expect(page).to_have_url(url_is(live, "/wizard/smtp"))
        expect(page.locator("#sign-in-panel")).to_contain_text(f"as {account}")
        expect(page.get_by_label("SMTP Host")).to_have_value("localhost")
        shot(page, artifacts, f"signin-{provider}-signed-in.png")
        page.get_by_role("button", name="Save draft and continue to test").click()
        expect(page).to_have_url(url_is(live, "/wizard/test"))
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#result[data-category=ok]")).to_be_visible()
        page.locator("#save-button").click()
        expect(page).to_have_url(url_is(live, "/wizard/send"))
        page.locator("#send-button").click()
        expect(page.locator("#result[data-category=ok]")).to_be_visible()
        # The mail server was given exactly tokens the sign-in server issued, for this account.
        attempts = server.xoauth2_attempts
        assert attempts and {a.username for a in attempts} == {account}
        assert all(live.signin.store.check_access_token(account, a.token) for a in attempts)
    if provider == "microsoft":
        # Reading replies needs one more permission, asked for only now, from the replies page.
        page.goto(live.url("/inbox"))
        page.get_by_role("link", name="Replies from your mailbox").click()
        expect(page).to_have_url(url_is(live, "/inbox/replies"))
        page.get_by_role("button", name="Allow reading with Microsoft").click()
        expect(page).to_have_url(re.compile(re.escape(live.signin.url) + "/microsoft/"))
        expect(page.locator("main")).to_contain_text("Read and write access to your mailbox via IMAP")
        consent(page, account)
        expect(page).to_have_url(url_is(live, "/inbox/replies"))
        expect(page.get_by_role("button", name="Allow reading with Microsoft")).to_have_count(0)
        shot(page, artifacts, "signin-microsoft-reading-allowed.png")
