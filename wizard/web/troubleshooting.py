"""The troubleshooting page merchants come back to: their latest test and
send with the diagnosis, the history, and the help topics (public, each
with a stable anchor)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlmodel import select

from wizard.catalogue import LOCAL_KEY, SECURITY_LABELS
from wizard.catalogue.help import help_topics, topic_for_category
from wizard.db import get_session
from wizard.dns.deliverability import check_domain
from wizard.dns.resolver import DnsResolver
from wizard.models import ConnectionTest, Store
from wizard.setup import drafts, health, saving
from wizard.smtp.diagnosis import explain, stage_label
from wizard.web import htmx
from wizard.web.context import catalogue, member_store
from wizard.web.forms import ActionForm

bp = Blueprint("troubleshooting", __name__)
HISTORY_LENGTH = 20


def explanation(record, provider_key: str | None) -> dict | None:
    """Title and provider-aware hint for a finished, failed test or send."""
    if record is None or record.ok or getattr(record, "status", "finished") != "finished":
        return None
    if getattr(record, "refusal", None):
        title = ("This port is not allowed here" if record.category == "port_not_allowed"
                 else "HeiChat will not connect to this address")
        return {"title": title, "hint": record.refusal, "anchor": topic_for_category(record.category)}
    username = getattr(record, "username", None)
    server = record
    if username is None:  # a test email: it used the saved settings' server and account
        saved = drafts.get_saved(get_session(), get_session().get(Store, record.store_id))
        username = saved.username if saved is not None else ""
        server = saved
    title, hint = explain(record.category, provider_key, {
        "host": getattr(server, "host", ""), "port": getattr(server, "port", ""),
        "username": username,
        "sender": getattr(record, "sender_email", getattr(record, "sender", "")),
        "greeting_timeout": f"{float(current_app.config['SMTP_GREETING_TIMEOUT']):g}",
    }, auth=getattr(record, "auth_method", "password"))
    return {"title": title, "hint": hint, "anchor": topic_for_category(record.category)}


def sender_domain(store) -> str | None:
    """The domain whose DNS records decide spam placement: the saved (or draft) sender's."""
    db = get_session()
    settings = drafts.get_saved(db, store) or drafts.get_draft(db, store)
    email = settings.sender_email.strip() if settings is not None else ""
    return email.rpartition("@")[2] or None


def deliverability_report(store) -> dict:
    """Run the SPF / DMARC / DKIM check for the store's sender domain."""
    domain = sender_domain(store)
    if domain is None:
        return {"problem": "Enter a sender email in step 3 first; the check looks at its domain."}
    provider = store.provider if store.provider not in (None, LOCAL_KEY) else None
    resolver = DnsResolver(current_app.config.get("DNS_NAMESERVER") or None,
                           timeout=float(current_app.config["DNS_TIMEOUT"]))
    try:
        return {"result": check_domain(domain, provider, resolver, catalogue())}
    except ValueError as exc:
        return {"problem": str(exc)}


def headline(store, latest, latest_explain: dict | None, last_send, send_explain: dict | None) -> dict:
    """The one thing the page starts with: the newest failure explained (what it was, what to
    check, the topic that covers it), or else the store's email health."""
    state = health.email_health(get_session(), store)
    failures = [(record, why) for record, why in ((latest, latest_explain), (last_send, send_explain)) if why]
    if state.state != health.RECONNECT_NEEDED and failures:
        record, why = max(failures, key=lambda pair: health.as_utc(pair[0].created_at))
        fix = state.next_step if state.next_step.key != "follow_up" else health.health_texts().next_step("test")
        return {"state": "failing", "ok": False, "title": why["title"], "text": why["hint"], "anchor": why["anchor"],
                "next": fix}
    return {"state": state.state, "ok": state.working, "title": state.title, "text": state.text, "anchor": None,
            "next": state.next_step}


@bp.route("/troubleshooting/deliverability")
@login_required
def deliverability():
    """The deliverability check alone (htmx), or the page with it filled in."""
    store = member_store()
    if store is None:
        abort(403)
    return htmx.respond(
        fragment=lambda: render_template("troubleshooting/_deliverability.html", store=store,
                                         domain=sender_domain(store), **deliverability_report(store)),
        page=lambda: redirect(url_for("troubleshooting.index", check="dns", _anchor="deliverability")))


@bp.route("/troubleshooting")
def index():
    store = member_store() if current_user.is_authenticated else None
    context = {"topics": help_topics(), "store": store, "stage_label": stage_label,
               "security_labels": SECURITY_LABELS, "action_form": ActionForm()}
    if store is not None:
        db = get_session()
        tests = db.exec(
            select(ConnectionTest).where(ConnectionTest.store_id == store.id)
            .order_by(ConnectionTest.id.desc()).limit(HISTORY_LENGTH)
        ).all()
        latest = tests[0] if tests else None
        last_send = saving.latest_send(db, store)
        latest_explain, send_explain = explanation(latest, store.provider), explanation(last_send, store.provider)
        context.update(
            headline=headline(store, latest, latest_explain, last_send, send_explain),
            latest_test=latest,
            latest_explain=latest_explain,
            last_send=last_send,
            send_explain=send_explain,
            history=tests[1:],
            preset=catalogue().get(store.provider),
            saved=drafts.get_saved(db, store),
            domain=sender_domain(store),
        )
        if request.args.get("check") == "dns":
            context.update(deliverability_report(store))
    return render_template("troubleshooting/page.html", **context)
