"""Driving "Sign in with Google / Microsoft" without a browser, against the real
local test sign-in server (``wizard.devsignin``) on loopback.

The merchant is the Flask test client (host ``localhost``, so the redirect URI
the app builds is ``http://localhost/oauth/<provider>/callback``); the
provider's consent page is driven over real HTTP with ``requests``, as a
browser would: open it, read its CSRF token, post a decision, and take the
redirect back to the app without following it (nothing listens on
``localhost:80``) — the test client then opens that callback path.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from sqlmodel import Session, select

from wizard.devsignin import RunningSigninServer, start_signin_server
from wizard.models import AuditEvent, OAuthGrant, SmtpDraft, SmtpSettings
from wizard.oauth.clients import sign_in_clients
from wizard.oauth.flow import clear_discovery_cache
from wizard.secrets import SecretBox
from wizard.setup.drafts import token_identity

from conftest import Merchant
from helpers import enable_prechat, store_id_of
from smtp_servers import Xoauth2Offer, start_test_server

CLIENT_ID = "heichat-tests"
# Distinctive, so a leak anywhere is easy to find.
CLIENT_SECRET = "client-secret-never-shown-7f3a"
# The card of step 2 that offers each sign-in.
PRESET_OF = {"google": "gmail", "microsoft": "microsoft365"}
# How each flavour's SMTP server answers a refused token.
FAILURE_STYLE = {"google": "google", "microsoft": "microsoft"}
SENDER_NAME = "Blue Fern Support"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
BANNER = "Sign in again to keep sending email"


def configure_sign_in(app, server: RunningSigninServer, providers=("google", "microsoft")) -> None:
    """Point the app's Google and Microsoft sign-ins at ``server``'s flavours."""
    for key in providers:
        prefix = f"OAUTH_{key.upper()}_"
        app.config.update({prefix + "CLIENT_ID": CLIENT_ID, prefix + "CLIENT_SECRET": CLIENT_SECRET,
                           prefix + "METADATA_URL": server.metadata_url(key)})
    app.extensions.pop("sign_in_clients", None)  # rebuilt from the new settings


@contextlib.contextmanager
def signin_server(app, *, access_token_lifetime: int = 3600) -> Iterator[RunningSigninServer]:
    """The local test sign-in server with the app registered at every flavour."""
    clear_discovery_cache()
    server = start_signin_server(access_token_lifetime=access_token_lifetime, clients=[{
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "name": "HeiChat email wizard (tests)",
        "redirect_uris": [f"http://localhost/oauth/{key}/callback" for key in ("google", "microsoft")],
    }])
    try:
        configure_sign_in(app, server)
        yield server
    finally:
        server.stop()
        clear_discovery_cache()


@contextlib.contextmanager
def xoauth2_server(certs, signin: RunningSigninServer, provider: str = "google"):
    """An STARTTLS aiosmtpd server that takes exactly the tokens ``signin`` issued
    (live, for the account they name), and no password."""
    offer = Xoauth2Offer(accepts=signin.store.check_access_token, failure_style=FAILURE_STYLE[provider])
    with start_test_server("starttls", cert=certs[0], key=certs[1], xoauth2=offer,
                           exclude_mechanisms=("LOGIN", "PLAIN")) as server:
        yield server


def worker_clients(app):
    """The sign-in clients the outbox worker gets (as ``outbox-worker`` builds them)."""
    return sign_in_clients(app.config)


# -- the merchant's side ---------------------------------------------------------------------

def choose_provider(merchant: Merchant, provider: str) -> None:
    enable_prechat(merchant)
    response = merchant.post("/wizard/provider", {"provider": PRESET_OF[provider]})
    assert response.status_code == 302, response.get_data(as_text=True)


def fill_smtp(merchant: Merchant, *, host: str, port: int | str, username: str | None = None,
              sender_email: str | None = None, security: str = "starttls"):
    """Step 3 as typed (no password: the sign-in is to come or already there)."""
    return merchant.post("/wizard/smtp", {
        "host": host, "port": str(port), "security": security, "sender_name": SENDER_NAME,
        "sender_email": sender_email if sender_email is not None else merchant.email,
        "username": username if username is not None else merchant.email, "password": "",
    })


@dataclass
class SignInRound:
    """One trip to the provider and back: each response on the way."""

    start: object          # the app's answer to "Sign in with …" (a 303 to the provider)
    provider_answer: requests.Response  # the consent page's redirect back to the app
    callback: object       # the app's answer to the callback
    callback_url: str      # path and query the browser came back with


def begin_sign_in(merchant: Merchant, provider: str, return_to: str = "smtp", purpose: str | None = None):
    """Click "Sign in with …" (``purpose="reading"``: "Allow reading with …"): the app's 303 to the provider."""
    response = merchant.post(f"/oauth/{provider}/start", {"return_to": return_to, **({"purpose": purpose} if purpose else {})})
    assert response.status_code == 303, (response.status_code, response.get_data(as_text=True)[:400])
    return response


def answer_consent(authorize_url: str, *, email: str, decision: str = "allow") -> requests.Response:
    """The provider's consent page as a browser uses it; the redirect is not followed."""
    with requests.Session() as browser:
        page = browser.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text[:400]
        token = CSRF_FIELD.search(page.text).group(1)
        answer = browser.post(page.url, data={"csrf_token": token, "email": email, "decision": decision},
                              timeout=10, allow_redirects=False)
    assert answer.status_code in (302, 303), answer.text[:400]
    return answer


def local_path(url: str) -> str:
    """The path and query of a URL back to the app (``http://localhost/...``)."""
    parts = urlsplit(url)
    assert parts.netloc == "localhost", url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_with(merchant: Merchant, provider: str, *, email: str | None = None, decision: str = "allow",
                 return_to: str = "smtp", purpose: str | None = None) -> SignInRound:
    """The whole round trip; returns each step (the callback is not followed)."""
    start = begin_sign_in(merchant, provider, return_to, purpose)
    answer = answer_consent(start.headers["Location"], email=email or merchant.email, decision=decision)
    path = local_path(answer.headers["Location"])
    callback = merchant.get(path)
    assert callback.status_code == 302, (callback.status_code, callback.get_data(as_text=True)[:400])
    return SignInRound(start, answer, callback, path)


def landing_page(merchant: Merchant, response) -> str:
    """Follow the app's redirect (flash messages included) and return the page."""
    page = merchant.get(local_path_of(response.headers["Location"]))
    assert page.status_code == 200
    return page.get_data(as_text=True)


def local_path_of(location: str) -> str:
    return location if location.startswith("/") else local_path(location)


# -- what is stored ----------------------------------------------------------------------------

def secret_box(app) -> SecretBox:
    return SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])


def draft_of(app, store_id: int) -> SmtpDraft:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(SmtpDraft).where(SmtpDraft.store_id == store_id)).one()


def saved_of(app, store_id: int) -> SmtpSettings:
    with Session(app.extensions["db_engine"]) as session:
        return session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).one()


def grants_of(app, store_id: int) -> list[OAuthGrant]:
    with Session(app.extensions["db_engine"]) as session:
        return list(session.exec(select(OAuthGrant).where(OAuthGrant.store_id == store_id)).all())


def stored_tokens(app, store_id: int) -> tuple[str, str]:
    """(access token, refresh token) of the store's one grant, decrypted."""
    [grant] = grants_of(app, store_id)
    box = secret_box(app)
    access = box.unseal(grant.access_token_encrypted, grant.token_binding,
                        token_identity(draft_host(app, store_id), grant.account_email))
    return access, box.decrypt(grant.refresh_token_encrypted)


def draft_host(app, store_id: int) -> str:
    with Session(app.extensions["db_engine"]) as session:
        saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).first()
        draft = session.exec(select(SmtpDraft).where(SmtpDraft.store_id == store_id)).first()
        return (saved or draft).host


def audit_actions(app, store_id: int) -> list[str]:
    with Session(app.extensions["db_engine"]) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.store_id == store_id)
                              .order_by(AuditEvent.id)).all()
        return [event.action for event in events]


def tokens_seen(server) -> list[str]:
    with server.lock:
        return [attempt.token for attempt in server.xoauth2_attempts]


def merchant_store(app, merchant: Merchant) -> int:
    return store_id_of(app, merchant.email)
