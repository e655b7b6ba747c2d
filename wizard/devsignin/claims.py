"""The claims of an ID token, per flavour: the OpenID core set plus each provider's extras.

Subjects are stable, as the real ones are: Google's is a long decimal number, the
same for an account at every app; Microsoft's and the local one are pairwise — a
different opaque value for each app the account signs in to.
"""
from __future__ import annotations

import base64
import hashlib
import uuid

from .flavours import Flavour, microsoft_tenant_id

__all__ = ["ID_TOKEN_LIFETIME", "id_token_claims", "subject_for"]

ID_TOKEN_LIFETIME = 3600


def subject_for(flavour: Flavour, client_id: str, account_email: str) -> str:
    """The ``sub`` of this account as this flavour shows it to this client."""
    email = account_email.casefold()
    if flavour.subject_style == "digits":
        digest = hashlib.sha256(f"{flavour.name}:{email}".encode()).digest()
        return "1" + str(int.from_bytes(digest[:9], "big")).zfill(20)
    digest = hashlib.sha256(f"{flavour.name}:{client_id}:{email}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:43]


def id_token_claims(
    flavour: Flavour,
    *,
    issuer: str,
    client_id: str,
    account_email: str,
    tenant: str | None,
    scopes: list[str],
    now: int,
) -> dict:
    """Every claim of the ID token except ``nonce``, ``auth_time`` and ``at_hash`` (Authlib adds those)."""
    claims: dict = {
        "iss": issuer,
        "aud": client_id,
        "sub": subject_for(flavour, client_id, account_email),
        "iat": now,
        "exp": now + ID_TOKEN_LIFETIME,
    }
    if "email" in scopes:
        claims["email"] = account_email
    extras = {
        "email_verified": lambda: True,
        "azp": lambda: client_id,
        "preferred_username": lambda: account_email,
        "tid": lambda: microsoft_tenant_id(tenant or "common", account_email),
        "oid": lambda: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{flavour.name}:{account_email.casefold()}")),
        "ver": lambda: "2.0",
        "nbf": lambda: now,
    }
    for name in flavour.extra_id_token_claims:
        if name == "email_verified" and "email" not in scopes:
            continue
        claims[name] = extras[name]()
    return claims
