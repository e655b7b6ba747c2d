"""The sign-in providers: data from ``catalogue/oauth.toml`` and the operator's registrations.

A provider is *configured* when its client id and secret are set
(``WIZARD_OAUTH_<KEY>_CLIENT_ID`` / ``_CLIENT_SECRET``); only configured
providers are offered. ``WIZARD_OAUTH_<KEY>_METADATA_URL`` points a provider
at another OpenID discovery document (a self-hosted identity server, the
local test sign-in server, the tests).
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

from wizard.catalogue import HERE

__all__ = ["OAuthProvider", "SignInCatalogue", "load_sign_in_catalogue", "providers_from_config", "PROVIDER_KEYS"]

PROVIDER_KEYS = ("google", "microsoft", "local")


@dataclass(frozen=True)
class OAuthProvider:
    """One configured sign-in provider."""

    key: str
    name: str
    button: str
    client_id: str
    client_secret: str = field(repr=False)
    metadata_url: str = ""
    scopes: tuple[str, ...] = ()
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    account_claims: tuple[str, ...] = ("email",)
    # The hosts the server may send requests to for this provider.
    endpoint_hosts: frozenset[str] = frozenset()
    # The scope reading replies over IMAP needs, asked for only when the merchant
    # turns reading on (or already reads); "" or one of ``scopes``: nothing more.
    reading_scope: str = ""

    @property
    def browser_origins(self) -> tuple[str, ...]:
        """Where the browser is sent to sign in (the page's ``form-action`` must allow them)."""
        parts = urlsplit(self.metadata_url)
        own = f"{parts.scheme}://{parts.netloc}"
        return tuple(sorted({own, *(f"https://{host}" for host in self.endpoint_hosts)}))

    @property
    def sending_scope(self) -> str:
        """The scope that allows SMTP sending (the first one listed)."""
        return self.scopes[0]

    def sign_in_scope(self, reading: bool = False) -> str:
        """The scopes a sign-in asks for: sending, plus reading when ``reading``."""
        wanted = list(self.scopes)
        if reading and self.reading_scope and self.reading_scope not in wanted:
            wanted.append(self.reading_scope)
        return " ".join(wanted)

    def refresh_scope(self, granted: str) -> str:
        """The scopes to ask for when renewing a grant that holds ``granted``:
        what it holds of ours (sending always, and reading if it was allowed). A
        refresh may not ask for more than the sign-in granted (Microsoft
        refuses it), nor less than reading needs, or the renewed token would
        stop reading. OpenID scopes (``openid``, ``email``, ``offline_access``)
        stay: providers do not echo them in ``scope``."""
        held = set(granted.split())
        if not held:
            return " ".join(self.scopes)
        wanted = [scope for scope in self.sign_in_scope(reading=True).split()
                  if "://" not in scope or scope in held or scope == self.sending_scope]
        return " ".join(wanted)


@dataclass(frozen=True)
class SignInCatalogue:
    providers: Mapping[str, dict]
    problems: Mapping[str, dict]
    aadsts: Mapping[str, str]

    def problem_text(self, reason: str, provider_name: str) -> tuple[str, str]:
        """(title, text) for a sign-in that did not complete."""
        entry = self.problems.get(reason) or self.problems["provider_error"]
        values = {"provider": provider_name, "settings": "the client id and secret"}
        return entry["title"].format(**values), entry["text"].format(**values)

    def not_configured(self, key: str) -> tuple[str, str]:
        raw = self.providers[key]
        settings = " and ".join(raw.get("settings", ()))
        # The local test sign-in server has no settings: it runs with `serve`, or not.
        entry = self.problems["not_configured" if settings else "not_running"]
        values = {"provider": raw["name"], "settings": settings}
        return entry["title"].format(**values), entry["text"].format(**values)


@cache
def load_sign_in_catalogue() -> SignInCatalogue:
    with open(HERE / "oauth.toml", "rb") as handle:
        raw = tomllib.load(handle)
    return SignInCatalogue(providers=raw["provider"], problems=raw["problem"], aadsts=raw.get("aadsts", {}))


def providers_from_config(config: Mapping) -> dict[str, OAuthProvider]:
    """The configured providers by key (``OAUTH_<KEY>_CLIENT_ID`` etc. in ``config``)."""
    catalogue = load_sign_in_catalogue()
    configured: dict[str, OAuthProvider] = {}
    for key in PROVIDER_KEYS:
        raw = catalogue.providers[key]
        prefix = f"OAUTH_{key.upper()}_"
        client_id = (config.get(prefix + "CLIENT_ID") or "").strip()
        secret = (config.get(prefix + "CLIENT_SECRET") or "").strip()
        overridden = (config.get(prefix + "METADATA_URL") or "").strip()
        metadata_url = overridden or raw["metadata_url"]
        if not client_id or not secret or not metadata_url:
            continue
        tenant = (config.get(prefix + "TENANT") or "").strip() or raw.get("default_tenant", "")
        metadata_url = metadata_url.replace("{tenant}", tenant)
        hosts = {urlsplit(metadata_url).hostname or ""}
        if not overridden:
            hosts |= set(raw.get("endpoint_hosts", ()))
        configured[key] = OAuthProvider(
            key=key,
            name=raw["name"],
            button=raw["button"],
            client_id=client_id,
            client_secret=secret,
            metadata_url=metadata_url,
            scopes=tuple(raw["scopes"]),
            authorize_params=dict(raw.get("authorize_params", {})),
            account_claims=tuple(raw.get("account_claims", ("email",))),
            endpoint_hosts=frozenset(h.lower() for h in hosts if h),
            reading_scope=raw.get("reading_scope", ""),
        )
    return configured


def grant_holds_reading(provider_key: str, granted: str) -> bool:
    """Whether a grant of ``provider_key`` holding ``granted`` may read mail over
    IMAP: always where sending's scope covers reading (Google), else only with
    the provider's ``reading_scope`` granted (an empty ``granted``: the provider
    did not say, so it granted what a plain sign-in asks, sending only)."""
    raw = load_sign_in_catalogue().providers.get(provider_key, {})
    needed = raw.get("reading_scope", "")
    if not needed or needed in raw.get("scopes", ()):
        return True
    return needed in granted.split()
