"""The public, visitor-facing chat page of a store: the pre-chat form, then the chat.

The visitor's browser keeps the conversation's token in the session. With
JavaScript, htmx polls the message list (every two seconds while the chat is
active; ``static/chat-poll.js`` backs off while it is idle or the tab is
hidden) and sends messages without a reload; without it, the form posts
normally and a reload shows new replies. Every request from the visitor marks
the conversation as seen (written at most every 30 s, ``wizard.chat.presence``),
which is how the merchant's inbox knows whether the visitor is still on the
site. A poll that finds nothing new is answered from one indexed row, with no
ORM objects, forms or templates.
Starting conversations and writing are rate-limited per client address and
per store; over a limit the chat says how long to wait and keeps what was
typed. What a conversation is and does lives in ``wizard.chat``.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from wizard.chat import conversations, presence
from wizard.db import get_engine, get_session
from wizard.models import Conversation, Store
from wizard.models.outbox import OutboxEmail
from wizard.web import htmx
from wizard.web.forms import VisitorForm, no_nul
from wizard.web.rate_limits import client_address, wait_before

bp = Blueprint("visitor", __name__, url_prefix="/s")

SESSION_KEY = "visitor_conversations"
MAX_MESSAGE_CHARS = 2000
# htmx stops polling when a response has this status.
STOP_POLLING = 286
TOO_MANY = 429
# Seconds between polls, read by static/chat-poll.js: while the chat is active, once it has
# been quiet for IDLE_AFTER, and while the tab is hidden. Kept well under the inbox's
# "visitor gone" minutes (presence is written on a poll, at most every 30 s).
POLL_ACTIVE, POLL_IDLE, POLL_HIDDEN, IDLE_AFTER = 2, 15, 30, 60
POLLING = {"poll_active": POLL_ACTIVE, "poll_idle": POLL_IDLE, "poll_hidden": POLL_HIDDEN, "idle_after": IDLE_AFTER}


class ChatMessageForm(FlaskForm):
    body = TextAreaField("Your message", validators=[
        DataRequired("Write a message first."),
        Length(max=MAX_MESSAGE_CHARS, message=f"Keep a message under {MAX_MESSAGE_CHARS:,} characters."),
        no_nul,
    ])


def _store(slug: str) -> Store:
    store = get_session().exec(select(Store).where(Store.slug == slug)).first()
    if store is None:
        abort(404)
    return store


def _visitor_conversation(store: Store) -> Conversation | None:
    return conversations.by_token(get_session(), store, session.get(SESSION_KEY, {}).get(str(store.id)))


def _remember(store: Store, conversation: Conversation) -> None:
    tokens = dict(session.get(SESSION_KEY, {}))
    tokens[str(store.id)] = conversation.token
    session[SESSION_KEY] = tokens


def _chat_context(store: Store, conversation: Conversation | None, **context) -> dict:
    messages = conversations.messages(get_session(), conversation) if conversation is not None else []
    emails = conversations.emails_of(get_session(), conversation) if conversation is not None else []
    context.setdefault("form", VisitorForm())
    context.setdefault("message_form", ChatMessageForm(formdata=None))
    context.setdefault("slow_down", None)
    entries = conversations.exchange(messages, emails)
    listed = [entry.id for entry in entries if isinstance(entry, OutboxEmail)]
    watch_from, watched = presence.email_watch(emails, listed)
    return dict(store=store, conversation=conversation, messages=messages, entries=entries,
                last_id=messages[-1].id if messages else 0, email_watch=f"{watch_from}-{watched}", polling=POLLING,
                **context)


def _wait(action: str, store: Store) -> int | None:
    """Seconds to wait before ``action`` is allowed again for this client and store, or None (counted)."""
    return wait_before(action, address=client_address(), store=str(store.id))


def _slowed_down(response, wait: int):
    """The in-chat "slow down" answer: a 429 page without JavaScript, a swappable 200 fragment for htmx."""
    response = htmx.refused_for_plain(response, TOO_MANY)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.route("/<slug>/chat", methods=("GET", "POST"))
def chat(slug: str):
    """The pre-chat form until the conversation starts, then the conversation."""
    store = _store(slug)
    form = VisitorForm()
    conversation = _visitor_conversation(store)
    if conversation is None and form.validate_on_submit():
        entry = conversations.PreChat(form.name.data or "", form.email.data or "", form.message.data or "")
        problems = conversations.prechat_problems(store, entry)
        for field, text in problems.items():
            form[field].errors.append(text)
        if not problems:
            wait = _wait("chat_start", store)
            if wait is not None:
                page = make_response(render_template("visitor/chat.html",
                                                     **_chat_context(store, None, form=form, slow_down=wait)))
                return _slowed_down(page, wait)
            _remember(store, conversations.start_conversation(get_session(), store, entry))
            return redirect(url_for("visitor.chat", slug=store.slug))
    if conversation is not None:
        conversations.mark_seen(get_session(), conversation)
    return render_template("visitor/chat.html", **_chat_context(store, conversation, form=form))


@bp.route("/<slug>/chat/messages", methods=("GET", "POST"))
def messages(slug: str):
    """GET: the message list (polled by htmx; 204 while nothing is new). POST: the visitor writes."""
    if request.method == "GET":
        return htmx.respond(fragment=lambda: _poll(slug),
                            page=lambda: redirect(url_for("visitor.chat", slug=_store(slug).slug)))
    store = _store(slug)
    conversation = _visitor_conversation(store)
    chat_url = url_for("visitor.chat", slug=store.slug)
    if conversation is None:
        return htmx.empty_or_redirect(chat_url, status=STOP_POLLING)
    conversations.mark_seen(get_session(), conversation)
    message_form = ChatMessageForm()
    if message_form.validate_on_submit():
        wait = _wait("chat_message", store)
        if wait is not None:
            # The form keeps the typed text; the visitor sends it again after the wait.
            return _slowed_down(htmx.page_or_fragment(
                "visitor/chat.html", "visitor/_conversation.html",
                **_chat_context(store, conversation, message_form=message_form, slow_down=wait)), wait)
        conversations.add_message(get_session(), conversation, "visitor", message_form.body.data)
        return htmx.fragment_or_redirect(
            "visitor/_conversation.html", chat_url,
            **_chat_context(store, conversation, message_form=ChatMessageForm(formdata=None)))
    return htmx.page_or_fragment("visitor/chat.html", "visitor/_conversation.html",
                                 **_chat_context(store, conversation, message_form=message_form))


def _autocommit_engine():
    """The app's engine without transactions: a poll's one SELECT (and its rare UPDATE)
    needs no BEGIN and no ROLLBACK round trips."""
    engine = current_app.extensions.get("db_autocommit_engine")
    if engine is None:
        engine = current_app.extensions["db_autocommit_engine"] = get_engine().execution_options(
            isolation_level="AUTOCOMMIT")
    return engine


# ``emails=FROM-LISTED`` of the polled list (``presence.email_watch``).
EMAIL_WATCH = re.compile(r"([0-9]{1,18})-([0-9]{1,9})")


def _email_arrived(state: presence.PollState) -> bool:
    """An email reached the visitor that the page does not list yet (``emails=``).
    A poll without a well-formed ``emails=`` asks about chat messages only."""
    watch = EMAIL_WATCH.fullmatch(request.args.get("emails", ""))
    if watch is None or state.newest_email_id < int(watch.group(1)):
        return False  # the common poll: no second query
    with _autocommit_engine().connect() as connection:
        return presence.email_arrived(connection, state, int(watch.group(1)), int(watch.group(2)))


def _poll(slug: str):
    """The polled message list: 204 while nothing is new since the id the page has,
    answered from the conversation's row alone; the list itself only when it changed."""
    tokens = session.get(SESSION_KEY, {})
    with _autocommit_engine().connect() as connection:
        state = presence.poll_state(connection, slug, tokens.values())
    if state is not None and tokens.get(str(state.store_id)) != state.token:
        state = None  # the visitor's token for another store, under this slug: not theirs here
    if state is not None and presence.presence_due(state.last_seen_at):
        # Both rows in one transaction: one write lock and one commit (SQLite serialises writers).
        with get_engine().begin() as connection:
            presence.note_presence(connection, state.conversation_id, state.contact_id, state.last_seen_at)
    if state is None:
        _store(slug)  # 404 for an unknown store
        return make_response("", STOP_POLLING)
    if request.args.get("after", "") == str(state.newest_message_id) and not _email_arrived(state):
        return make_response("", 204)
    store = _store(slug)
    conversation = _visitor_conversation(store)
    if conversation is None:
        return make_response("", STOP_POLLING)
    return render_template("visitor/_log.html", **_chat_context(store, conversation))
