"""The public, visitor-facing chat page of a store: the pre-chat form, then the chat.

The visitor's browser keeps the conversation's token in the session. With
JavaScript, htmx polls the message list every two seconds and sends messages
without a reload; without it, the form posts normally and a reload shows new
replies. Every request from the visitor marks the conversation as seen, which
is how the merchant's inbox knows whether the visitor is still on the site.
"""
from __future__ import annotations

import secrets

from flask import Blueprint, abort, make_response, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlmodel import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from wizard.db import get_session
from wizard.forms import VisitorForm, no_nul
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.web import render, wants_fragment

bp = Blueprint("visitor", __name__, url_prefix="/s")

SESSION_KEY = "visitor_conversations"
MAX_MESSAGE_CHARS = 2000
# htmx stops polling when a response has this status.
STOP_POLLING = 286


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
    token = session.get(SESSION_KEY, {}).get(str(store.id))
    if not token:
        return None
    return get_session().exec(
        select(Conversation).where(Conversation.token == token, Conversation.store_id == store.id)
    ).first()


def _mark_seen(conversation: Conversation) -> None:
    """The visitor is on the page right now (the inbox's "visitor gone" filter reads this)."""
    db = get_session()
    conversation.last_seen_at = utcnow()
    db.add(conversation)
    if conversation.contact_id is not None:
        contact = db.get(Contact, conversation.contact_id)
        if contact is not None:
            contact.last_seen_at = conversation.last_seen_at
            db.add(contact)
    db.commit()


def _messages(conversation: Conversation) -> list[ChatMessage]:
    return list(get_session().exec(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id).order_by(ChatMessage.id)
    ).all())


def _chat_context(store: Store, conversation: Conversation | None, **context) -> dict:
    messages = _messages(conversation) if conversation is not None else []
    context.setdefault("form", VisitorForm())
    context.setdefault("message_form", ChatMessageForm(formdata=None))
    return dict(store=store, conversation=conversation, messages=messages,
                last_id=messages[-1].id if messages else 0, **context)


def _start_conversation(store: Store, form: VisitorForm) -> Conversation | None:
    """Check the pre-chat form and open the conversation; None (errors on the form) if it is not complete."""
    db = get_session()
    email = (form.email.data or "").strip()
    name = (form.name.data or "").strip()
    errors = False
    if store.prechat_enabled and store.prechat_email_required and not email:
        form.email.errors.append("Please enter your email so we can reply after you leave.")
        errors = True
    if store.prechat_enabled and store.prechat_name_mode == "required" and not name:
        form.name.errors.append("Please enter your name.")
        errors = True
    if errors:
        return None
    contact = None
    if email:
        contact = db.exec(select(Contact).where(Contact.store_id == store.id, Contact.email == email)).first()
        if contact is None:
            contact = Contact(store_id=store.id, email=email, name=name or None)
        else:
            contact.last_seen_at = utcnow()
            contact.name = name or contact.name
        db.add(contact)
        db.flush()
    conversation = Conversation(store_id=store.id, contact_id=contact.id if contact else None,
                                token=secrets.token_urlsafe(24))
    db.add(conversation)
    db.flush()
    if (form.message.data or "").strip():
        db.add(ChatMessage(conversation_id=conversation.id, author="visitor", body=form.message.data.strip()))
    db.commit()
    tokens = dict(session.get(SESSION_KEY, {}))
    tokens[str(store.id)] = conversation.token
    session[SESSION_KEY] = tokens
    return conversation


@bp.route("/<slug>/chat", methods=("GET", "POST"))
def chat(slug: str):
    """The pre-chat form until the conversation starts, then the conversation."""
    store = _store(slug)
    form = VisitorForm()
    conversation = _visitor_conversation(store)
    if conversation is None and form.validate_on_submit():
        if _start_conversation(store, form) is not None:
            return redirect(url_for("visitor.chat", slug=store.slug))
    if conversation is not None:
        _mark_seen(conversation)
    return render_template("visitor/chat.html", **_chat_context(store, conversation, form=form))


@bp.route("/<slug>/chat/messages", methods=("GET", "POST"))
def messages(slug: str):
    """GET: the message list (polled by htmx; 204 while nothing is new). POST: the visitor writes."""
    store = _store(slug)
    conversation = _visitor_conversation(store)
    if conversation is None:
        if wants_fragment():
            return make_response("", STOP_POLLING)
        return redirect(url_for("visitor.chat", slug=store.slug))
    _mark_seen(conversation)
    if request.method == "GET":
        if not wants_fragment():
            return redirect(url_for("visitor.chat", slug=store.slug))
        context = _chat_context(store, conversation)
        if request.args.get("after", "") == str(context["last_id"]):
            return make_response("", 204)
        response = make_response(render_template("visitor/_log.html", **context))
        response.vary.add("HX-Request")
        return response
    message_form = ChatMessageForm()
    if message_form.validate_on_submit():
        db = get_session()
        db.add(ChatMessage(conversation_id=conversation.id, author="visitor", body=message_form.body.data.strip()))
        db.commit()
        if not wants_fragment():
            return redirect(url_for("visitor.chat", slug=store.slug))
        message_form = ChatMessageForm(formdata=None)
    return render("visitor/chat.html", "visitor/_conversation.html",
                  **_chat_context(store, conversation, message_form=message_form))
