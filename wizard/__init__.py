"""HeiChat email wizard: the Flask application factory.

The factory reads like a table of contents: configuration, extensions,
database, blueprints, commands. Everything the product knows lives in plain
modules (``wizard.catalogue``, ``wizard.smtp``, ``wizard.devmailbox``) that
the web layer, the CLI and the tests share.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Flask is imported when an app is built, not by every plain module's package.
    from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. ``test_config`` overrides configuration (tests use it)."""
    # templates/ and static/ sit at the repository root (the product's layout),
    # so the app runs from a checkout (editable install), not from a wheel.
    from flask import Flask

    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("WIZARD_INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(instance_path or PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )

    from wizard import config

    config.load(app, test_config)

    from wizard import db, extensions
    from wizard.web import security_headers

    extensions.init_app(app)
    db.init_app(app)
    _secrets_ready(app)
    security_headers.init_app(app)

    from wizard.web import public_url

    # Absolute links from WIZARD_PUBLIC_URL, and WIZARD_TRUSTED_PROXIES (ProxyFix).
    public_url.init_app(app)

    from wizard.web import errors, register_blueprints
    from wizard.web.ids import BoundedIntConverter

    # Before any route is added: every <int:…> in a URL fits the id columns.
    app.url_map.converters["int"] = BoundedIntConverter
    register_blueprints(app)
    errors.init_app(app)

    from wizard import cli

    cli.init_app(app)
    return app


def _secrets_ready(app: Flask) -> None:
    """A missing encryption key is generated only over a database without secrets;
    passwords stored before secret binding existed are bound where that is safe."""
    from wizard import config
    from wizard.secrets import stored as stored_secrets

    engine = app.extensions["db_engine"]
    if not app.config.get("ENCRYPTION_KEYS"):
        config.ensure_encryption_key(app, stored_secrets.count_encrypted(engine))
    from wizard.secrets import SecretBox
    from wizard.setup.legacy_bindings import bind_legacy_passwords

    bind_legacy_passwords(engine, SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"]))
