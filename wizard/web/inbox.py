"""The merchant's inbox: conversations, one timeline of chat and email each,
chat replies, follow-up emails from templates, the templates and the sending settings.

Views stay thin: wording and rendering live in ``wizard.compose``, the queue
(idempotency, threading, suppressions) in ``wizard.outbox.queue``; emails are
delivered by the outbox worker, and the timeline polls while any is on its way.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import func
from sqlmodel import select
from wtforms import EmailField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from wizard.outbox import compose
from wizard.setup import drafts
from wizard.chat import conversations
from wizard.db import get_session
from wizard.web.forms import ActionForm, no_control_characters, no_nul, real_email
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.models.outbox import FAILED, QUEUED, SENDING, EmailTemplate, OutboxEmail
from wizard.outbox.queue import NotConfigured, SuppressedAddress, as_utc, enqueue, retry_now, suppression_for
from wizard.smtp.diagnosis import CATEGORIES, explain, quota_for
from wizard.smtp.types import Reply
from wizard.smtp.transcript import split_enhanced
from wizard.web import render, wants_fragment
from wizard.web.public_url import NoPublicUrl
from wizard.web.context import catalogue, current_store
from wizard.web.unsubscribe import unsubscribe_urls

bp = Blueprint("inbox", __name__, url_prefix="/inbox")

FILTERS = {"email": "Has an email address", "gone": "Visitor gone", "awaiting": "Awaiting your reply"}
PENDING = (QUEUED, SENDING)
DRAFT_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")
MAX_REPLY_CHARS = 2000
NOT_CONFIGURED = "Email sending is not set up yet: finish the email set-up and save your SMTP settings first."
MAX_LIST = 500
# Seconds between timeline refreshes: quick while an email is on its way, a
# little slower while the visitor is on the site (new chat messages).
POLL_PENDING, POLL_LIVE = 2, 3


@bp.before_request
@login_required
def require_member():
    current_store()  # 403 for accounts without a store


@bp.app_template_filter("inbox_time")
def inbox_time(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


# -- forms ---------------------------------------------------------------------------

def whole_number(label: str, low: int, high: int):
    """A validator: empty, or ASCII digits from ``low`` to ``high`` (never int() on unbounded input)."""
    def check(_form, field) -> None:
        text = (field.data or "").strip()
        if not text:
            return
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise ValidationError(f"Enter {label} as a whole number from {low:,} to {high:,}.")
    return check


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply in the chat", validators=[
        DataRequired("Write a reply first."),
        Length(max=MAX_REPLY_CHARS, message=f"Keep a chat message under {MAX_REPLY_CHARS:,} characters."), no_nul])


class ComposeForm(FlaskForm):
    # Made when the form is first shown; the queue sends one email per key.
    draft_key = HiddenField()
    subject = StringField("Subject")
    body = TextAreaField("Message")
    order_number = StringField("Order number")
    carrier = StringField("Carrier")
    tracking_link = StringField("Tracking link")


class TemplateForm(FlaskForm):
    """One kind's wording; the page's CSRF token is checked by ``ActionForm`` (four forms share it)."""

    class Meta:
        csrf = False

    subject = StringField("Subject")
    body = TextAreaField("Message")


class SendSettingsForm(FlaskForm):
    reply_to = EmailField("Reply-To address",
                          validators=[Optional(), Length(max=254), no_control_characters, real_email])
    per_minute = StringField("Emails per minute", validators=[
        DataRequired("Enter how many emails may go out per minute."), whole_number("the limit per minute", 1, 1000)])
    per_day = StringField("Emails per day", validators=[whole_number("the limit per day", 1, 1_000_000)])


# -- shared helpers ------------------------------------------------------------------

def max_body_chars() -> int:
    return int(current_app.config.get("MAX_EMAIL_BODY_CHARS", compose.DEFAULT_MAX_BODY_CHARS))


def gone_minutes() -> int:
    return int(current_app.config.get("VISITOR_GONE_MINUTES", 5))


def visitor_gone(conversation: Conversation, now: datetime | None = None) -> bool:
    """The visitor's page has not called in for longer than the configured minutes."""
    return as_utc(conversation.last_seen_at) < (now or utcnow()) - timedelta(minutes=gone_minutes())


def _own_conversation(conversation_id: int) -> Conversation:
    conversation = get_session().get(Conversation, conversation_id)
    if conversation is None or conversation.store_id != current_store().id:
        abort(404)
    return conversation


def _contact(conversation: Conversation) -> Contact | None:
    return get_session().get(Contact, conversation.contact_id) if conversation.contact_id else None


def _go(url: str):
    """After a successful POST: a redirect, or for htmx an HX-Location that loads the next view into place."""
    if wants_fragment():
        response = make_response("", 200)
        response.headers["HX-Location"] = json.dumps(
            {"path": url, "target": "#inbox-view", "swap": "outerHTML", "select": "#inbox-view"})
        return response
    return redirect(url)


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
    """Why no email of ``kind`` (any kind when None) can go to this visitor, or None."""
    db = get_session()
    if contact is None:
        return ("This visitor did not leave an email address in the pre-chat form, so there is nowhere to send "
                "an email. Answer in the chat while they are on your site.")
    if drafts.get_saved(db, store) is None:
        return NOT_CONFIGURED
    suppression = suppression_for(db, store.id, contact.email)
    if suppression is None:
        return None
    if suppression.reason == "hard_bounce":
        return (f"An earlier email to {contact.email} bounced: the receiving server said the address does not exist. "
                "Ask the visitor for a working address in the chat.")
    if kind == "reminder":
        return f"{contact.email} unsubscribed from reminders, so no reminder can be sent to this address."
    return None


# -- the list ------------------------------------------------------------------------

@dataclass
class InboxRow:
    conversation: Conversation
    contact: Contact | None
    last_message: ChatMessage | None
    last_email: OutboxEmail | None
    activity: datetime
    gone: bool
    # How many of the store's conversations give this conversation's address (1: only this one).
    claims: int = 1

    @property
    def awaiting(self) -> bool:
        return self.last_message is not None and self.last_message.author == "visitor"


def inbox_rows(store: Store, active: set[str]) -> list[InboxRow]:
    """The store's conversations, latest activity first, narrowed by the ``active`` filters."""
    db = get_session()
    last_message = (select(ChatMessage.conversation_id, func.max(ChatMessage.id).label("id"))
                    .group_by(ChatMessage.conversation_id).subquery())
    last_email = (select(OutboxEmail.conversation_id, func.max(OutboxEmail.id).label("id"))
                  .where(OutboxEmail.store_id == store.id).group_by(OutboxEmail.conversation_id).subquery())
    query = (
        select(Conversation, Contact, ChatMessage, OutboxEmail)
        .join(Contact, Contact.id == Conversation.contact_id, isouter=True)
        .join(last_message, last_message.c.conversation_id == Conversation.id, isouter=True)
        .join(ChatMessage, ChatMessage.id == last_message.c.id, isouter=True)
        .join(last_email, last_email.c.conversation_id == Conversation.id, isouter=True)
        .join(OutboxEmail, OutboxEmail.id == last_email.c.id, isouter=True)
        .where(Conversation.store_id == store.id)
    )
    now = utcnow()
    if "email" in active:
        query = query.where(Conversation.contact_id.is_not(None))
    if "awaiting" in active:
        query = query.where(ChatMessage.author == "visitor")
    if "gone" in active:
        query = query.where(Conversation.last_seen_at < now - timedelta(minutes=gone_minutes()))
    rows = []
    for conversation, contact, message, email in db.exec(query).all():
        moments = [as_utc(conversation.started_at)]
        moments += [as_utc(message.created_at)] if message is not None else []
        moments += [as_utc(email.created_at)] if email is not None else []
        rows.append(InboxRow(conversation, contact, message, email, max(moments), visitor_gone(conversation, now)))
    rows.sort(key=lambda row: (row.activity, row.conversation.id), reverse=True)
    rows = rows[:MAX_LIST]
    claims = conversations.address_claims(db, store.id, (row.conversation.visitor_email for row in rows))
    for row in rows:
        row.claims = claims.get(row.conversation.visitor_email or "", 1)
    return rows


def _filters_from_request() -> set[str]:
    return {name for name in FILTERS if request.args.get(name) in ("1", "on", "y")}


@bp.route("")
def index():
    store = current_store()
    active = _filters_from_request()
    return render("inbox/index.html", "inbox/_list.html", store=store, rows=inbox_rows(store, active),
                  filters=FILTERS, active=active, gone_minutes=gone_minutes(),
                  list_url=url_for("inbox.index", **{name: "1" for name in sorted(active)}))


# -- one conversation ----------------------------------------------------------------

@dataclass
class TimelineItem:
    at: datetime
    message: ChatMessage | None = None
    email: OutboxEmail | None = None
    problem: dict | None = None


def _email_problem(email: OutboxEmail, store: Store, saved) -> dict | None:
    """Title and provider-aware hint for a failed email, or for a queued one whose last try failed."""
    if email.status not in (FAILED, QUEUED) or not email.last_category or email.last_category == "ok":
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
        })
    else:
        title, hint = email.last_category.replace("_", " ").capitalize(), ""
    wait = None
    if email.status == QUEUED and email.last_reply_code:
        # A quota that resets: say why the outbox is waiting, and until when.
        enhanced, text = split_enhanced(email.last_reply_text or "")
        quota = quota_for(email.last_stage or "", Reply(email.last_reply_code, enhanced, text))
        wait = quota["reason"] if quota else None
    return {"category": email.last_category, "title": title, "hint": hint, "wait": wait}


def timeline(conversation: Conversation, store: Store) -> list[TimelineItem]:
    """Chat messages and the conversation's emails, interleaved by time."""
    db = get_session()
    messages = db.exec(select(ChatMessage).where(ChatMessage.conversation_id == conversation.id)).all()
    emails = db.exec(select(OutboxEmail).where(OutboxEmail.conversation_id == conversation.id,
                                               OutboxEmail.store_id == store.id)).all()
    items = [TimelineItem(as_utc(m.created_at), message=m) for m in messages]
    saved = drafts.get_saved(db, store) if emails else None
    items += [TimelineItem(as_utc(e.created_at), email=e, problem=_email_problem(e, store, saved)) for e in emails]
    # Emails after messages of the same instant; ids keep each kind in order.
    items.sort(key=lambda item: (item.at, item.email is not None, (item.message or item.email).id))
    return items


def _timeline_context(conversation: Conversation) -> dict:
    store = current_store()
    items = timeline(conversation, store)
    pending = any(item.email is not None and item.email.status in PENDING for item in items)
    gone = visitor_gone(conversation)
    return dict(store=store, conversation=conversation, contact=_contact(conversation), items=items,
                kinds=compose.default_templates(),
                other_claims=conversations.other_claims(get_session(), conversation),
                pending=pending, gone=gone, gone_minutes=gone_minutes(),
                poll_seconds=POLL_PENDING if pending else (None if gone else POLL_LIVE))


def _conversation_context(conversation: Conversation, reply_form: ReplyForm | None = None) -> dict:
    context = _timeline_context(conversation)
    kinds = context["kinds"]
    context.update(reply_form=reply_form or ReplyForm(formdata=None),
                   blocker=email_blocker(context["store"], context["contact"]),
                   kind_blockers={kind: email_blocker(context["store"], context["contact"], kind) for kind in kinds})
    return context


@bp.route("/<int:conversation_id>")
def conversation(conversation_id: int):
    conversation = _own_conversation(conversation_id)
    return render("inbox/conversation.html", "inbox/_conversation.html", **_conversation_context(conversation))


@bp.route("/<int:conversation_id>/timeline")
def conversation_timeline(conversation_id: int):
    """Polled by htmx while an email is on its way or the visitor is on the site."""
    conversation = _own_conversation(conversation_id)
    if not wants_fragment():
        return redirect(url_for("inbox.conversation", conversation_id=conversation.id))
    return render("inbox/_timeline.html", "inbox/_timeline.html", **_timeline_context(conversation))


@bp.route("/<int:conversation_id>/reply", methods=("POST",))
def reply(conversation_id: int):
    """The merchant answers in the chat (the visitor's page picks it up)."""
    conversation = _own_conversation(conversation_id)
    form = ReplyForm()
    if form.validate_on_submit():
        conversations.add_message(get_session(), conversation, "merchant", form.body.data)
        if not wants_fragment():
            return redirect(url_for("inbox.conversation", conversation_id=conversation.id))
        form = ReplyForm(formdata=None)
    return render("inbox/conversation.html", "inbox/_conversation.html",
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
    if wants_fragment():
        return render("inbox/_timeline.html", "inbox/_timeline.html",
                      **_timeline_context(conversation), notice=(notice, level))
    flash(notice, level)
    return redirect(url_for("inbox.conversation", conversation_id=conversation.id))


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
    return render("inbox/compose.html", "inbox/_compose.html", problems=problems, **context)


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
    idempotency_key = f"compose-{store.id}-{conversation.id}-{form.draft_key.data}"
    footer_url = one_click_url = None
    if kind == "reminder":
        # One stored token per draft: the preview and the email sent from it carry the same link.
        try:
            footer_url, one_click_url = unsubscribe_urls(store.id, contact.email, issued_for=idempotency_key)
        except NoPublicUrl as exc:  # production without WIZARD_PUBLIC_URL: no link from the Host header
            context["send_error"] = str(exc)
            return _compose_page(**context)
    email, problems = compose.render_email(
        kind, form.subject.data or "", form.body.data or "", _compose_values(store, conversation, form),
        max_body_chars=max_body_chars(), unsubscribe_url=footer_url)
    context["preview"] = email
    if problems or request.form.get("action") != "send":
        return _compose_page(problem_list=problems, **context)
    try:
        queued = enqueue(get_session(), store=store, kind=kind, recipient=contact.email, subject=email.subject,
                         body_text=email.body_text, body_html=email.body_html,
                         idempotency_key=idempotency_key,
                         conversation=conversation, reply_to=store.reply_to, unsubscribe_url=one_click_url)
    except NotConfigured:
        context["send_error"] = NOT_CONFIGURED
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
