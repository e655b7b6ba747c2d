"""The five-step onboarding wizard: one stable URL per step.

Views are thin: state lives in ``wizard.setup``, field checks in
``wizard.smtp.validation``, the SMTP conversation in ``wizard.smtp.probe``.
Every step renders the full page, or just the step fragment for htmx.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from wizard import audit
from wizard.catalogue import SECURITY_LABELS
from wizard.db import get_engine, get_session
from wizard.models import ConnectionTest, Store
from wizard.secrets import SERVER_CHANGED, UNREADABLE, SecretError
from wizard.setup import connection_tests, drafts, saving, steps, targets
from wizard.setup.live_checks import with_installation_checks
from wizard.setup.sign_in import SignInNeeded, TokenUnavailable
from wizard.smtp.diagnosis import stage_label
from wizard.smtp.hosts import nearest_known_host
from wizard.smtp.probe import planned_stages
from wizard.smtp.validation import FIELDS, LABELS, by_field, has_errors
from wizard.web import form_data, htmx
from wizard.web.context import catalogue, current_store, dev_mailbox_enabled, secret_box, sign_in_clients, target_options
from wizard.web.forms import ActionForm, PreChatForm, ProviderForm, SmtpForm
from wizard.web.oauth import panel_context as sign_in_panel
from wizard.web.rate_limits import limited
from wizard.web.troubleshooting import explanation

bp = Blueprint("wizard", __name__, url_prefix="/wizard")


@bp.before_request
@login_required
def require_member():
    current_store()  # 403 for accounts without a store


def _step_context(slug: str, **context) -> dict:
    """What every step template needs: the progress bar, the store, the preset."""
    store = current_store()
    context.setdefault("progress", steps.progress(get_session(), store, catalogue(), secret_box()))
    return dict(step=slug, steps=drafts.STEPS, store=store, preset=catalogue().get(store.provider),
                security_labels=SECURITY_LABELS, **context)


def step(slug: str, push: bool = False, **context):
    """Render step ``slug``: the full page, or the step fragment for htmx."""
    endpoint = "wizard." + slug.replace("-", "_")
    return htmx.page_or_fragment("wizard/page.html", "wizard/_step.html",
                                 push_url=url_for(endpoint) if push else None, **_step_context(slug, **context))


def _audit(action: str, **detail) -> None:
    """Record what the signed-in member did to this store's set-up."""
    audit.record(get_session(), store_id=current_store().id, actor=current_user._get_current_object(),
                 action=action, detail=detail)


def go(endpoint: str, **values):
    """After a successful POST: a redirect, or for htmx an HX-Location that
    loads the next step into place and pushes its URL (same result, no reload)."""
    return htmx.after_post(url_for(f"wizard.{endpoint}", **values), target="#wizard-step")


@bp.route("")
def resume():
    """Continue where the merchant left off."""
    progress = steps.progress(get_session(), current_store(), catalogue(), secret_box())
    if progress.next_step is None:
        return redirect(url_for("wizard.done"))
    return redirect(url_for(f"wizard.{progress.next_step.replace('-', '_')}"))


# -- step 1 --------------------------------------------------------------------------

@bp.route("/pre-chat-form", methods=("GET", "POST"))
def pre_chat_form():
    store = current_store()
    form = PreChatForm()
    if request.method == "GET":
        form.enabled.data = store.prechat_enabled
        form.email_required.data = store.prechat_email_required
        form.name_mode.data = store.prechat_name_mode
        form.intro.data = store.prechat_intro
    elif form.validate_on_submit():
        store.prechat_enabled = form.enabled.data
        store.prechat_email_required = form.email_required.data
        store.prechat_name_mode = form.name_mode.data
        store.prechat_intro = (form.intro.data or "").strip()
        db = get_session()
        db.add(store)
        db.commit()
        if steps.prechat_ready(store):
            flash("Pre-chat form is on and asks every visitor for an email address.", "success")
            return go("provider")
        flash("Saved — but follow-ups need an address: turn the form on and keep the email field required.", "warning")
    return step("pre-chat-form", push=request.method == "POST", form=form)


# -- step 2 --------------------------------------------------------------------------

@bp.route("/provider", methods=("GET", "POST"))
def provider():
    store = current_store()
    form = ProviderForm()
    ses = catalogue().get("ses")
    providers = catalogue().visible(dev_mailbox_enabled())
    if request.method == "GET":
        form.provider.data = store.provider
        form.ses_region.data = store.ses_region or (ses.default_region if ses else None)
    elif form.validate_on_submit():
        preset = next((p for p in providers if p.key == form.provider.data), None)
        region = form.ses_region.data if preset and preset.host_template else None
        if preset is None:
            form.provider.errors.append("Choose one of the providers below.")
        elif preset.host_template and region not in preset.regions:
            form.ses_region.errors.append("Choose the AWS region where your SES identities are verified.")
        else:
            drafts.apply_provider(get_session(), store, preset, region, current_user.email, secret_box())
            _audit("settings.changed", step="provider", provider=preset.key, region=region)
            return go("smtp")
    return step("provider", push=request.method == "POST", form=form, providers=providers,
                 regions=ses.regions if ses else (), choose=catalogue().choose)


# -- step 3 --------------------------------------------------------------------------

# The fields a one-click fix may set (``Finding.fix_field``).
FIXABLE = ("host", "port", "security")


def smtp_findings(typed: dict[str, str], draft) -> list:
    """Every message for step 3's values: the field checks and this installation's (port policy, DNS)."""
    store = current_store()
    findings = drafts.check_values(store.provider or "", typed, draft, secret_box(), catalogue())
    return with_installation_checks(findings, typed, store.provider or "", catalogue(), target_options())


def _fixed(typed: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """The form values with the one-click fix the merchant pressed applied, and what it did."""
    field, _, value = request.form.get("fix", "").partition("=")
    if field not in FIXABLE or not value:
        return typed, None
    label = LABELS[field]
    shown = SECURITY_LABELS.get(value, value) if field == "security" else value
    return {**typed, field: value}, f"{label} is now {shown}."

def smtp_context(values: dict[str, str], findings, draft, form) -> dict:
    store = current_store()
    db = get_session()
    return {
        "form": form,
        "values": values,
        "feedback": by_field(findings),
        "fields": FIELDS,
        "labels": LABELS,
        "password_saved": bool(draft and draft.password_encrypted) and drafts.password_problem(draft, secret_box()) is None,
        "passed": saving.draft_passed_test(db, store, draft, secret_box()),
        "has_test": saving.has_test(db, store),
        "sign_in": sign_in_panel(store, draft),
    }


@bp.route("/smtp", methods=("GET", "POST"))
def smtp():
    store = current_store()
    if catalogue().get(store.provider) is None:
        flash("Choose your email provider first.", "info")
        return redirect(url_for("wizard.provider"))
    db = get_session()
    box = secret_box()
    form = SmtpForm()
    draft = drafts.get_draft(db, store)
    if request.method == "POST" and form.validate_on_submit():
        typed, fixed = _fixed(form_data())
        draft = drafts.update_draft(db, store, typed, box)
        findings = smtp_findings(typed, draft)
        if fixed:
            # A one-click fix changes one field and stays on the step: the merchant sees the result.
            _audit("settings.changed", step="smtp", fix=request.form.get("fix", "")[:300])
            flash(fixed, "success")
            return step("smtp", **smtp_context(drafts.draft_form(draft), findings, draft, form))
        _audit("settings.changed", step="smtp", host=draft.host[:255], port=draft.port[:10], security=draft.security[:10],
               username=draft.username[:254], sender_email=draft.sender_email[:254])
        if not has_errors(findings):
            return go("test")
        flash("Some fields need fixing — see the messages next to them.", "error")
        return step("smtp", push=True, **smtp_context(drafts.draft_form(draft), findings, draft, form))
    values = drafts.draft_form(draft)
    # A fresh form (its sender name as pre-filled) shows no errors yet; a returning merchant sees where they stand.
    fresh = draft is None or not draft.sender_email or (
        draft.sender_name in ("", drafts.default_sender_name(store)) and not draft.password_encrypted
        and not draft.password_notice)
    findings = [] if fresh else smtp_findings(values, draft)
    return step("smtp", **smtp_context(values, findings, draft, form))


@bp.route("/smtp/check", methods=("POST",))
def smtp_check():
    """Live validation: the triggering field's messages, plus the others out of band."""
    store = current_store()
    db = get_session()
    box = secret_box()
    typed = form_data()
    before = drafts.get_draft(db, store)
    had_password = bool(before is not None and before.password_encrypted)
    had_sign_in = before is not None and before.oauth_grant_id is not None
    draft = drafts.update_draft(db, store, typed, box, draft=before)
    findings = by_field(smtp_findings(typed, draft))
    trigger = request.headers.get("HX-Trigger-Name", "")
    if trigger not in FIELDS:
        trigger = "host"
    # Only fields the merchant has filled in (or just left) get messages, so a
    # half-filled form is not covered in "required" errors.
    shown = [f for f in FIELDS if f != trigger and typed.get(f, "").strip()]
    # The server changed under a stored password: the password field is
    # redrawn (no "saved" placeholder) and says why it is empty now.
    password_dropped = had_password and not draft.password_encrypted
    return render_template(
        "wizard/_smtp_check.html",
        trigger=trigger,
        shown=[f for f in shown if not (password_dropped and f == "password")],
        password_dropped=password_dropped and trigger != "password",
        # A password being typed replaces the saved one: the "saved" note says so at once.
        password_replaced=trigger == "password" and bool(typed.get("password")) and had_password,
        sign_in_dropped=had_sign_in and draft.oauth_grant_id is None,
        sign_in=sign_in_panel(store, draft),
        preset=catalogue().get(store.provider),
        security_labels=SECURITY_LABELS,
        feedback=findings,
        labels=LABELS,
        passed=saving.draft_passed_test(db, store, draft, box),
        has_test=saving.has_test(db, store),
    )


# -- step 4 --------------------------------------------------------------------------

def _test_context(result_test=None, confirm_untested: bool = False) -> dict:
    store = current_store()
    db = get_session()
    box = secret_box()
    draft = drafts.get_draft(db, store)
    findings = smtp_findings(drafts.draft_form(draft), draft) if draft else drafts.check_draft(None, catalogue(), box)
    test = result_test or saving.latest_test(db, store)
    return {
        # A finished result run with other settings than the current ones says so.
        "stale": test is not None and test.status == connection_tests.FINISHED
        and not saving.test_matches_draft(test, draft, box),
        "running": test is not None and test.status == connection_tests.RUNNING,
        "host_suggestion": _host_suggestion(test, draft),
        "draft": draft,
        "findings": findings,
        "blocked": draft is None or has_errors(findings),
        "test": test,
        "explain": explanation(test, store.provider) if test and test.status == connection_tests.FINISHED else None,
        "passed": saving.draft_passed_test(db, store, draft, box),
        "saved": drafts.get_saved(db, store),
        "confirm_untested": confirm_untested,
        "action_form": ActionForm(),
        "stage_label": stage_label,
        "planned": planned_stages(test.security) if test else [],
    }


def _host_suggestion(test, draft) -> str | None:
    """A known host the draft's host is a typo of, when the last test could not find the host."""
    if test is None or draft is None or test.ok or test.category != "dns_not_found":
        return None
    return nearest_known_host(draft.host.strip().lower().rstrip("."), catalogue())


@bp.route("/test", methods=("GET", "POST"))
@limited("connection_test")
def test():
    """Show the latest test; POST runs a new one (live for htmx, inline without JS)."""
    store = current_store()
    if request.method == "GET":
        return step("test", **_test_context())
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    box = secret_box()
    context = _test_context()
    if context["blocked"]:
        flash("Fix the SMTP settings first.", "error")
        return step("test", **context)
    draft = context["draft"]
    if request.form.get("apply_suggestion") == "yes":
        _apply_suggestion(draft, context["test"], request.form.get("password", ""))
    elif request.form.get("apply_host") == "yes" and context["host_suggestion"]:
        _apply_host(draft, context["host_suggestion"], request.form.get("password", ""))
    try:
        target = targets.draft_target(db, draft, box, target_options(), sign_in_clients())
    except SecretError as exc:
        # Never sent anywhere: the stored password was typed for another server
        # (or cannot be read). Step 3 says why and takes it again.
        flash(PASSWORD_PROBLEMS[exc.reason], "error")
        return go("smtp")
    run = connection_tests.start_test(db, store, draft, box)
    _audit("settings.tested", test_id=run.id, host=run.host, port=run.port, security=run.security)
    options, clients, store_id = target_options(), sign_in_clients(), store.id

    def retarget(session):
        # The server refused the access token: one more try with a new one.
        fresh_draft = drafts.get_draft(session, session.get(Store, store_id))
        return targets.draft_target(session, fresh_draft, box, options, clients, token_refused=True)

    def live_timeline():
        # htmx: the stages fill in while the page polls the stored run.
        connection_tests.run_test_in_background(get_engine(), run.id, target, retarget)
        return step("test", **_test_context(result_test=run))

    def finished_page():
        connection_tests.run_test(db, run, target, retarget)
        return redirect(url_for("wizard.test"))
    return htmx.respond(fragment=live_timeline, page=finished_page)


PASSWORD_PROBLEMS = {
    SERVER_CHANGED: "You changed the server: type the password again (a saved password is only sent to the server "
                    "it was typed for).",
    UNREADABLE: "Your saved password can no longer be read — type it again.",
    SignInNeeded.reason: "The sign-in with your provider has stopped working (revoked or expired) — sign in again.",
    TokenUnavailable.reason: "Your provider's sign-in service did not answer in time. Nothing was sent; try again "
                             "in a minute.",
}


def _apply_suggestion(draft, latest, password: str) -> None:
    """The one-click fix: take the port and security the last failure suggested.

    That is another server, so the stored password is dropped unless the
    merchant typed it again next to the button (then it is bound to the new one)."""
    suggestion = latest.suggestion if latest is not None and not latest.ok else None
    if not suggestion:
        return
    box = secret_box()
    security = suggestion["security"] if suggestion["security"] in SECURITY_LABELS else draft.security
    drafts.set_server(draft, box, port=str(int(suggestion["port"])), security=security)
    if password:
        drafts.store_password(draft, password, box)
    db = get_session()
    db.add(draft)
    db.commit()
    if draft.password_encrypted:
        flash(f"Switched to port {draft.port} with {SECURITY_LABELS[draft.security]} and tested again.", "info")
    else:
        flash(f"Switched to port {draft.port} with {SECURITY_LABELS[draft.security]}.", "info")


def _apply_host(draft, host: str, password: str) -> None:
    """The one-click fix for a host typo found by a failed test: the known host the typo is near.
    Another server, so the password is taken again as for ``_apply_suggestion``."""
    drafts.set_server(draft, secret_box(), host=host)
    if password:
        drafts.store_password(draft, password, secret_box())
    db = get_session()
    db.add(draft)
    db.commit()
    flash(f"Switched the host to {host}" + (" and tested again." if draft.password_encrypted else "."), "info")


@bp.route("/test/runs/<int:test_id>")
def test_run(test_id: int):
    """Polled while a test runs: the timeline so far, then the whole step when done."""
    store = current_store()
    db = get_session()
    run = db.get(ConnectionTest, test_id)
    if run is None or run.store_id != store.id:
        abort(404)
    return htmx.respond(fragment=lambda: _test_progress(db, run), page=lambda: redirect(url_for("wizard.test")))


def _test_progress(db, run: ConnectionTest):
    """The timeline so far while the test runs; the whole step (swapped in its place) once done."""
    run = connection_tests.expire_if_stuck(db, run, float(current_app.config["SMTP_TIMEOUT"]))
    if run.status == connection_tests.RUNNING:
        return render_template("wizard/_result.html", record=run, explanation=None, ok_title="",
                               stage_label=stage_label, planned=planned_stages(run.security),
                               security_labels=SECURITY_LABELS, action_form=ActionForm())
    response = step("test", **_test_context(result_test=run))
    response.headers["HX-Retarget"] = "#wizard-step"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


@bp.route("/save", methods=("POST",))
def save():
    store = current_store()
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    box = secret_box()
    context = _test_context()
    if context["blocked"]:
        flash("Fix the SMTP settings first.", "error")
        return step("test", push=True, **context)
    tested = context["passed"]
    if not tested and request.form.get("confirm_untested") != "yes":
        return step("test", push=True, **_test_context(confirm_untested=True))
    saved = saving.save_settings(db, store, context["draft"], box, tested=tested)
    _audit("settings.saved", tested=tested, host=saved.host, port=saved.port, security=saved.security,
           username=saved.username, sender_email=saved.sender_email)
    flash("Settings saved." if tested else "Settings saved without a passing test — they are marked untested.",
          "success" if tested else "warning")
    return go("send")

