"""``SigninStore``: the sign-in server's memory, shared with the local test mailbox.

Everything lives in memory behind one lock, so the server's request threads and the
mailbox's SMTP thread can all use it: clients, authorization codes (single use, 60 s),
and grants with their access and refresh tokens. The mailbox asks one question,
``check_access_token(username, token)``; the server's pages and endpoints use the rest.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from .records import AuthorizationCode, Grant, GrantSummary, RegisteredClient, token_digest

__all__ = ["AUTHORIZATION_CODE_LIFETIME", "DEFAULT_ACCESS_TOKEN_LIFETIME", "SigninStore"]

AUTHORIZATION_CODE_LIFETIME = 60
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600


class SigninStore:
    """Thread-safe in-memory clients, codes and grants.

    ``clients`` are mappings with the arguments of ``register_client``. ``clock``
    returns the time in seconds (``time.time`` unless a test moves time itself).
    """

    def __init__(
        self,
        clients: Iterable[Mapping] = (),
        *,
        access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if access_token_lifetime <= 0:
            raise ValueError("access_token_lifetime must be a positive number of seconds")
        self.access_token_lifetime = access_token_lifetime
        self._clock = clock
        self._lock = threading.RLock()
        self._clients: dict[str, RegisteredClient] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        # Digest of a redeemed code -> the grant it opened, so a replayed code can
        # revoke that grant (RFC 6749 section 4.1.2).
        self._redeemed_codes: dict[str, str | None] = {}
        self._grants: dict[str, Grant] = {}
        self._grant_by_access: dict[str, str] = {}
        self._grant_by_refresh: dict[str, str] = {}
        for client in clients:
            self.register_client(**client)

    def now(self) -> float:
        return self._clock()

    # Clients

    def register_client(self, client_id: str, client_secret: str, redirect_uris: Iterable[str],
                        name: str) -> RegisteredClient:
        """Register (or replace) a confidential client allowed at every flavour."""
        uris = (redirect_uris,) if isinstance(redirect_uris, str) else tuple(redirect_uris)
        if not client_id or not client_secret or not uris:
            raise ValueError("a client needs a client_id, a client_secret and at least one redirect URI")
        client = RegisteredClient(client_id=client_id, client_secret=client_secret, redirect_uris=uris, name=name)
        with self._lock:
            self._clients[client_id] = client
        return client

    def get_client(self, client_id: str | None) -> RegisteredClient | None:
        with self._lock:
            return self._clients.get(client_id or "")

    def list_clients(self) -> list[RegisteredClient]:
        with self._lock:
            return sorted(self._clients.values(), key=lambda client: client.client_id)

    # Authorization codes

    def code_expiry(self) -> float:
        return self.now() + AUTHORIZATION_CODE_LIFETIME

    def save_code(self, code: str, record: AuthorizationCode) -> None:
        with self._lock:
            self._codes[token_digest(code)] = record

    def find_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The live code issued to this client; a replayed code revokes the grant it opened."""
        digest = token_digest(code)
        with self._lock:
            if digest in self._redeemed_codes:
                if grant_id := self._redeemed_codes[digest]:
                    self._grants[grant_id].revoked = True
                return None
            record = self._codes.get(digest)
            if record is None or record.client_id != client_id:
                return None
            if record.expires_at <= self.now():
                del self._codes[digest]
                return None
            return record

    # Grants and tokens

    def open_grant(self, code: str, record: AuthorizationCode, token: Mapping, *, client_name: str,
                   sends_mail: bool) -> Grant | None:
        """Redeem ``code`` for the tokens just issued; None when it was redeemed meanwhile."""
        digest = token_digest(code)
        with self._lock:
            if self._codes.pop(digest, None) is None:
                return None
            grant = Grant(
                grant_id=secrets.token_urlsafe(9),
                flavour=record.flavour,
                tenant=record.tenant,
                client_id=record.client_id,
                client_name=client_name,
                account_email=record.account_email,
                scope=token.get("scope") or record.scope,
                sends_mail=sends_mail,
                created_at=self.now(),
                access_token_lifetime=self.access_token_lifetime,
            )
            self._grants[grant.grant_id] = grant
            self._redeemed_codes[digest] = grant.grant_id
            self._add_tokens(grant, token)
            return grant

    def find_refresh_grant(self, refresh_token: str) -> Grant | None:
        """The live grant whose current refresh token this is."""
        with self._lock:
            grant = self._grant_by_token(self._grant_by_refresh, refresh_token)
            if grant is None or grant.revoked or grant.refresh_digest != token_digest(refresh_token):
                return None
            return grant

    def record_refresh(self, grant_id: str, used_refresh_token: str, token: Mapping) -> bool:
        """Add a refresh's tokens to the grant; False when the used refresh token died meanwhile.

        A new refresh token in ``token`` replaces the used one (rotation), which
        then fails like any dead refresh token.
        """
        with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None or grant.revoked or grant.refresh_digest != token_digest(used_refresh_token):
                return False
            self._add_tokens(grant, token)
            return True

    def find_grant_by_token(self, token: str, token_type_hint: str | None = None) -> Grant | None:
        """The grant behind an access or refresh token (RFC 7009 lookup), revoked or not."""
        with self._lock:
            indexes = [self._grant_by_access, self._grant_by_refresh]
            if token_type_hint == "refresh_token":
                indexes.reverse()
            for index in indexes:
                if grant := self._grant_by_token(index, token):
                    return grant
            return None

    def check_access_token(self, username: str, token: str) -> bool:
        """True when ``token`` is live and was issued for ``username`` (case-insensitive).

        Live: issued here, not expired, its grant not revoked, and its grant holds
        the flavour's mail scope (a token for ``openid email`` alone cannot send
        mail, as at Google and Microsoft).
        """
        with self._lock:
            grant = self._grant_by_token(self._grant_by_access, token)
            if grant is None or grant.revoked or not grant.sends_mail:
                return False
            if grant.account_email.casefold() != username.casefold():
                return False
            return grant.access_tokens.get(token_digest(token), 0) > self.now()

    def list_grants(self) -> list[GrantSummary]:
        """Every grant, newest first, as the home page shows it."""
        with self._lock:
            grants = sorted(self._grants.values(), key=lambda grant: grant.created_at, reverse=True)
            return [self._summary(grant) for grant in grants]

    def get_grant(self, grant_id: str) -> GrantSummary | None:
        with self._lock:
            grant = self._grants.get(grant_id)
            return self._summary(grant) if grant else None

    def expire_access_tokens(self, grant_id: str) -> bool:
        """End the grant's access tokens now, so the client's next use must refresh."""
        with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None:
                return False
            now = self.now()
            grant.access_tokens = {digest: min(expiry, now) for digest, expiry in grant.access_tokens.items()}
            return True

    def revoke_grant(self, grant_id: str) -> bool:
        """Kill the grant's access and refresh tokens, as a user revoking the app's access does."""
        with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None:
                return False
            grant.revoked = True
            return True

    # Inside the lock

    def _grant_by_token(self, index: dict[str, str], token: str) -> Grant | None:
        grant_id = index.get(token_digest(token))
        return self._grants.get(grant_id) if grant_id else None

    def _add_tokens(self, grant: Grant, token: Mapping) -> None:
        access_digest = token_digest(token["access_token"])
        grant.access_tokens[access_digest] = self.now() + int(token.get("expires_in", grant.access_token_lifetime))
        self._grant_by_access[access_digest] = grant.grant_id
        if refresh_token := token.get("refresh_token"):
            grant.refresh_digest = token_digest(refresh_token)
            self._grant_by_refresh[grant.refresh_digest] = grant.grant_id

    def _summary(self, grant: Grant) -> GrantSummary:
        expiry = grant.latest_access_expiry()
        return GrantSummary(
            grant_id=grant.grant_id,
            flavour=grant.flavour,
            tenant=grant.tenant,
            account_email=grant.account_email,
            client_id=grant.client_id,
            client_name=grant.client_name,
            scope=grant.scope,
            access_token_expires_at=expiry,
            access_token_live=not grant.revoked and expiry is not None and expiry > self.now(),
            has_refresh_token=grant.refresh_digest is not None and not grant.revoked,
            revoked=grant.revoked,
        )


