"""The merchant's page "Bring replies into HeiChat": read replies from the store's own mailbox (IMAP).

A switch, the IMAP server (prefilled from the provider's read hosts), the
login borrowed from the sending settings (never shown, never typed here),
"Test IMAP" with its stages and the last fetch's state. Thin: the rules
live in ``wizard.inbound.imap_settings``, the conversation in
``wizard.inbound.imap_check``. Works without JavaScript; htmx swaps the panel.
"""
from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length

from wizard.catalogue import SECURITY_LABELS
from wizard.db import get_session
from wizard.inbound.imap_check import check_imap
from wizard.inbound.imap_diagnosis import explain, stage_label
from wizard.inbound.imap_options import imap_options_from_config
from wizard.inbound.imap_settings import (
    DEFAULT_PORT,
    ImapSettingsRefused,
    ServerChoice,
    get_fetching,
    imap_target,
    login_changed,
    reading_sign_in_needed,
    record_result,
    suggested_server,
    turn_off,
    turn_on,
)
from wizard.oauth.providers import load_sign_in_catalogue
from wizard.secrets import SecretError
from wizard.setup import drafts
from wizard.web import htmx
from wizard.web.context import catalogue, current_store, secret_box, sign_in_clients
from wizard.web.forms import no_control_characters
from wizard.web.rate_limits import limited

bp = Blueprint("replies", __name__)

# Why the sending login cannot be borrowed (SecretError.reason), in the merchant's words.
LOGIN_PROBLEMS = {
    "unreadable": "Your saved sending password can no longer be read. Type it again in the set-up (step 3), save, "
                  "then turn this on again.",
    "server_changed": "Your sending login changed since reading was turned on. Turn it on again to use the new one.",
    "reconnect_needed": "Your sign-in needs renewing: click \"Sign in again\" in the set-up, then test again.",
    "token_unavailable": "The sign-in could not be refreshed just now. Try again in a minute.",
}


class ReplyReadingForm(FlaskForm):
    enabled = BooleanField("Bring replies into HeiChat")
    host = StringField("IMAP server", validators=[Length(max=255), no_control_characters])
    port = StringField("Port", validators=[Length(max=5), no_control_characters])
    security = SelectField("Security", choices=[SelectChoice(key, SECURITY_LABELS[key]) for key in DEFAULT_PORT])
    folder = StringField("Folder", validators=[Length(max=200), no_control_characters])


def _form_for(row, saved) -> ReplyReadingForm:
    if request.method == "POST":
        return ReplyReadingForm()
    choice = suggested_server(saved, catalogue())
    if row is not None and row.host:
        choice = ServerChoice(row.host, row.port, row.security, row.folder or "INBOX")
    return ReplyReadingForm(formdata=None, data={"enabled": bool(row and row.enabled), "host": choice.host,
                                                 "port": str(choice.port), "security": choice.security,
                                                 "folder": choice.folder})


def _explained(row, category: str | None, detail: str = "") -> dict | None:
    if not category or category == "ok":
        return None
    title, hint = explain(category, {"host": row.host, "port": row.port, "username": row.username,
                                     "folder": row.folder, "detail": detail,
                                     "greeting_timeout": f"{float(current_app.config['SMTP_GREETING_TIMEOUT']):g}"},
                          auth=row.auth_method)
    return {"title": title, "hint": hint}


def _run_check(db, row, saved):
    """"Test IMAP" for the saved row; the outcome is recorded on it."""
    try:
        target = imap_target(db, row, saved, secret_box(), imap_options_from_config(current_app.config), catalogue(),
                             sign_in_clients())
    except SecretError as problem:
        detail = LOGIN_PROBLEMS.get(problem.reason, "The sending login cannot be used for reading.")
        record_result(db, row, "login_unavailable", detail)
        return None
    result = check_imap(target)
    record_result(db, row, result.category, result.detail)
    return result


def _context(store, saved, row, form, **extra) -> dict:
    return {"store": store, "row": row, "saved": saved, "form": form, "check": None, "notice": None, "errors": {},
            "stage_label": stage_label, "security_labels": SECURITY_LABELS,
            "explanation": _explained(row, row.last_category, row.last_error or "") if row is not None else None,
            "login_changed": login_changed(row, saved), "preset": catalogue().get(saved.provider) if saved else None,
            "reading_sign_in": _reading_sign_in(store, saved), **extra}


def _reading_sign_in(store, saved) -> dict | None:
    """The "Allow reading with …" button's provider, while the saved sign-in allows sending only."""
    provider = reading_sign_in_needed(get_session(), store.id, saved)
    preset = catalogue().get(store.provider)
    # Only where it can work: the sign-in is set up here, and step 2 still names its provider.
    if provider is None or provider not in sign_in_clients() or preset is None or preset.sign_in != provider:
        return None
    return {"key": provider, "name": load_sign_in_catalogue().providers[provider]["name"]}


def _render(store, row, saved, form, **extra):
    row = row if row is not None else get_fetching(get_session(), store.id)
    return htmx.page_or_fragment("inbox/replies.html", "inbox/_replies.html", **_context(store, saved, row, form, **extra))


@bp.route("/inbox/replies", methods=("GET", "POST"))
@login_required
@limited("connection_test")
def page():
    store = current_store()
    db = get_session()
    saved = drafts.get_saved(db, store)
    row = get_fetching(db, store.id)
    form = _form_for(row, saved)
    if request.method == "GET":
        return _render(store, row, saved, form)
    if not form.validate_on_submit():
        return htmx.refused_for_plain(_render(store, row, saved, form, errors={
            name: field.errors for name, field in form._fields.items() if field.errors}), 400)
    action = request.form.get("action", "save")
    if action == "test":
        if row is None or not row.enabled:
            return _render(store, row, saved, form, notice=("Turn reading on first; the test uses its settings.", "error"))
        return _render(store, row, saved, form, check=_run_check(db, row, saved))
    if not form.enabled.data:
        if row is not None and row.enabled:
            turn_off(db, row)
        context = _context(store, saved, row, _form_for(row, saved))
        context.pop("notice")
        return htmx.fragment_or_redirect("inbox/_replies.html", url_for("replies.page"),
                                         notice=("Replies are no longer read from your mailbox.", "success"), **context)
    try:
        port = int((form.port.data or "").strip() or DEFAULT_PORT.get(form.security.data, 993))
    except ValueError:
        return _render(store, row, saved, form, errors={"port": ["Enter the port as a number, such as 993."]})
    choice = ServerChoice(form.host.data or "", port, form.security.data, form.folder.data or "INBOX")
    try:
        row = turn_on(db, store.id, saved, choice, secret_box(), catalogue())
    except ImapSettingsRefused as refused:
        db.rollback()
        return _render(store, None, saved, form, errors={refused.field: [str(refused)]})
    except SecretError as problem:
        db.rollback()
        return _render(store, None, saved, form, errors={"enabled": [LOGIN_PROBLEMS.get(problem.reason, str(problem))]})
    # Turning on tests at once: the merchant learns now, not at the first reply.
    return _render(store, row, saved, form, check=_run_check(db, row, saved),
                   notice=("Reading replies is on. HeiChat checks your mailbox for new replies.", "success"))
