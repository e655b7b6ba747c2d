"""The sign-in server's flavours — Google, Microsoft and local — read from ``flavours.toml``.

A flavour is everything that differs between the providers the server mimics: its paths,
scopes and their wording on the consent page, when a refresh token is handed out and
whether refreshing rotates it, the extra ID-token claims, and how its errors read. The
code asks the flavour; it never branches on the provider's name.
"""
from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import quote

__all__ = ["Flavour", "TokenErrorRule", "flavour_names", "get_flavour", "microsoft_tenant_id"]

FLAVOURS_FILE = Path(__file__).with_name("flavours.toml")

# Microsoft's multi-tenant aliases: the discovery document under them names the issuer
# with a literal "{tenantid}", and each ID token carries the signed-in user's own tenant.
# ("consumers" is one tenant, the personal accounts' own.)
MULTI_TENANT_ALIASES = frozenset({"common", "organizations"})
# The tenant of personal Microsoft accounts (outlook.com, hotmail.com).
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass(frozen=True)
class TokenErrorRule:
    """Rewrites one kind of token-endpoint error into the provider's own wording.

    ``error`` empty matches any error; ``match`` is looked for in the generic
    description and empty matches any.
    """

    error: str
    match: str
    description: str

    def applies_to(self, error: str, generic_description: str) -> bool:
        return (not self.error or self.error == error) and self.match in generic_description


@dataclass(frozen=True)
class Flavour:
    """One mimicked provider (see ``flavours.toml`` for what each field means)."""

    name: str
    title: str
    prefix: str
    metadata_path: str
    authorization_path: str
    token_path: str
    jwks_path: str
    revocation_path: str | None
    revocation_client_auth: bool
    smtp_scope: str
    scopes_supported: tuple[str, ...]
    scope_descriptions: dict[str, str]
    refresh_token_when: str
    rotate_refresh_tokens: bool
    extra_id_token_claims: tuple[str, ...]
    subject_style: str
    authorize_errors: dict[str, str]
    token_errors: tuple[TokenErrorRule, ...]
    access_denied_description: str | None
    admin_consent_error: str | None
    admin_consent_description: str | None

    @property
    def has_tenants(self) -> bool:
        return "<tenant>" in self.prefix

    @property
    def offers_admin_consent_decline(self) -> bool:
        return self.admin_consent_error is not None

    def metadata_location(self, tenant: str = "common") -> str:
        """The path of the discovery document (under ``tenant`` where the flavour has tenants)."""
        return self.prefix.replace("<tenant>", quote(tenant, safe="")) + self.metadata_path

    def describe_scope(self, scope: str) -> str:
        return self.scope_descriptions.get(scope, scope)

    def token_error_description(self, error: str, generic_description: str) -> str | None:
        """The provider's wording for a token-endpoint error, or None to keep the generic one."""
        for rule in self.token_errors:
            if rule.applies_to(error, generic_description):
                return rule.description
        return None

    def wants_refresh_token(self, scopes: list[str], access_type: str | None) -> bool:
        """Whether a code exchange for this authorization request hands out a refresh token."""
        if self.refresh_token_when == "always":
            return True
        if self.refresh_token_when == "offline_access_scope":
            return "offline_access" in scopes
        if self.refresh_token_when == "access_type_offline":
            return access_type == "offline"
        raise ValueError(f"unknown refresh_token_when {self.refresh_token_when!r} in flavour {self.name}")


def microsoft_tenant_id(tenant: str, account_email: str) -> str:
    """The tenant GUID (``tid``) of an account signing in under the tenant path segment.

    A GUID names itself; ``consumers`` is the personal-account tenant; ``common`` and
    ``organizations`` stand for the account's own organisation, here one stable GUID per
    email domain; any other name (a domain like ``contoso.onmicrosoft.com``) gets a
    stable GUID of its own.
    """
    try:
        return str(uuid.UUID(tenant))
    except ValueError:
        pass
    if tenant == "consumers":
        return CONSUMERS_TENANT_ID
    name = account_email.rpartition("@")[2].lower() if tenant in MULTI_TENANT_ALIASES else tenant.lower()
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))


def _flavour_from_table(name: str, table: dict) -> Flavour:
    return Flavour(
        name=name,
        title=table["title"],
        prefix=table["prefix"],
        metadata_path=table["metadata_path"],
        authorization_path=table["authorization_path"],
        token_path=table["token_path"],
        jwks_path=table["jwks_path"],
        revocation_path=table.get("revocation_path"),
        revocation_client_auth=table.get("revocation_client_auth", True),
        smtp_scope=table["smtp_scope"],
        scopes_supported=tuple(table["scopes_supported"]),
        scope_descriptions=dict(table.get("scopes", {})),
        refresh_token_when=table["refresh_token_when"],
        rotate_refresh_tokens=table["rotate_refresh_tokens"],
        extra_id_token_claims=tuple(table.get("extra_id_token_claims", ())),
        subject_style=table["subject_style"],
        authorize_errors=dict(table["authorize_errors"]),
        token_errors=tuple(TokenErrorRule(**rule) for rule in table.get("token_errors", ())),
        access_denied_description=table.get("access_denied_description"),
        admin_consent_error=table.get("admin_consent_error"),
        admin_consent_description=table.get("admin_consent_description"),
    )


@cache
def _all_flavours() -> dict[str, Flavour]:
    with FLAVOURS_FILE.open("rb") as handle:
        tables = tomllib.load(handle)
    return {name: _flavour_from_table(name, table) for name, table in tables.items()}


def flavour_names() -> tuple[str, ...]:
    """The flavours the server offers, in file order."""
    return tuple(_all_flavours())


def get_flavour(name: str) -> Flavour:
    """The named flavour; KeyError for one the server does not offer."""
    return _all_flavours()[name]
