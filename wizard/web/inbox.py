"""The merchant's inbox: conversations, one timeline of chat and email each,
chat replies, follow-up emails from templates, the templates and the sending settings.

Views stay thin: wording and rendering live in ``wizard.compose``, the queue
(idempotency, threading, suppressions) in ``wizard.outbox.queue``; emails are
delivered by the outbox worker, and the timeline polls while any is on its way.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import login_required
from sqlmodel import select

from wizard.chat import conversations, inbox
from wizard.db import get_session
from wizard.inbound import unmatched
from wizard.inbound.original import read_original, sanitized_html
from wizard.models import Contact, Conversation, Store, utcnow
from wizard.models.inbound import ImapFetching, InboundEmail
from wizard.models.outbox import BOUNCED, FAILED, QUEUED, SENDING, SENT, EmailTemplate, OutboxEmail
from wizard.outbox import compose
from wizard.outbox.queue import NotConfigured, SuppressedAddress, as_utc, enqueue, retry_now, suppression_for
from wizard.setup import drafts
from wizard.smtp.diagnosis import CATEGORIES, explain, quota_for
from wizard.smtp.transcript import split_enhanced
from wizard.smtp.types import Reply
from wizard.web import htmx
from wizard.web.context import catalogue, current_store
from wizard.web.forms import ActionForm
from wizard.web.ids import parse_id
from wizard.web.inbox_forms import ComposeForm, ReplyForm, SendSettingsForm, TemplateForm
from wizard.web.public_url import NoPublicUrl
from wizard.web.unsubscribe import unsubscribe_urls

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

PENDING = (QUEUED, SENDING)
DRAFT_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")
# Seconds between timeline refreshes: quick while an email is on its way, a
# little slower while the visitor is on the site (new chat messages).
POLL_PENDING, POLL_LIVE = 2, 3
# … and once the visitor left, while a reply to a sent email may come back by email.
POLL_REPLIES = 10
# Most rows (or timeline items) a refresh keeps after "load more": ten pages.
MAX_SHOWN = 500


@bp.before_request
@login_required
def require_member():
    current_store()  # 403 for accounts without a store


@bp.app_template_filter("inbox_time")
def inbox_time(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


# -- shared helpers ------------------------------------------------------------------

def max_body_chars() -> int:
    return int(current_app.config.get("MAX_EMAIL_BODY_CHARS", compose.DEFAULT_MAX_BODY_CHARS))


def gone_minutes() -> int:
    return int(current_app.config.get("VISITOR_GONE_MINUTES", 5))


def visitor_gone(conversation: Conversation) -> bool:
    return inbox.visitor_gone(conversation, gone_minutes())


def _own_conversation(conversation_id: int) -> Conversation:
    conversation = get_session().get(Conversation, conversation_id)
    if conversation is None or conversation.store_id != current_store().id:
        abort(404)
    return conversation


def _contact(conversation: Conversation) -> Contact | None:
    return get_session().get(Contact, conversation.contact_id) if conversation.contact_id else None


def _go(url: str):
    """After a successful POST: the next inbox view (loaded into place for htmx)."""
    return htmx.after_post(url, target="#inbox-view")


def _template_row(store: Store, kind: str) -> EmailTemplate | None:
    return get_session().exec(
        select(EmailTemplate).where(EmailTemplate.store_id == store.id, EmailTemplate.kind == kind)).first()


def store_template(store: Store, kind: str) -> tuple[compose.TemplateText, bool]:
    """The store's wording for ``kind`` (or the default) and whether it is the store's own."""
    default = compose.default_templates()[kind]
    row = _template_row(store, kind)
    if row is None:
        return default, False
    return compose.TemplateText(kind, default.label, default.purpose, row.subject, row.body), True


def email_blocker(store: Store, contact: Contact | None, kind: str | None = None) -> str | None:
    return inbox.email_blocker(get_session(), store, contact, kind)


# -- the list ------------------------------------------------------------------------

def _filters_from_request() -> set[str]:
    return {name for name in inbox.FILTERS if request.args.get(name) in ("1", "on", "y")}


def shown_count(default: int) -> int:
    """How many rows (or timeline items) the open page shows: its refresh keeps them all,
    so a "load more" is not undone by the next refresh (capped, one page at least)."""
    value = request.args.get("shown", "")
    return min(max(int(value), default), MAX_SHOWN) if value.isdigit() and len(value) < 6 else default


@bp.route("")
def index():
    """The conversation list, a page at a time (``older=``). The open list asks again every
    5 s with the stamp of what it shows (``since=``) and gets 204 while nothing changed."""
    store = current_store()
    active = _filters_from_request()
    db = get_session()
    older = request.args.get("older") or None
    page = inbox.inbox_page(db, store, active, gone_minutes(), older=older, size=shown_count(inbox.PAGE_SIZE))
    if older is None and request.args.get("since") == page.stamp:
        return htmx.respond(fragment=lambda: make_response("", 204),
                            page=lambda: _list_page(store, active, inbox.with_claims(db, store.id, page)))
    return _list_page(store, active, inbox.with_claims(db, store.id, page), older)


def _more_urls(active: set[str], page: inbox.InboxPage, shown: int) -> dict:
    if page.older is None:
        return {"older_url": None, "more_url": None}
    filter_args = {name: "1" for name in sorted(active)}
    return {"older_url": url_for("inbox.index", older=page.older, **filter_args),
            "more_url": url_for("inbox.more", older=page.older, shown=shown, **filter_args)}


def _list_page(store: Store, active: set[str], page: inbox.InboxPage, older: str | None = None):
    return htmx.page_or_fragment(
        "inbox/index.html", "inbox/_list.html", store=store, listing=page, rows=page.rows, shown=len(page.rows),
        filters=inbox.FILTERS, active=active, gone_minutes=gone_minutes(), older=older,
        list_url=url_for("inbox.index", **{name: "1" for name in sorted(active)}),
        **_more_urls(active, page, len(page.rows)))


@bp.route("/more")
def more():
    """htmx's "load more": the next page's rows alone, with the next "load more" row, and the
    list's count of shown rows updated (out of band) for its refresh."""
    store = current_store()
    active = _filters_from_request()
    older = request.args.get("older") or None
    db = get_session()
    page = inbox.with_claims(db, store.id, inbox.inbox_page(db, store, active, gone_minutes(), older=older))
    shown = shown_count(0) + len(page.rows)
    return htmx.fragment_only(
        "inbox/_rows.html", url_for("inbox.index", older=older, **{name: "1" for name in sorted(active)}),
        rows=page.rows, listing=page, shown=shown, more=True, **_more_urls(active, page, shown))


# -- one conversation ----------------------------------------------------------------

def _email_problem(email: OutboxEmail, store: Store, saved) -> dict | None:
    """Title and provider-aware hint for a failed email, or for a queued one whose last try failed."""
    if email.status not in (FAILED, QUEUED, BOUNCED) or not email.last_category or email.last_category == "ok":
        return None
    held = catalogue().hints.get(f"outbox_{email.last_category}")
    if held is not None:
        # Held by the outbox itself (nothing was sent): its own words, no server reply.
        return {"category": email.last_category, "title": held["title"], "hint": held["text"]}
    if email.last_category in CATEGORIES:
        title, hint = explain(email.last_category, saved.provider if saved else store.provider, {
            "host": saved.host if saved else "", "port": saved.port if saved else "",
            "username": saved.username if saved else "", "sender": email.sender_email,
            "greeting_timeout": f"{float(current_app.config['SMTP_GREETING_TIMEOUT']):g}",
        }, auth=saved.auth_method if saved else "password")
    else:
        title, hint = email.last_category.replace("_", " ").capitalize(), ""
    wait = None
    if email.status == QUEUED and email.last_reply_code:
        # A quota that resets: say why the outbox is waiting, and until when.
        enhanced, text = split_enhanced(email.last_reply_text or "")
        quota = quota_for(email.last_stage or "", Reply(email.last_reply_code, enhanced, text))
        wait = quota["reason"] if quota else None
    return {"category": email.last_category, "title": title, "hint": hint, "wait": wait}


def timeline(conversation: Conversation, store: Store, before: str | None = None,
             size: int = inbox.PAGE_SIZE) -> inbox.TimelinePage:
    """One page of the conversation's timeline, each email with its problem (if any) explained."""
    db = get_session()
    page = inbox.timeline(db, conversation, store, before=before, size=size)
    saved = drafts.get_saved(db, store) if any(item.email for item in page.items) else None
    for item in page.items:
        if item.email is not None:
            item.problem = _email_problem(item.email, store, saved)
    return page


def _earlier_urls(conversation: Conversation, page: inbox.TimelinePage, shown: int) -> dict:
    if page.earlier is None:
        return {"earlier_url": None, "earlier_more_url": None}
    return {"earlier_url": url_for("inbox.conversation", conversation_id=conversation.id, before=page.earlier),
            "earlier_more_url": url_for("inbox.earlier_items", conversation_id=conversation.id, before=page.earlier,
                                        shown=shown)}


def _timeline_context(conversation: Conversation, before: str | None = None, size: int = inbox.PAGE_SIZE,
                      shown_before: int = 0) -> dict:
    store = current_store()
    page = timeline(conversation, store, before=before, size=size)
    items = page.items
    shown = shown_before + len(items)
    pending = any(item.email is not None and item.email.status in PENDING for item in items)
    gone = visitor_gone(conversation)
    # Only the newest page refreshes itself; an earlier page stays as it is.
    poll = (POLL_PENDING if pending else POLL_LIVE if not gone else _reply_poll(items)) if before is None else None
    return dict(store=store, conversation=conversation, contact=_contact(conversation), items=items,
                kinds=compose.default_templates(),
                other_claims=conversations.other_claims(get_session(), conversation),
                pending=pending, gone=gone, gone_minutes=gone_minutes(), before=before,
                newest_url=url_for("inbox.conversation", conversation_id=conversation.id) if before else None,
                poll_seconds=poll, shown=shown, **_earlier_urls(conversation, page, shown))


def _reply_poll(items) -> int | None:
    """After the visitor left, keep looking (slowly) while an emailed reply may come back:
    an email was sent, and replies reach HeiChat (a reply address, or the store's mailbox over IMAP)."""
    if not any(item.email is not None and item.email.status == SENT for item in items):
        return None
    if not current_app.config.get("INBOUND_DOMAIN") and not _reads_mailbox(current_store().id):
        return None
    return int(current_app.config.get("INBOX_REPLY_POLL_SECONDS", POLL_REPLIES))


def _reads_mailbox(store_id: int) -> bool:
    fetching = get_session().exec(select(ImapFetching).where(ImapFetching.store_id == store_id)).first()
    return fetching is not None and fetching.enabled


def _conversation_context(conversation: Conversation, reply_form: ReplyForm | None = None,
                          before: str | None = None) -> dict:
    context = _timeline_context(conversation, before)
    kinds = context["kinds"]
    context.update(reply_form=reply_form or ReplyForm(formdata=None),
                   blocker=email_blocker(context["store"], context["contact"]),
                   kind_blockers={kind: email_blocker(context["store"], context["contact"], kind) for kind in kinds})
    return context


# Conversations listed beside the open one on wide screens (the full list is /inbox).
PANE_SIZE = 30


@bp.route("/<int:conversation_id>")
def conversation(conversation_id: int):
    conversation = _own_conversation(conversation_id)
    context = _conversation_context(conversation, before=request.args.get("before") or None)
    # The whole page (not an htmx swap of the conversation) has the list beside it.
    pane = None if htmx.wants_fragment() else inbox.inbox_page(get_session(), context["store"], set(), gone_minutes(),
                                                                size=PANE_SIZE)
    return htmx.page_or_fragment("inbox/conversation.html", "inbox/_conversation.html", pane=pane, **context)


@bp.route("/<int:conversation_id>/timeline/earlier")
def earlier_items(conversation_id: int):
    """htmx's "show earlier": the page of items before ``before=``, in place of the link."""
    conversation = _own_conversation(conversation_id)
    before = request.args.get("before") or None
    return htmx.fragment_only("inbox/_timeline_items.html",
                              url_for("inbox.conversation", conversation_id=conversation.id, before=before),
                              more=True, **_timeline_context(conversation, before, shown_before=shown_count(0)))


@bp.route("/<int:conversation_id>/timeline")
def conversation_timeline(conversation_id: int):
    """Polled by htmx while an email is on its way or the visitor is on the site."""
    conversation = _own_conversation(conversation_id)
    return htmx.fragment_only("inbox/_timeline.html", url_for("inbox.conversation", conversation_id=conversation.id),
                              **_timeline_context(conversation, size=shown_count(inbox.PAGE_SIZE)))


@bp.route("/unmatched", methods=("GET", "POST"))
def unmatched_replies():
    """Emails to the store's own reply address that answer none of its emails: file them by hand."""
    store = current_store()
    db = get_session()
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        email = db.get(InboundEmail, parse_id(request.form.get("email_id")) or 0)
        target = db.get(Conversation, parse_id(request.form.get("conversation_id")) or 0)
        if email is None or email.store_id != store.id or target is None or target.store_id != store.id:
            abort(404)
        try:
            unmatched.assign(db, email, target)
        except ValueError:
            flash("That email is already in a conversation.", "info")
            return redirect(url_for("inbox.unmatched_replies"))
        flash("Filed in the conversation.", "success")
        return redirect(url_for("inbox.conversation", conversation_id=target.id))
    emails = unmatched.unmatched(db, store.id)
    recent = db.exec(select(Conversation).where(Conversation.store_id == store.id)
                     .order_by(Conversation.id.desc()).limit(100)).all()
    return render_template("inbox/unmatched.html", emails=emails, conversations=recent, action_form=ActionForm())


def _own_inbound(conversation: Conversation, inbound_id: int) -> InboundEmail:
    row = get_session().get(InboundEmail, inbound_id)
    if row is None or row.store_id != conversation.store_id or row.conversation_id != conversation.id:
        abort(404)
    return row


@bp.route("/<int:conversation_id>/emails/<int:inbound_id>")
def original(conversation_id: int, inbound_id: int):
    """An email that came back, as it arrived: headers, text, and the HTML in a sandboxed frame."""
    conversation = _own_conversation(conversation_id)
    row = _own_inbound(conversation, inbound_id)
    parts = read_original(row.raw)
    return render_template("inbox/original.html", conversation=conversation, inbound=row, original=parts,
                           remote_images=request.args.get("images") == "1")


# The frame's own policy: nothing may load or run, inline styles aside (HTML mail is styled inline).
ORIGINAL_FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:{remote}; frame-ancestors 'self'"


@bp.route("/<int:conversation_id>/emails/<int:inbound_id>/html")
def original_html(conversation_id: int, inbound_id: int):
    """The sanitized HTML of an email that came back (loaded only by the sandboxed frame)."""
    conversation = _own_conversation(conversation_id)
    row = _own_inbound(conversation, inbound_id)
    parts = read_original(row.raw)
    remote = request.args.get("images") == "1"
    html = sanitized_html(parts.html, remote_images=remote) if parts.html else ""
    response = current_app.response_class(f"<!doctype html><meta charset=utf-8>{html}", mimetype="text/html")
    response.headers["Content-Security-Policy"] = ORIGINAL_FRAME_POLICY.format(remote=" https:" if remote else "")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<int:conversation_id>/reply", methods=("POST",))
def reply(conversation_id: int):
    """The merchant answers in the chat (the visitor's page picks it up)."""
    conversation = _own_conversation(conversation_id)
    form = ReplyForm()
    if form.validate_on_submit():
        conversations.add_message(get_session(), conversation, "merchant", form.body.data)
        return htmx.fragment_or_redirect(
            "inbox/_conversation.html", url_for("inbox.conversation", conversation_id=conversation.id),
            **_conversation_context(conversation, reply_form=ReplyForm(formdata=None)))
    return htmx.page_or_fragment("inbox/conversation.html", "inbox/_conversation.html",
                                 **_conversation_context(conversation, reply_form=form))


@bp.route("/<int:conversation_id>/emails/<int:email_id>/retry", methods=("POST",))
def retry(conversation_id: int, email_id: int):
    conversation = _own_conversation(conversation_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    store = current_store()
    db = get_session()
    email = db.get(OutboxEmail, email_id)
    if email is None or email.store_id != store.id or email.conversation_id != conversation.id:
        abort(404)
    try:
        retry_now(db, email.id, store.id)
        notice, level = f"“{email.subject}” is queued again.", "success"
    except SuppressedAddress as exc:
        notice, level = f"Not retried: {exc}", "error"
    return htmx.fragment_or_redirect("inbox/_timeline.html", url_for("inbox.conversation", conversation_id=conversation.id),
                                     notice=(notice, level), **_timeline_context(conversation))


# -- compose -------------------------------------------------------------------------

def _compose_values(store: Store, conversation: Conversation, form: ComposeForm) -> compose.ComposeValues:
    """The placeholders' values: this conversation's own name and messages (never another's with the same address)."""
    messages = conversations.messages(get_session(), conversation)
    return compose.ComposeValues(
        store_name=store.name, visitor_name=conversation.visitor_name,
        messages=[compose.ChatLine(m.author, m.body) for m in messages],
        order_number=form.order_number.data or "", carrier=form.carrier.data or "",
        tracking_link=form.tracking_link.data or "")


def _compose_page(problem_list=(), **context):
    problems: dict[str, list[compose.Problem]] = {}
    for problem in problem_list:
        problems.setdefault(problem.field, []).append(problem)
    return htmx.page_or_fragment("inbox/compose.html", "inbox/_compose.html", problems=problems, **context)


def _idempotency_key(store: Store, conversation: Conversation, form: ComposeForm) -> str:
    return f"compose-{store.id}-{conversation.id}-{form.draft_key.data}"


def _render_draft(store: Store, conversation: Conversation, contact, kind: str, form: ComposeForm):
    """The email the compose form describes: ``(email or None, problems, one-click unsubscribe URL)``.
    Raises ``NoPublicUrl`` for a reminder when no public address is configured."""
    footer_url = one_click_url = None
    if kind == "reminder":
        # One stored token per draft: the preview and the email sent from it carry the same link.
        footer_url, one_click_url = unsubscribe_urls(store.id, contact.email,
                                                     issued_for=_idempotency_key(store, conversation, form))
    email, problems = compose.render_email(
        kind, form.subject.data or "", form.body.data or "", _compose_values(store, conversation, form),
        max_body_chars=max_body_chars(), unsubscribe_url=footer_url)
    return email, problems, one_click_url


# The preview frame's own policy: the email's inline styles apply, nothing loads or runs.
PREVIEW_FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@bp.route("/<int:conversation_id>/compose/preview", methods=("POST",))
def compose_preview_html(conversation_id: int):
    """The HTML version of the draft being composed, for the preview's sandboxed frame
    (the compose page's form posts into it). Its own policy lets the email's inline
    styles apply, which the page's own policy forbids."""
    store = current_store()
    conversation = _own_conversation(conversation_id)
    kind = request.args.get("kind", "follow_up")
    form = ComposeForm()
    if kind not in compose.KINDS or not form.validate_on_submit() or not DRAFT_KEY.fullmatch(form.draft_key.data or ""):
        abort(400)
    try:
        email, _problems, _one_click = _render_draft(store, conversation, _contact(conversation), kind, form)
    except NoPublicUrl:
        email = None
    body = email.body_html if email is not None else "<!doctype html><meta charset=utf-8><p>Nothing to preview.</p>"
    response = current_app.response_class(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_FRAME_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<int:conversation_id>/compose", methods=("GET", "POST"))
def compose_email(conversation_id: int):
    """Write a follow-up from a template: preview it, then queue it (once per draft)."""
    store = current_store()
    conversation = _own_conversation(conversation_id)
    kind = request.args.get("kind", "follow_up")
    if kind not in compose.KINDS:
        abort(404)
    contact = _contact(conversation)
    template, _own = store_template(store, kind)
    form = ComposeForm()
    context = dict(store=store, conversation=conversation, contact=contact, kind=kind, template=template,
                   kinds=compose.default_templates(), form=form, blocker=email_blocker(store, contact, kind),
                   placeholder_help=compose.placeholder_help(kind), gone=visitor_gone(conversation), preview=None,
                   saved=drafts.get_saved(get_session(), store),
                   suppression=suppression_for(get_session(), store.id, contact.email) if contact else None,
                   send_error=None)
    if request.method == "GET":
        form.subject.data, form.body.data = template.subject, template.body
        form.draft_key.data = secrets.token_urlsafe(24)
        return _compose_page(**context)
    if not form.validate_on_submit() or not DRAFT_KEY.fullmatch(form.draft_key.data or ""):
        abort(400)
    if context["blocker"]:
        return _compose_page(**context)
    idempotency_key = _idempotency_key(store, conversation, form)
    try:
        email, problems, one_click_url = _render_draft(store, conversation, contact, kind, form)
    except NoPublicUrl as exc:  # production without WIZARD_PUBLIC_URL: no link from the Host header
        context["send_error"] = str(exc)
        return _compose_page(**context)
    context["preview"] = email
    if email is not None and request.form.get("action") == "send":
        problems = compose.prompts_left(form.body.data or "")  # a template's instruction is never sent
    if problems or request.form.get("action") != "send":
        return _compose_page(problem_list=problems, **context)
    try:
        queued = enqueue(get_session(), store=store, kind=kind, recipient=contact.email, subject=email.subject,
                         body_text=email.body_text, body_html=email.body_html,
                         idempotency_key=idempotency_key,
                         conversation=conversation, reply_to=store.reply_to, unsubscribe_url=one_click_url,
                         inbound_domain=current_app.config.get("INBOUND_DOMAIN") or None)
    except NotConfigured:
        context["send_error"] = inbox.NOT_CONFIGURED
        return _compose_page(**context)
    except (SuppressedAddress, ValueError) as exc:  # suppressed meanwhile, or a value no header can carry
        context["send_error"] = str(exc)
        return _compose_page(**context)
    if queued.subject != email.subject or queued.body_text != email.body_text:
        flash("This draft was already sent, so nothing new was queued. Open a new email to send different text.",
              "warning")
    else:
        flash(f"“{queued.subject}” is queued for {queued.recipient}. Its delivery shows below.", "success")
    return _go(url_for("inbox.conversation", conversation_id=conversation.id))


# -- templates and settings ----------------------------------------------------------

@bp.route("/templates", methods=("GET", "POST"))
def templates():
    """Each kind's wording for this store; "Reset" goes back to the default."""
    store = current_store()
    db = get_session()
    kind = request.form.get("kind", "")
    forms, problems, own = {}, {}, {}
    for each in compose.KINDS:
        template, own[each] = store_template(store, each)
        forms[each] = TemplateForm(prefix=each, formdata=None,
                                   data={"subject": template.subject, "body": template.body})
    if request.method == "POST":
        if kind not in compose.KINDS or not ActionForm().validate_on_submit():
            abort(400)
        row = _template_row(store, kind)
        if request.form.get("action") == "reset":
            if row is not None:
                db.delete(row)
                db.commit()
            flash(f"{compose.default_templates()[kind].label}: back to the default wording.", "success")
            return redirect(url_for("inbox.templates", _anchor=f"template-{kind}"))
        form = forms[kind] = TemplateForm(prefix=kind)
        subject, body = compose.normalise(form.subject.data).strip(), compose.normalise(form.body.data).strip() + "\n"
        found = compose.check_template(kind, subject, body, max_body_chars())
        if not found:
            row = row or EmailTemplate(store_id=store.id, kind=kind, subject=subject, body=body)
            row.subject, row.body, row.updated_at = subject, body, utcnow()
            db.add(row)
            db.commit()
            flash(f"{compose.default_templates()[kind].label}: saved.", "success")
            return redirect(url_for("inbox.templates", _anchor=f"template-{kind}"))
        problems[kind] = {p.field: [p] for p in found}
    return render_template("inbox/templates.html", store=store, forms=forms, problems=problems, own=own,
                           kinds=compose.default_templates(), placeholder_help=compose.placeholder_help)


@bp.route("/settings", methods=("GET", "POST"))
def settings():
    """Where replies go (Reply-To) and how fast the outbox may send."""
    store = current_store()
    form = SendSettingsForm()
    if request.method == "GET":
        form.reply_to.data = store.reply_to or ""
        form.per_minute.data = str(store.send_limit_per_minute)
        form.per_day.data = str(store.send_limit_per_day) if store.send_limit_per_day else ""
    elif form.validate_on_submit():
        store.reply_to = form.reply_to.data or None
        store.send_limit_per_minute = int(form.per_minute.data.strip())
        store.send_limit_per_day = int(form.per_day.data.strip()) if (form.per_day.data or "").strip() else None
        db = get_session()
        db.add(store)
        db.commit()
        flash("Sending settings saved.", "success")
        return redirect(url_for("inbox.settings"))
    return render_template("inbox/settings.html", store=store, form=form,
                           saved=drafts.get_saved(get_session(), store))
