"""The sign-in server's Flask app: a small app of its own, not part of the wizard's.

``create_signin_app(store)`` wires one Authlib authorization server per flavour
over one ``SigninStore`` and one signing key, the flavours' blueprints, the
developer's home page and CSRF protection for the pages' forms (the token and
revocation endpoints authenticate clients instead).
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

from . import home_views
from .flavours import flavour_names, get_flavour
from .keys import SigningKey
from .oauth_server import FlavourAuthorizationServer
from .provider_views import provider_blueprint
from .store import SigninStore

__all__ = ["SigninExtension", "create_signin_app"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Cookies ignore ports: on 127.0.0.1 this server and the wizard share a cookie jar,
# so the session cookie gets a name of its own instead of Flask's "session".
SESSION_COOKIE_NAME = "heichat_devsignin_session"
# Framing is refused (a consent page must not be clickjacked); the tiny CSS is inline.
# Authlib logs each issued token dict (access and refresh token values) at DEBUG here.
TOKEN_LOGGING_MODULES = ("authlib.oauth2.rfc6749.grants.authorization_code", "authlib.oauth2.rfc6749.grants.refresh_token")
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"


@dataclass
class SigninExtension:
    """What the views find in ``app.extensions["devsignin"]``."""

    store: SigninStore
    key: SigningKey
    servers: dict[str, FlavourAuthorizationServer] = field(default_factory=dict)
    base_url: str = ""

    def metadata_url(self, flavour: str, tenant: str = "common") -> str:
        return self.base_url + get_flavour(flavour).metadata_location(tenant)


def create_signin_app(store: SigninStore, *, base_url: str = "", key: SigningKey | None = None) -> Flask:
    """The sign-in server's app over ``store``; ``base_url`` is its public address."""
    for name in TOKEN_LOGGING_MODULES:
        logging.getLogger(name).setLevel(logging.INFO)
    app = Flask(__name__, template_folder=str(PROJECT_ROOT / "templates"), static_folder=None)
    app.config.update(
        SECRET_KEY=secrets.token_hex(32),
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    extension = SigninExtension(store=store, key=key or SigningKey(), base_url=base_url.rstrip("/"))
    app.extensions["devsignin"] = extension

    csrf = CSRFProtect(app)
    for name in flavour_names():
        flavour = get_flavour(name)
        extension.servers[name] = FlavourAuthorizationServer(app, flavour, store, extension.key)
        blueprint = provider_blueprint(flavour)
        app.register_blueprint(blueprint)
        # Clients authenticate at these endpoints with their secret; a browser never posts there.
        csrf.exempt(app.view_functions[f"{blueprint.name}.token"])
        if flavour.revocation_path:
            csrf.exempt(app.view_functions[f"{blueprint.name}.revoke"])
    app.register_blueprint(home_views.bp)

    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        return render_template("devsignin/error.html", flavour=None, detail=None,
                               message="This form has expired or did not come from this page. "
                                       "Go back, reload the page and try again."), 400

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    return app
