"""The local test mailbox's inbox (development mode only): signed-in members
see the messages their own store sent, nothing else (see
``wizard.devmailbox.ownership`` for how a message is tied to a store)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user, login_required

from wizard.db import get_session
from wizard.devmailbox.ownership import owned_message_keys
from wizard.devmailbox.store import get_message, is_valid_key, list_messages
from wizard.web.context import dev_mailbox_enabled

bp = Blueprint("devmailbox", __name__, url_prefix="/dev/mailbox")


@bp.before_request
def only_in_debug():
    if not dev_mailbox_enabled():
        abort(404)


@bp.before_request
@login_required
def signed_in():
    """Only members (the login decorator redirects everyone else to sign-in)."""


def _own_keys() -> set[str]:
    store_id = getattr(current_user, "store_id", None)
    return owned_message_keys(get_session(), store_id) if store_id is not None else set()


@bp.route("")
def inbox():
    own = _own_keys()
    messages = [m for m in list_messages(current_app.config["DEV_MAILBOX_DIR"]) if m.key in own]
    return render_template("devmailbox/inbox.html", messages=messages)


@bp.route("/<key>")
def message(key: str):
    # Someone else's message is as unknown as a missing one.
    if not is_valid_key(key) or key not in _own_keys():
        abort(404)
    stored = get_message(current_app.config["DEV_MAILBOX_DIR"], key)
    if stored is None:
        abort(404)
    return render_template("devmailbox/message.html", message=stored)
