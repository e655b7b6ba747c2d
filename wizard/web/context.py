"""Per-request access to the app's shared objects (catalogue, secret box, store)."""
from __future__ import annotations

from flask import abort, current_app, g
from flask_login import current_user

from wizard.catalogue import Catalogue, load_catalogue
from wizard.db import get_session
from wizard.models import Store
from wizard.oauth.clients import sign_in_clients as clients_from_config
from wizard.oauth.flow import SignInClient
from wizard.secrets import SecretBox
from wizard.setup.health import setup_finished
from wizard.smtp.target_options import TargetOptions, target_options_from_config
from wizard.smtp.target_options import dev_mailbox_enabled as mailbox_setting


def dev_mailbox_enabled() -> bool:
    return mailbox_setting(current_app.config, current_app.debug)


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


def member_setup_state() -> str | None:
    """For the header: "setting_up" until the store has saved settings (a compact header),
    "set_up" after (the full navigation), None for visitors and support agents.
    Worked out once per request."""
    if not current_user.is_authenticated or current_user.role == "support":
        return None
    if "member_setup_state" not in g:
        store = member_store()
        g.member_setup_state = "set_up" if store is not None and setup_finished(get_session(), store) else "setting_up"
    return g.member_setup_state


def current_store() -> Store:
    """The signed-in member's store (403 for anyone without one)."""
    store_id = getattr(current_user, "store_id", None)
    if store_id is None:
        abort(403)
    # Kept for the request: the session's identity map holds objects weakly, so a
    # store looked up only to check it (a blueprint's before_request) would be
    # collected and read again by the view.
    held = g.get("current_store")
    if held is not None and held.id == store_id:
        return held
    store = get_session().get(Store, store_id)
    if store is None:
        abort(403)
    g.current_store = store
    return store


def target_options() -> TargetOptions:
    """Where and how this request's SMTP conversations may connect."""
    return target_options_from_config(current_app.config, dev_mailbox_enabled(),
                                      instance_path=current_app.instance_path)


def sign_in_clients() -> dict[str, SignInClient]:
    """The configured sign-in providers' clients (built once per app)."""
    clients = current_app.extensions.get("sign_in_clients")
    if clients is None:
        clients = current_app.extensions["sign_in_clients"] = clients_from_config(current_app.config)
    return clients
