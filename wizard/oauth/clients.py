"""The sign-in clients of an installation, from its configuration (no Flask)."""
from __future__ import annotations

from collections.abc import Mapping

from wizard.oauth.flow import SignInClient
from wizard.oauth.providers import providers_from_config

DEFAULT_HTTP_TIMEOUT = 10.0


def sign_in_clients(config: Mapping) -> dict[str, SignInClient]:
    """A ``SignInClient`` per configured provider key."""
    timeout = float(config.get("OAUTH_HTTP_TIMEOUT") or DEFAULT_HTTP_TIMEOUT)
    return {key: SignInClient(provider, timeout) for key, provider in providers_from_config(config).items()}
