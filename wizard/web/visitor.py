"""The public, visitor-facing chat page of a store, with its pre-chat form."""
from __future__ import annotations

import secrets

from flask import Blueprint, abort, redirect, render_template, session, url_for
from sqlmodel import select

from wizard.db import get_session
from wizard.forms import VisitorForm
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow

bp = Blueprint("visitor", __name__, url_prefix="/s")

SESSION_KEY = "visitor_conversations"


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


@bp.route("/<slug>/chat", methods=("GET", "POST"))
def chat(slug: str):
    store = _store(slug)
    db = get_session()
    form = VisitorForm()
    conversation = _visitor_conversation(store)
    if form.validate_on_submit() and conversation is None:
        errors = False
        email = (form.email.data or "").strip()
        name = (form.name.data or "").strip()
        asks_email = store.prechat_enabled and store.prechat_email_required
        if asks_email and not email:
            form.email.errors.append("Please enter your email so we can reply after you leave.")
            errors = True
        if store.prechat_enabled and store.prechat_name_mode == "required" and not name:
            form.name.errors.append("Please enter your name.")
            errors = True
        if not errors:
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
            return redirect(url_for("visitor.chat", slug=store.slug))
    messages = []
    if conversation is not None:
        messages = db.exec(
            select(ChatMessage).where(ChatMessage.conversation_id == conversation.id).order_by(ChatMessage.id)
        ).all()
    return render_template("visitor/chat.html", store=store, form=form, conversation=conversation, messages=messages)
