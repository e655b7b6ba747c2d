"""The rule for every HTTP request of the sign-in flow (``wizard.oauth.flow`` applies it).

Every request goes to a host of the provider it is for (``OAuthProvider.
endpoint_hosts``) over HTTPS — plain HTTP only to a loopback address (the
local test sign-in server, the tests) — with a timeout, without following
redirects and without the environment's proxies, so a discovery document
cannot steer the server (and a client secret or a token) anywhere else.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["OutboundRefused", "check_url", "MAX_RESPONSE_BYTES"]

MAX_RESPONSE_BYTES = 1024 * 1024


class OutboundRefused(ValueError):
    """A URL the sign-in flow will not send a request to."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_url(url: str, allowed_hosts: frozenset[str]) -> str:
    """``url`` if the flow may send a request there; raises ``OutboundRefused``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise OutboundRefused("a URL with credentials in it")
    if parts.scheme == "https":
        pass
    elif parts.scheme == "http" and _is_loopback(host):
        pass  # the local test sign-in server and the tests
    else:
        raise OutboundRefused(f"{parts.scheme or 'no'} scheme (only https)")
    if host not in allowed_hosts:
        raise OutboundRefused(f"host {host or '(none)'} is not one of the provider's")
    return url
