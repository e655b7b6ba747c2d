"""Conversations: starting one from the pre-chat form, messages, presence, and
which conversations claim the same email address.

A visitor types a name and an address; neither is verified. So each
conversation keeps the name and address it was started with, and a visitor's
submission never changes an existing contact: the contact (the address book
entry the inbox and the outbox use to reach an address) is created once, with
the first name given, and later conversations that give the same address are
linked to it but keep their own name. ``address_claims`` lets the inbox show
the merchant when several conversations claim one address.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from wizard.chat import presence
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.models.outbox import BOUNCED, SENT, OutboxEmail
from wizard.outbox.times import as_utc

EMAIL_REQUIRED = "Please enter your email so we can reply after you leave."
NAME_REQUIRED = "Please enter your name."


@dataclass(frozen=True)
class PreChat:
    """What the visitor typed into the pre-chat form (already shape-checked by the form)."""

    name: str = ""
    email: str = ""
    message: str = ""


def prechat_problems(store: Store, entry: PreChat) -> dict[str, str]:
    """What the store's pre-chat settings require and the entry lacks, per field."""
    problems = {}
    if store.prechat_enabled and store.prechat_email_required and not entry.email.strip():
        problems["email"] = EMAIL_REQUIRED
    if store.prechat_enabled and store.prechat_name_mode == "required" and not entry.name.strip():
        problems["name"] = NAME_REQUIRED
    return problems


def _contact_for(session: Session, store: Store, email: str, name: str) -> Contact:
    """The store's contact for ``email``, created with ``name`` if there is none; an existing one is left as it is."""
    statement = select(Contact).where(Contact.store_id == store.id, Contact.email == email)
    contact = session.exec(statement).first()
    if contact is not None:
        return contact
    contact = Contact(store_id=store.id, email=email, name=name or None)
    session.add(contact)
    try:
        session.flush()
    except IntegrityError:
        # Two first conversations with this address at once: use the other one's.
        session.rollback()
        contact = session.exec(statement).first()
        if contact is None:
            raise
    return contact


def start_conversation(session: Session, store: Store, entry: PreChat) -> Conversation:
    """Open a conversation with the name and address the visitor gave (commits)."""
    email, name = entry.email.strip(), entry.name.strip()
    contact = _contact_for(session, store, email, name) if email else None
    conversation = Conversation(store_id=store.id, contact_id=contact.id if contact else None,
                                visitor_name=name or None, visitor_email=email or None,
                                token=secrets.token_urlsafe(24))
    session.add(conversation)
    session.flush()
    if entry.message.strip():
        session.add(ChatMessage(conversation_id=conversation.id, author="visitor", body=entry.message.strip()))
    session.commit()
    return conversation


def by_token(session: Session, store: Store, token: str | None) -> Conversation | None:
    """The store's conversation a visitor's browser holds the token of."""
    if not token:
        return None
    return session.exec(
        select(Conversation).where(Conversation.token == token, Conversation.store_id == store.id)).first()


def mark_seen(session: Session, conversation: Conversation) -> None:
    """The visitor is on the page right now (the inbox's "visitor gone" filter reads this).

    Written at most every ``presence.WRITE_EVERY`` (commits when it writes)."""
    now = utcnow()
    if not presence.presence_due(conversation.last_seen_at, now):
        return
    if presence.note_presence(session.connection(), conversation.id, conversation.contact_id,
                              conversation.last_seen_at, now):
        # Written above: the loaded row says so too, without a second UPDATE at the next flush.
        set_committed_value(conversation, "last_seen_at", now)
    session.commit()


def messages(session: Session, conversation: Conversation) -> list[ChatMessage]:
    """The conversation's own messages, oldest first."""
    return list(session.exec(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id).order_by(ChatMessage.id)).all())


def emails_of(session: Session, conversation: Conversation) -> list[OutboxEmail]:
    """Every email of the conversation, whatever its state, oldest first."""
    return list(session.exec(
        select(OutboxEmail).where(OutboxEmail.conversation_id == conversation.id,
                                  OutboxEmail.store_id == conversation.store_id).order_by(OutboxEmail.id)).all())


def exchange(chat: list[ChatMessage], emails: list[OutboxEmail]) -> list[ChatMessage | OutboxEmail]:
    """What the visitor sees back on the chat page, by time: the conversation's
    ``chat`` messages (their own emailed replies among them) and, of its
    ``emails`` (``emails_of``), the ones they received (sent, or bounced after)."""
    received = [email for email in emails if email.status in (SENT, BOUNCED)]
    entries: list = [*chat, *received]
    entries.sort(key=lambda entry: (as_utc(entry.sent_at if isinstance(entry, OutboxEmail) else entry.created_at)
                                    or as_utc(entry.created_at), isinstance(entry, OutboxEmail), entry.id))
    return entries


def add_message(session: Session, conversation: Conversation, author: str, body: str) -> ChatMessage:
    """Append a message by ``author`` (visitor | merchant) (commits)."""
    message = ChatMessage(conversation_id=conversation.id, author=author, body=body.strip())
    session.add(message)
    session.commit()
    return message


def address_claims(session: Session, store_id: int, emails: Iterable[str | None]) -> dict[str, int]:
    """How many of the store's conversations give each of ``emails``."""
    wanted = sorted({email for email in emails if email})
    if not wanted:
        return {}
    rows = session.exec(
        select(Conversation.visitor_email, func.count(Conversation.id))
        .where(Conversation.store_id == store_id, Conversation.visitor_email.in_(wanted))
        .group_by(Conversation.visitor_email)).all()
    return {email: count for email, count in rows}


def other_claims(session: Session, conversation: Conversation) -> list[Conversation]:
    """The store's other conversations that give the same address, newest first."""
    if not conversation.visitor_email:
        return []
    return list(session.exec(
        select(Conversation).where(Conversation.store_id == conversation.store_id,
                                   Conversation.visitor_email == conversation.visitor_email,
                                   Conversation.id != conversation.id)
        .order_by(Conversation.id.desc())).all())
