"""What the sign-in server remembers: clients, authorization codes and grants.

Each record also speaks the small interface Authlib's grants expect of it
(``ClientMixin``, the OpenID ``AuthorizationCodeMixin``, ``TokenMixin``), so the
store hands its own records to Authlib without adapters. Token values are never
kept: a grant holds SHA-256 digests of its tokens, so nothing the server lists or
logs can leak one.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin

__all__ = ["Account", "AuthorizationCode", "Grant", "GrantSummary", "RegisteredClient", "token_digest"]

CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token")


def token_digest(value: str) -> str:
    """The key a token or code is kept under: its SHA-256, never the value itself."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    """A confidential client: id, secret, the exact redirect URIs it may use, a display name.

    One registration is good at every flavour, so a developer registers the wizard once.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]
    name: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # No default: like Google and Microsoft, every request names its redirect_uri.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        # The flavour's scopes_supported already filtered the request; an empty
        # scope is refused (invalid_scope), as the real providers refuse it.
        return scope or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """One consent's code, waiting (at most a minute) to be exchanged once."""

    client_id: str
    flavour: str
    tenant: str | None
    account_email: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    offline: bool
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


@dataclass
class Grant(TokenMixin):
    """One account's consent to one client at one flavour, with its live tokens.

    Authlib meets a grant as the "token" behind a refresh token or a revocation
    request; the refresh token itself stays in the store as a digest.
    """

    grant_id: str
    flavour: str
    tenant: str | None
    client_id: str
    client_name: str
    account_email: str
    scope: str
    sends_mail: bool
    created_at: float
    access_token_lifetime: int
    refresh_digest: str | None = None
    access_tokens: dict[str, float] = field(default_factory=dict)
    revoked: bool = False

    def check_client(self, client: RegisteredClient) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.access_token_lifetime

    def is_expired(self) -> bool:
        # Refresh tokens here live until revoked, as Google's and Microsoft's
        # effectively do for an app in use.
        return False

    def is_revoked(self) -> bool:
        return self.revoked

    def latest_access_expiry(self) -> float | None:
        return max(self.access_tokens.values(), default=None)


@dataclass(frozen=True)
class GrantSummary:
    """What the developer's home page shows of a grant: never a token value."""

    grant_id: str
    flavour: str
    tenant: str | None
    account_email: str
    client_id: str
    client_name: str
    scope: str
    access_token_expires_at: float | None
    access_token_live: bool
    has_refresh_token: bool
    revoked: bool


@dataclass(frozen=True)
class Account:
    """The signed-in end user: just the address typed on the consent page."""

    email: str
