"""Step 5 of the wizard (a real test email and the delivery checklist) and the
summary; routes on the wizard's blueprint, registered by ``wizard.web``."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from wizard.db import get_session
from wizard.models import SendLog
from wizard.secrets import SecretError
from wizard.setup import connection_tests, drafts, saving, targets
from wizard.smtp.diagnosis import category_title, stage_label
from wizard.smtp.message import build_test_email
from wizard.web.context import catalogue, current_store, dev_mailbox_enabled, secret_box, sign_in_clients, target_options
from wizard.web.forms import ChecklistForm, SendTestForm
from wizard.web.ids import parse_id
from wizard.web.rate_limits import limited
from wizard.web.troubleshooting import explanation
from wizard.web.wizard import PASSWORD_PROBLEMS, bp, go, step

# -- step 5 --------------------------------------------------------------------------

def _send_context(form=None, log=None, password_problem: str | None = None) -> dict:
    store = current_store()
    db = get_session()
    saved = drafts.get_saved(db, store)
    if form is None:
        form = SendTestForm()
        form.recipient.data = current_user.email
    checklist = ChecklistForm()
    if log is not None:
        checklist.arrived.data = bool(log.check_arrived)
        checklist.sender_name.data = bool(log.check_sender_name)
        checklist.not_spam.data = bool(log.check_not_spam)
    if password_problem is None:
        password_problem = targets.saved_password_problem(saved, secret_box())
    return {
        "saved": saved,
        "password_problem": PASSWORD_PROBLEMS.get(password_problem) if password_problem else None,
        "form": form,
        "log": log,
        "explain": explanation(log, store.provider) if log is not None and not log.ok else None,
        "checklist": checklist,
        "stage_label": stage_label,
        "mailbox_url": url_for("devmailbox.inbox") if dev_mailbox_enabled() and saved and saved.provider == "local" else None,
    }


def _own_log(log_id: int) -> SendLog:
    log = get_session().get(SendLog, log_id)
    if log is None or log.store_id != current_store().id:
        abort(404)
    return log


@bp.route("/send", methods=("GET", "POST"))
@limited("test_email")
def send():
    store = current_store()
    db = get_session()
    saved = drafts.get_saved(db, store)
    if saved is None:
        flash("Save your SMTP settings first (step 4).", "info")
        return redirect(url_for("wizard.test"))
    form = SendTestForm()
    if request.method == "POST":
        if form.validate_on_submit():
            box = secret_box()
            problem = targets.saved_password_problem(saved, box)
            if problem is not None:
                # Nothing is sent: the page asks for the password again (step 3, then test and save).
                return step("send", **_send_context(form=form, password_problem=problem))
            message = build_test_email(
                sender_name=saved.sender_name,
                sender_email=saved.sender_email,
                recipient=form.recipient.data,
                store_name=store.name,
                provider_name=catalogue().get(saved.provider).name if catalogue().get(saved.provider) else "SMTP",
            )
            try:
                target = targets.saved_target(db, saved, box, target_options(), sign_in_clients())
            except SecretError as exc:
                return step("send", **_send_context(form=form, password_problem=exc.reason))
            options, clients = target_options(), sign_in_clients()
            result = connection_tests.probe_signed_in(
                db, target, lambda session: targets.saved_target(session, saved, box, options, clients,
                                                                token_refused=True),
                message=message, recipients=[form.recipient.data])
            log = saving.record_send(db, store, saved, form.recipient.data, str(message["Subject"]),
                                         str(message["Message-ID"]), str(message["From"]), result)
            return go("send", sent=log.id)
        return step("send", **_send_context(form=form))
    sent = parse_id(request.args.get("sent"))
    # Coming back later shows the last test email of these settings, with its checklist.
    log = _own_log(sent) if sent is not None else saving.latest_send(db, store, since=saved.saved_at)
    return step("send", **_send_context(log=log))


@bp.route("/send/<int:log_id>/checklist", methods=("POST",))
def checklist(log_id: int):
    log = _own_log(log_id)
    form = ChecklistForm()
    if not form.validate_on_submit():
        abort(400)
    log.check_arrived = form.arrived.data
    log.check_sender_name = form.sender_name.data
    log.check_not_spam = form.not_spam.data
    db = get_session()
    db.add(log)
    db.commit()
    if log.ok and form.arrived.data and form.sender_name.data and form.not_spam.data:
        flash("All three checks passed — email sending is ready.", "success")
        return go("done")
    flash("Checklist saved. The hints below explain what to look at.", "info")
    return go("send", sent=log.id)


# -- summary -------------------------------------------------------------------------

@bp.route("/done")
def done():
    store = current_store()
    db = get_session()
    saved = drafts.get_saved(db, store)
    last_send = saving.latest_send(db, store)
    last_test = saving.latest_test(db, store)
    return step("done", saved=saved, last_test=last_test, last_send=last_send,
                last_test_words=category_title(last_test.category) if last_test and not last_test.ok else None,
                last_send_words=category_title(last_send.category) if last_send and not last_send.ok else None)

