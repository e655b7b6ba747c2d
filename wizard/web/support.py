"""HeiChat support: find a store, read its set-up (never its password), share links.

Only support agents (``Member.role == "support"``, no store) may open these
pages; store members get 403. Everything here reads; the only writes are
share links (create, revoke) and the audit events they leave.
"""
from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlmodel import select

from wizard import audit
from wizard.catalogue import SECURITY_LABELS
from wizard.db import get_session
from wizard.models import ConnectionTest, Member, SendLog, ShareLink, Store
from wizard.setup import drafts, steps
from wizard.smtp.diagnosis import stage_label
from wizard.support import share_links
from wizard.web import form_data, htmx
from wizard.web.context import catalogue, dev_mailbox_enabled, secret_box
from wizard.web.errors import error_page
from wizard.web.forms import ActionForm
from wizard.web.ids import parse_id
from wizard.web.public_url import page_url
from wizard.web.troubleshooting import deliverability_report, explanation, headline, sender_domain

bp = Blueprint("support", __name__, url_prefix="/support")
HISTORY_LENGTH = 20
SEARCH_LIMIT = 50


@bp.before_request
@login_required
def require_support_agent():
    if current_user.role != "support":
        abort(403)


# -- search --------------------------------------------------------------------------

def search_stores(query: str) -> list[tuple[Store, list[Member]]]:
    """Stores whose name, slug or a member's email contains ``query`` (newest first)."""
    db = get_session()
    statement = select(Store)
    if query:
        by_member = select(Member.store_id).where(Member.email.icontains(query, autoescape=True))
        statement = statement.where(Store.name.icontains(query, autoescape=True)
                                    | Store.slug.icontains(query, autoescape=True)
                                    | Store.id.in_(by_member))
    stores = db.exec(statement.order_by(Store.id.desc()).limit(SEARCH_LIMIT)).all()
    members: dict[int, list[Member]] = {}
    if stores:
        for member in db.exec(select(Member).where(Member.store_id.in_([s.id for s in stores])).order_by(Member.id)):
            members.setdefault(member.store_id, []).append(member)
    return [(store, members.get(store.id, [])) for store in stores]


@bp.route("")
def index():
    query = request.args.get("q", "").strip()[:200]
    return htmx.page_or_fragment("support/index.html", "support/_results.html", query=query, results=search_stores(query))


# -- one store -----------------------------------------------------------------------

def _store(store_id: int) -> Store:
    store = get_session().get(Store, store_id)
    if store is None:
        abort(404)
    return store


def read_only(record):
    """A test or send for display in the support view: the same fields, but no
    one-click fix (that form acts on the merchant's own wizard)."""
    if record is None:
        return None
    return SimpleNamespace(**{**record.model_dump(), "suggestion": None})


def _providers() -> list[str]:
    return [p.key for p in catalogue().visible(dev_mailbox_enabled())]


def _links_context(store: Store, form: dict | None = None, errors: dict | None = None, created: int | None = None) -> dict:
    secret = current_app.config["SECRET_KEY"]
    rows = share_links.links_for_store(get_session(), store.id)
    return {
        "links": rows,
        "link_urls": {row.link.id: page_url("share.open", token=share_links.sign(row.link, secret))
                      for row in rows},
        "link_form": form or {"target": "smtp", "expires_amount": "7", "expires_unit": "days"},
        "link_errors": errors or {},
        "created": created,
        "targets": share_links.targets(),
        "target_title": share_links.target_title,
        "providers": catalogue().visible(dev_mailbox_enabled()),
        "prefill_fields": share_links.PREFILL_FIELDS,
        "prefill_labels": share_links.PREFILL_LABELS,
        "security_labels": SECURITY_LABELS,
        "action_form": ActionForm(),
    }


def _provider_name(key: str | None) -> str:
    """A provider's name as merchants know it ("Amazon SES", not "ses")."""
    preset = catalogue().get(key) if key else None
    return preset.name if preset is not None else (key or "—")


def _store_context(store: Store, focus_test: ConnectionTest | None = None, **links) -> dict:
    db = get_session()
    tests = db.exec(select(ConnectionTest).where(ConnectionTest.store_id == store.id)
                    .order_by(ConnectionTest.id.desc()).limit(HISTORY_LENGTH)).all()
    sends = db.exec(select(SendLog).where(SendLog.store_id == store.id)
                    .order_by(SendLog.id.desc()).limit(HISTORY_LENGTH)).all()
    latest_test = next((t for t in tests if t.status == "finished"), None)
    latest_send = sends[0] if sends else None
    test_explain, send_explain = explanation(latest_test, store.provider), explanation(latest_send, store.provider)
    context = {
        "store": store,
        "members": db.exec(select(Member).where(Member.store_id == store.id).order_by(Member.id)).all(),
        "preset": catalogue().get(store.provider),
        "progress": steps.progress(db, store, catalogue(), secret_box()),
        "steps": drafts.STEPS,
        "draft": drafts.get_draft(db, store),
        "saved": drafts.get_saved(db, store),
        "tests": tests,
        "sends": sends,
        "latest_test": read_only(latest_test),
        "latest_test_explain": test_explain,
        "latest_send": read_only(latest_send),
        "latest_send_explain": send_explain,
        "focus_test": read_only(focus_test),
        "focus_explain": explanation(focus_test, store.provider) if focus_test is not None else None,
        "stage_label": stage_label,
        "provider_name": _provider_name,
        "headline": headline(store, latest_test, test_explain, latest_send, send_explain),
        "domain": sender_domain(store),
        "check_url": url_for("support.deliverability", store_id=store.id),
    }
    context.update(_links_context(store, **links))
    if request.args.get("check") == "dns":
        context.update(deliverability_report(store))
    return context


def _opened(store: Store, **detail) -> None:
    audit.record(get_session(), store_id=store.id, actor=current_user._get_current_object(),
                 action="support_view.opened", detail=detail)


@bp.route("/stores/<int:store_id>")
def store(store_id: int):
    """The store's set-up, read-only: settings and draft (no password), history, links."""
    store = _store(store_id)
    _opened(store)
    # ASCII digits only ("²".isdigit() is true, int("²") is not): anything else highlights nothing.
    return render_template("support/store.html", **_store_context(store, created=parse_id(request.args.get("created"))))


@bp.route("/tests/<int:test_id>")
def test(test_id: int):
    """The support view of one exact connection test (the link merchants send)."""
    record = get_session().get(ConnectionTest, test_id)
    if record is None:
        abort(404)
    store = _store(record.store_id)
    _opened(store, test_id=record.id)
    return render_template("support/store.html", **_store_context(store, focus_test=record))


@bp.route("/stores/<int:store_id>/deliverability")
def deliverability(store_id: int):
    """The SPF / DMARC / DKIM check for the store's sender domain (htmx), or the page with it."""
    store = _store(store_id)
    return htmx.respond(
        fragment=lambda: render_template(
            "troubleshooting/_deliverability.html", store=store, domain=sender_domain(store),
            check_url=url_for("support.deliverability", store_id=store.id), **deliverability_report(store)),
        page=lambda: redirect(url_for("support.store", store_id=store.id, check="dns", _anchor="deliverability")))


# -- share links ---------------------------------------------------------------------

def _links_response(store: Store, status: int = 200, **links):
    """The links section for htmx, the whole store page otherwise."""
    return htmx.respond(
        fragment=lambda: make_response(render_template("support/_links.html", store=store,
                                                       **_links_context(store, **links)), status),
        page=lambda: make_response(render_template("support/store.html", **_store_context(store, **links)), status))


@bp.route("/stores/<int:store_id>/links", methods=("POST",))
def create_link(store_id: int):
    store = _store(store_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    form = form_data()
    if any("password" in key.lower() for key in form):
        return error_page(400, "Share links never carry a password",
                          "The merchant types their password in the wizard themselves. Remove it and create the link "
                          "again.")
    prefill = {key: form.get(key, "") for key in share_links.PREFILL_FIELDS}
    try:
        expires_in = share_links.expiry_from(form.get("expires_amount", ""), form.get("expires_unit", ""))
        link = share_links.create_link(get_session(), store=store, creator=current_user._get_current_object(),
                                       target=form.get("target", ""), prefill=prefill, providers=_providers(),
                                       expires_in=expires_in, note=form.get("note", ""))
    except share_links.ShareLinkError as exc:
        return _links_response(store, form=form, errors=exc.errors)
    return htmx.fragment_or_redirect(
        "support/_links.html", url_for("support.store", store_id=store.id, created=link.id, _anchor="share-links"),
        notice=("Share link created — copy it from the list below.", "success"),
        store=store, **_links_context(store, created=link.id))


@bp.route("/stores/<int:store_id>/links/<int:link_id>/revoke", methods=("POST",))
def revoke_link(store_id: int, link_id: int):
    store = _store(store_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    link = get_session().get(ShareLink, link_id)
    if link is None or link.store_id != store.id:
        abort(404)
    share_links.revoke(get_session(), link, current_user._get_current_object())
    return htmx.fragment_or_redirect(
        "support/_links.html", url_for("support.store", store_id=store.id, _anchor="share-links"),
        notice=("Share link revoked: it no longer opens.", "info"), store=store, **_links_context(store))
