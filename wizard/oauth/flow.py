"""The authorization code flow with PKCE and state, refreshes and revocation, through Authlib.

``SignInClient(provider)`` talks to one configured provider:

- ``begin(redirect_uri)`` gives the URL to send the browser to and the
  ``PendingSignIn`` (state, PKCE verifier, nonce) to keep until it comes back;
- ``finish(pending, callback_args)`` checks the answer (state first), swaps
  the code for tokens and reads the account from the ID token;
- ``refresh(refresh_token)`` gets a new access token (``GrantRevoked`` when
  the provider says ``invalid_grant``; ``TokenEndpointUnavailable`` after
  retries for anything transient);
- ``revoke(token)`` revokes where the provider offers it (RFC 7009).

Every request goes through ``wizard.oauth.outbound`` (the provider's hosts
only, timeouts, no redirects). Errors come back as ``SignInProblem`` with a
reason from ``catalogue/oauth.toml``, never as the provider's raw page.
"""
from __future__ import annotations

import base64
import hmac
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from wizard.oauth.outbound import MAX_RESPONSE_BYTES, OutboundRefused, check_url
from wizard.oauth.providers import OAuthProvider, load_sign_in_catalogue

__all__ = ["Endpoints", "PendingSignIn", "TokenSet", "SignInProblem", "GrantRevoked", "TokenEndpointUnavailable",
           "SignInClient", "clear_discovery_cache"]

# Discovery documents change rarely; one fetch an hour per provider.
DISCOVERY_TTL_SECONDS = 3600
DEFAULT_EXPIRES_IN = 3600
# Transient token-endpoint failures: tries and the first wait (doubled each time, with jitter).
REFRESH_TRIES = 3
REFRESH_BACKOFF_SECONDS = 0.5
# What of a provider's error word is shown or logged (never a token).
_SAFE_WORD = re.compile(r"[^A-Za-z0-9_.:-]")


class SignInProblem(Exception):
    """A sign-in that did not complete; ``reason`` keys the text in oauth.toml."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class GrantRevoked(Exception):
    """The provider refused the refresh token (``invalid_grant``): revoked,
    expired, or the password changed. Only signing in again helps."""

    def __init__(self, detail: str = ""):
        super().__init__("invalid_grant")
        self.detail = detail


class TokenEndpointUnavailable(Exception):
    """The token endpoint could not be used right now (network, 5xx, a bad answer)."""


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None


@dataclass
class PendingSignIn:
    """What the server keeps between sending the browser off and its return."""

    provider: str
    state: str
    code_verifier: str = field(repr=False)
    nonce: str
    redirect_uri: str
    started_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> PendingSignIn | None:
        try:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})
        except (KeyError, TypeError):
            return None


@dataclass
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    scope: str = ""
    account_email: str = ""
    subject: str = ""


_discovered: dict[str, tuple[float, Endpoints]] = {}
_discovery_lock = threading.Lock()


def clear_discovery_cache() -> None:
    with _discovery_lock:
        _discovered.clear()


def safe_word(text: str | None, limit: int = 80) -> str:
    return _SAFE_WORD.sub("", text or "")[:limit]


def _aadsts_code(description: str | None) -> str:
    match = re.match(r"\s*(AADSTS\d+)", description or "")
    return match.group(1) if match else ""


def _claims(id_token: str) -> dict:
    """The ID token's claims. Not re-verified: it came straight from the token
    endpoint over the connection we opened (OpenID Connect Core 3.1.3.7)."""
    try:
        payload = id_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeError):
        raise SignInProblem("provider_error", "unreadable ID token") from None
    if not isinstance(data, dict):
        raise SignInProblem("provider_error", "unreadable ID token")
    return data


class _GuardedOAuth2Session(OAuth2Session):
    """Authlib's client on the guarded transport of ``wizard.oauth.outbound``."""

    def __init__(self, provider: OAuthProvider, timeout: float, **kwargs):
        super().__init__(provider.client_id, provider.client_secret, scope=" ".join(provider.scopes),
                         token_endpoint_auth_method="client_secret_post", code_challenge_method="S256", **kwargs)
        self._allowed = provider.endpoint_hosts
        self._timeout = timeout
        self.trust_env = False
        self.max_redirects = 0

    def request(self, method, url, withhold_token=False, auth=None, **kwargs):
        check_url(url, self._allowed)
        kwargs.setdefault("timeout", self._timeout)
        kwargs["allow_redirects"] = False
        response = super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise OutboundRefused("the answer is too large")
        return response


class SignInClient:
    """The sign-in flow against one configured provider."""

    def __init__(self, provider: OAuthProvider, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.provider = provider
        self.timeout = timeout
        self.sleep = sleep

    def _session(self, **kwargs) -> OAuth2Session:
        return _GuardedOAuth2Session(self.provider, self.timeout, **kwargs)

    # -- discovery ---------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        """The provider's endpoints from its discovery document (cached)."""
        url = self.provider.metadata_url
        with _discovery_lock:
            cached = _discovered.get(url)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        try:
            with self._session() as session:
                response = session.get(url, withhold_token=True)
            document = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise SignInProblem("unreachable", type(exc).__name__) from None
        if not isinstance(document, dict):
            raise SignInProblem("provider_error", "no discovery document")
        try:
            endpoints = Endpoints(
                issuer=str(document["issuer"]),
                authorization_endpoint=check_url(str(document["authorization_endpoint"]), self.provider.endpoint_hosts),
                token_endpoint=check_url(str(document["token_endpoint"]), self.provider.endpoint_hosts),
                revocation_endpoint=self._optional_endpoint(document.get("revocation_endpoint")),
            )
        except (KeyError, OutboundRefused) as exc:
            raise SignInProblem("provider_error", f"discovery document refused: {exc}") from None
        with _discovery_lock:
            _discovered[url] = (time.monotonic(), endpoints)
        return endpoints

    def _optional_endpoint(self, url) -> str | None:
        if not url:
            return None
        try:
            return check_url(str(url), self.provider.endpoint_hosts)
        except OutboundRefused:
            return None  # never used: revocation is skipped, the token deleted anyway

    # -- the code flow -----------------------------------------------------------------

    def begin(self, redirect_uri: str, login_hint: str = "", reading: bool = False) -> tuple[str, PendingSignIn]:
        """The provider's authorization URL and what the callback needs; ``reading``:
        ask for the reading scope too (``OAuthProvider.sign_in_scope``)."""
        endpoints = self.endpoints()
        pending = PendingSignIn(provider=self.provider.key, state=generate_token(32),
                                code_verifier=generate_token(64), nonce=generate_token(32), redirect_uri=redirect_uri)
        params = dict(self.provider.authorize_params)
        if login_hint:
            params["login_hint"] = login_hint
        with self._session(redirect_uri=redirect_uri) as session:
            url, _state = session.create_authorization_url(
                endpoints.authorization_endpoint, state=pending.state, code_verifier=pending.code_verifier,
                nonce=pending.nonce, scope=self.provider.sign_in_scope(reading), **params)
        return url, pending

    def finish(self, pending: PendingSignIn | None, args: Mapping[str, str]) -> TokenSet:
        """The tokens for the callback's ``args``; raises ``SignInProblem``."""
        state = args.get("state", "")
        if pending is None or not state or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise SignInProblem("state_mismatch")
        if args.get("error"):
            raise self._callback_problem(args.get("error", ""), args.get("error_description", ""))
        code = args.get("code", "")
        if not code:
            raise SignInProblem("provider_error", "no code in the answer")
        endpoints = self.endpoints()
        try:
            with self._session(redirect_uri=pending.redirect_uri) as session:
                token = session.fetch_token(endpoints.token_endpoint, code=code, code_verifier=pending.code_verifier,
                                            grant_type="authorization_code")
        except OAuthError as exc:
            raise self._token_problem(exc) from None
        except (requests.RequestException, ValueError) as exc:
            raise SignInProblem("unreachable", type(exc).__name__) from None
        tokens = self._token_set(token)
        claims = _claims(str(token.get("id_token") or ""))
        self._check_claims(claims, endpoints, pending)
        tokens.subject = str(claims.get("sub", ""))[:255]
        tokens.account_email = next((str(claims[name]).strip() for name in self.provider.account_claims
                                     if isinstance(claims.get(name), str) and "@" in claims[name]), "")
        if not tokens.account_email:
            raise SignInProblem("no_account_email")
        if tokens.scope and self.provider.sending_scope not in tokens.scope.split():
            raise SignInProblem("missing_scope")
        if not tokens.refresh_token:
            raise SignInProblem("no_refresh_token")
        return tokens

    def _callback_problem(self, error: str, description: str) -> SignInProblem:
        code = _aadsts_code(description)
        reason = load_sign_in_catalogue().aadsts.get(code)
        if reason is None:
            reason = {"access_denied": "cancelled", "consent_required": "consent_required",
                      "interaction_required": "consent_required"}.get(error, "provider_error")
        return SignInProblem(reason, code or safe_word(error))

    def _token_problem(self, exc: OAuthError) -> SignInProblem:
        code = _aadsts_code(exc.description)
        reason = load_sign_in_catalogue().aadsts.get(code, "provider_error")
        return SignInProblem(reason, code or safe_word(exc.error))

    def _check_claims(self, claims: dict, endpoints: Endpoints, pending: PendingSignIn) -> None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.provider.client_id not in audiences:
            raise SignInProblem("provider_error", "ID token for another app")
        if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), pending.nonce.encode()):
            raise SignInProblem("state_mismatch", "nonce")
        # Microsoft's multi-tenant issuer has a {tenantid} placeholder.
        issuer = endpoints.issuer.replace("{tenantid}", str(claims.get("tid", "")))
        if claims.get("iss") != issuer:
            raise SignInProblem("provider_error", "ID token from another issuer")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < time.time() - 300:
            raise SignInProblem("provider_error", "expired ID token")

    @staticmethod
    def _token_set(token: Mapping) -> TokenSet:
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise SignInProblem("provider_error", "no access token")
        try:
            expires_in = int(token.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        refresh = token.get("refresh_token")
        return TokenSet(access_token=access, refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                        expires_at=datetime.now(UTC) + timedelta(seconds=max(0, expires_in)),
                        scope=str(token.get("scope") or ""))

    # -- later: refresh and revoke ---------------------------------------------------------

    def refresh(self, refresh_token: str, granted_scope: str = "") -> TokenSet:
        """A new access token (and the rotated refresh token, when the provider
        rotates; otherwise the same one). ``granted_scope``: what the grant holds
        (``OAuthProvider.refresh_scope``)."""
        wait = REFRESH_BACKOFF_SECONDS
        for attempt in range(REFRESH_TRIES):
            try:
                endpoints = self.endpoints()
                with self._session() as session:
                    token = session.refresh_token(endpoints.token_endpoint, refresh_token=refresh_token,
                                                  scope=self.provider.refresh_scope(granted_scope))
                tokens = self._token_set(token)
                tokens.refresh_token = tokens.refresh_token or refresh_token
                return tokens
            except OAuthError as exc:
                if exc.error in ("invalid_grant", "unauthorized_client"):
                    raise GrantRevoked(_aadsts_code(exc.description) or safe_word(exc.error)) from None
                problem = safe_word(exc.error)
            except (requests.RequestException, ValueError, SignInProblem) as exc:
                problem = type(exc).__name__
            if attempt + 1 < REFRESH_TRIES:
                self.sleep(wait * random.uniform(0.75, 1.25))
                wait *= 2
        raise TokenEndpointUnavailable(problem)

    def revoke(self, token: str, hint: str = "refresh_token") -> bool:
        """Revoke ``token`` at the provider; False where it offers no revocation
        or the call failed (the caller deletes the token either way)."""
        try:
            endpoints = self.endpoints()
            if not endpoints.revocation_endpoint:
                return False
            with self._session() as session:
                response = session.revoke_token(endpoints.revocation_endpoint, token=token, token_type_hint=hint)
            return response.status_code == 200
        except (requests.RequestException, ValueError, SignInProblem, OAuthError):
            return False
