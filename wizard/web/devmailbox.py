"""The local test mailbox's inbox (development mode only): signed-in members
see the messages their own store sent, nothing else (see
``wizard.devmailbox.ownership`` for how a message is tied to a store)."""
from __future__ import annotations

import smtplib

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlmodel import select

from wizard.db import get_session
from wizard.devmailbox.ownership import owned_message_keys
from wizard.devmailbox.store import get_message, is_valid_key, list_messages
from wizard.devmailbox.visitor_reply import deliver_reply, reply_target, visitor_reply
from wizard.models.outbox import OutboxEmail
from wizard.outbox.reply_addresses import token_in
from wizard.web.context import dev_mailbox_enabled
from wizard.web.forms import VisitorReplyForm

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


def _own_message(key: str):
    # Someone else's message is as unknown as a missing one.
    if not is_valid_key(key) or key not in _own_keys():
        abort(404)
    stored = get_message(current_app.config["DEV_MAILBOX_DIR"], key)
    if stored is None:
        abort(404)
    return stored


def _replies_come_back(stored) -> bool:
    """Whether "Reply as the visitor" can work: the message's Reply-To is a reply address."""
    domain = current_app.config.get("INBOUND_DOMAIN") or ""
    return bool(domain) and token_in(reply_target(stored) or "", domain) is not None


@bp.route("/<key>")
def message(key: str):
    stored = _own_message(key)
    form = VisitorReplyForm()
    form.body.data = form.body.data or "Thanks! That answers my question."
    return render_template("devmailbox/message.html", message=stored, reply_form=form,
                           can_reply=_replies_come_back(stored))


@bp.route("/<key>/reply", methods=("POST",))
def reply(key: str):
    """Answer as the visitor: the reply travels to the local inbound server like a real one."""
    stored = _own_message(key)
    form = VisitorReplyForm()
    if not _replies_come_back(stored):
        flash("This message has no reply address of this app, so a reply would not come back here.", "error")
        return redirect(url_for("devmailbox.message", key=key))
    if not form.validate_on_submit():
        return render_template("devmailbox/message.html", message=stored, reply_form=form, can_reply=True), 400
    config = current_app.config
    try:
        deliver_reply(visitor_reply(stored, form.body.data), config["INBOUND_SMTP_HOST"], int(config["INBOUND_SMTP_PORT"]))
    except (OSError, smtplib.SMTPException) as exc:
        flash(f"The local inbound server did not take the reply ({type(exc).__name__}); is `serve` running it?", "error")
        return redirect(url_for("devmailbox.message", key=key))
    email = get_session().exec(select(OutboxEmail).where(OutboxEmail.message_id == stored.message_id)).first()
    flash("Replied as the visitor. The reply is in the conversation now.", "success")
    if email is not None and email.conversation_id is not None:
        return redirect(url_for("inbox.conversation", conversation_id=email.conversation_id))
    return redirect(url_for("devmailbox.message", key=key))
