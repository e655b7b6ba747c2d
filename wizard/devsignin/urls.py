"""The sign-in server's public addresses: issuers and endpoint URLs of each flavour.

Every URL starts from the server's own base URL (``SigninExtension.base_url``, set by
the runner once the port is bound), never from the request's Host header, so the issuer
stays the same however a client reaches the server — as a real provider's does.
"""
from __future__ import annotations

from flask import current_app, request, url_for

from .flavours import MULTI_TENANT_ALIASES, Flavour, microsoft_tenant_id

__all__ = ["base_url", "id_token_issuer", "metadata_issuer", "public_url"]


def base_url() -> str:
    return current_app.extensions["devsignin"].base_url or request.host_url.rstrip("/")


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of one of the server's endpoints."""
    return base_url() + url_for(endpoint, **values)


def _issuer_path(flavour: Flavour, tenant_segment: str) -> str:
    # Microsoft's issuer is https://login.microsoftonline.com/{tenant}/v2.0; the
    # others are the flavour's prefix itself.
    if flavour.has_tenants:
        return flavour.prefix.replace("<tenant>", tenant_segment) + "/v2.0"
    return flavour.prefix


def metadata_issuer(flavour: Flavour, tenant: str | None) -> str:
    """The ``issuer`` the discovery document names.

    Under Microsoft's multi-tenant aliases it holds a literal ``{tenantid}``, as the
    real one does: each ID token's ``iss`` then names the account's own tenant.
    """
    if not flavour.has_tenants:
        return base_url() + _issuer_path(flavour, "")
    segment = "{tenantid}" if tenant in MULTI_TENANT_ALIASES else microsoft_tenant_id(tenant or "", "")
    return base_url() + _issuer_path(flavour, segment)


def id_token_issuer(flavour: Flavour, tenant: str | None, account_email: str) -> str:
    """The ``iss`` of an ID token for this account."""
    if not flavour.has_tenants:
        return base_url() + _issuer_path(flavour, "")
    return base_url() + _issuer_path(flavour, microsoft_tenant_id(tenant or "common", account_email))
