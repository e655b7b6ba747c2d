"""Per-request access to the app's shared objects (catalogue, secret box, store)."""
from __future__ import annotations

from pathlib import Path

from flask import abort, current_app
from flask_login import current_user

from wizard.catalogue import Catalogue, load_catalogue
from wizard.db import get_session
from wizard.models import Store
from wizard.onboarding import TargetOptions
from wizard.secrets import SecretBox
from wizard.smtp.address_policy import AddressPolicy


def dev_mailbox_enabled() -> bool:
    setting = current_app.config.get("DEV_MAILBOX")
    return current_app.debug if setting is None else bool(setting)


def dev_mailbox_cert_path() -> str:
    """Where the local test mailbox keeps its self-signed certificate (trusted in debug only)."""
    return str(Path(current_app.instance_path) / "dev-mailbox-cert.pem")


def catalogue() -> Catalogue:
    return load_catalogue(current_app.config["DEV_MAILBOX_HOST"], int(current_app.config["DEV_MAILBOX_PORT"]))


def secret_box() -> SecretBox:
    box = current_app.extensions.get("secret_box")
    if box is None:
        box = current_app.extensions["secret_box"] = SecretBox(current_app.config["ENCRYPTION_KEYS"],
                                                                     current_app.config["SECRET_KEY"])
    return box


def member_store() -> Store | None:
    """The signed-in member's store, or None (templates use it for the nav)."""
    store_id = getattr(current_user, "store_id", None)
    return get_session().get(Store, store_id) if store_id is not None else None


def current_store() -> Store:
    """The signed-in member's store (403 for anyone without one)."""
    store_id = getattr(current_user, "store_id", None)
    if store_id is None:
        abort(403)
    store = get_session().get(Store, store_id)
    if store is None:
        abort(403)
    return store


def target_options() -> TargetOptions:
    config = current_app.config
    local_ca = dev_mailbox_cert_path() if dev_mailbox_enabled() else None
    return TargetOptions(
        timeout=float(config["SMTP_TIMEOUT"]),
        greeting_timeout=float(config["SMTP_GREETING_TIMEOUT"]),
        extra_ca_file=config.get("SMTP_EXTRA_CA_FILE") or None,
        local_ca_file=local_ca,
        nameserver=config.get("DNS_NAMESERVER") or None,
        address_policy=AddressPolicy.from_config(config["SMTP_ALLOWED_PORTS"], config["SMTP_ALLOWED_NETWORKS"]),
        local_mailbox=(config["DEV_MAILBOX_HOST"], int(config["DEV_MAILBOX_PORT"])) if dev_mailbox_enabled() else None,
    )
