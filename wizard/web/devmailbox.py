"""The local test mailbox's inbox, shown in debug mode only."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from wizard.devmailbox.store import get_message, list_messages
from wizard.web.context import dev_mailbox_enabled

bp = Blueprint("devmailbox", __name__, url_prefix="/dev/mailbox")


@bp.before_request
def only_in_debug():
    if not dev_mailbox_enabled():
        abort(404)


@bp.route("")
def inbox():
    messages = list_messages(current_app.config["DEV_MAILBOX_DIR"])
    return render_template("devmailbox/inbox.html", messages=messages)


@bp.route("/<key>")
def message(key: str):
    stored = get_message(current_app.config["DEV_MAILBOX_DIR"], key)
    if stored is None:
        abort(404)
    return render_template("devmailbox/message.html", message=stored)
