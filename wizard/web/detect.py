"""Step 3's "Find my settings": auto-detect from the sender address or host,
then one click to use a combination that answered."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, render_template, request
from flask_login import login_required

from wizard.catalogue import LOCAL_KEY, SECURITY_LABELS
from wizard.db import get_session
from wizard.dns.resolver import DnsResolver
from wizard.setup import drafts
from wizard.smtp.detect import detect_settings
from wizard.smtp.diagnosis import category_title
from wizard.web import form_data, htmx
from wizard.web.context import catalogue, current_store, dev_mailbox_enabled, secret_box, target_options
from wizard.web.forms import ActionForm
from wizard.web.rate_limits import limited
from wizard.web.wizard import go, smtp_context, smtp_findings, step

bp = Blueprint("detect", __name__, url_prefix="/wizard/smtp")


@bp.before_request
@login_required
def require_member():
    current_store()


@bp.route("/detect", methods=("POST",))
@limited("detect")
def detect():
    """Probe the candidates (no credentials) and show what answered."""
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    db = get_session()
    box = secret_box()
    typed = form_data()
    draft = drafts.update_draft(db, store, typed, box)
    host = typed.get("host", "").strip()
    email = typed.get("sender_email", "").strip()
    result, problem = None, None
    # The same field checks as the form: nothing malformed is looked up or probed.
    findings = smtp_findings(typed, draft)
    blocking = [f for f in findings if f.is_error and f.field == ("host" if host else "sender_email")]
    options = target_options()
    ports = tuple(current_app.config["DETECT_PORTS"])
    local = catalogue().get(LOCAL_KEY) if dev_mailbox_enabled() else None
    if local is not None and (store.provider == LOCAL_KEY or host == local.host):
        # Development: the local test mailbox listens on its own port, which no provider uses.
        host, ports = local.host, ports + (local.port,)
    policy, ca_file = options.address_policy, options.extra_ca_file
    if local is not None and host == local.host and options.local_mailbox:
        policy = policy.with_allowed(*options.local_mailbox) if policy is not None else None
        ca_file = options.local_ca_file or ca_file
    try:
        if not host and not email:
            raise ValueError("Enter the sender email (or a host) first, then we can look for the settings.")
        if blocking:
            raise ValueError(blocking[0].text)
        result = detect_settings(
            email=None if host else email, host=host or None, ports=ports,
            timeout=float(current_app.config["DETECT_TIMEOUT"]), ca_file=ca_file,
            nameserver=options.nameserver, resolver=DnsResolver(options.nameserver, timeout=2.0),
            catalogue=catalogue(), address_policy=policy,
            provider=LOCAL_KEY if local is not None and host == local.host else None,
        )
    except ValueError as exc:
        problem = str(exc)
    found = catalogue().get(result["provider"]) if result else None
    context = {"detection": result, "detection_problem": problem, "action_form": ActionForm(),
               "detected_provider": found.name if found else None, "category_title": category_title}
    return htmx.respond(
        fragment=lambda: render_template("wizard/_detect_fragment.html", security_labels=SECURITY_LABELS, **context),
        page=lambda: step("smtp", **smtp_context(drafts.draft_form(draft), findings, draft, ActionForm()), **context))


@bp.route("/use-detected", methods=("POST",))
def use_detected():
    """Fill host, port and security with a detected combination."""
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    db = get_session()
    draft = drafts.get_draft(db, store)
    host = request.form.get("host", "")
    port = request.form.get("port", "")
    security = request.form.get("security", "")
    if draft is None or security not in SECURITY_LABELS or not (port.isascii() and port.isdigit()):
        abort(400)
    # Another server: a stored password typed for the old one is dropped.
    drafts.set_server(draft, secret_box(), host=host, port=port, security=security)
    db.add(draft)
    db.commit()
    flash(f"Using {host} port {port} with {SECURITY_LABELS[security]}. Check the other fields, then continue.", "success")
    return go("smtp")
