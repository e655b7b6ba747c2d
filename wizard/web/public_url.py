"""Absolute URLs, and the reverse proxies the app sits behind.

The Host header is whatever the client (or a careless proxy) sent, so an
absolute URL built from the request can point anywhere. Every absolute URL
the app writes into an email or a link is built here instead, from
``WIZARD_PUBLIC_URL`` (scheme and host of the public site):

- set: always that, whatever the request says;
- not set, development or testing: the request's own address (convenient on
  a laptop, where the browser and the app are the same person);
- not set, production: no absolute URL is built from the Host header at all.
  Links shown in pages fall back to a path on this site (they still work when
  clicked); anything that must go into an email refuses with
  ``NoPublicUrl``, whose message tells the operator what to set.

``WIZARD_TRUSTED_PROXIES=N`` wraps the app in Werkzeug's ``ProxyFix`` for N
proxies: the client address (rate limits, throttles) comes from the last N
``X-Forwarded-For`` entries and the scheme from ``X-Forwarded-Proto``. The
forwarded host is not trusted: links never depend on it. Without the
setting, forwarded headers are ignored (anyone can send them).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

MAX_PROXIES = 10


class NoPublicUrl(RuntimeError):
    """No trusted public address to build an absolute URL from (production without WIZARD_PUBLIC_URL)."""

    def __init__(self) -> None:
        super().__init__("This HeiChat server does not know its public address, so it cannot put a link into an "
                         "email. The operator must set WIZARD_PUBLIC_URL (for example https://chat.yourcompany.com).")


def parse_public_url(value: str | None) -> str:
    """``scheme://host[:port]`` in lower case, or "" when unset; ValueError for anything else."""
    text = (value or "").strip()
    if not text:
        return ""
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username is not None
            or parts.password is not None or parts.path not in ("", "/") or parts.query or parts.fragment
            or port == -1 or not text.isascii()):
        raise ValueError(f"WIZARD_PUBLIC_URL must be the scheme and host of the public site, such as "
                         f"https://chat.yourcompany.com (no path), not {text!r}.")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def parse_trusted_proxies(value) -> int:
    text = str(value if value is not None else "0").strip() or "0"
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PROXIES:
        raise ValueError(f"WIZARD_TRUSTED_PROXIES must be the number of reverse proxies in front of the app "
                         f"(0 to {MAX_PROXIES}), not {text!r}.")
    return int(text)


def init_app(app: Flask) -> None:
    app.config["PUBLIC_URL"] = parse_public_url(app.config.get("PUBLIC_URL"))
    proxies = parse_trusted_proxies(app.config.get("TRUSTED_PROXIES"))
    app.config["TRUSTED_PROXIES"] = proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0, x_port=0, x_prefix=0)
    if not app.config["PUBLIC_URL"] and not (app.debug or app.testing):
        app.logger.warning("WIZARD_PUBLIC_URL is not set: outside development mode no absolute link is built "
                           "from the Host header (reminders, which need an unsubscribe link, are refused; links in "
                           "pages are relative). Set it to the public site's https:// address.")
    app.jinja_env.globals.update(page_url=page_url)


def public_base() -> str | None:
    """Where absolute URLs start: the configured public site, the request in development, else None."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return configured
    if current_app.debug or current_app.testing:
        return request.host_url.rstrip("/")
    return None


def external_url(endpoint: str, **values) -> str:
    """An absolute URL for an email; raises ``NoPublicUrl`` when there is no trusted base."""
    base = public_base()
    if base is None:
        raise NoPublicUrl()
    return base + url_for(endpoint, **values)


def page_url(endpoint: str, **values) -> str:
    """A link shown in a page (to copy or click): absolute from a trusted base, else a path on this site."""
    base = public_base()
    return (base or "") + url_for(endpoint, **values)
