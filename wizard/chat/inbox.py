"""The merchant's inbox as data: the conversation list with its filters, one
conversation's timeline, and the definitions the inbox is built on — when a
visitor counts as gone, when a conversation awaits a reply, and why no email
can go to a visitor. No Flask: the view passes the session and the settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from wizard.chat import conversations
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.models.inbound import MESSAGE, InboundEmail
from wizard.models.outbox import OutboxEmail
from wizard.outbox.queue import as_utc, suppression_for
from wizard.setup.drafts import get_saved

FILTERS = {"email": "Has an email address", "gone": "Visitor gone", "awaiting": "Awaiting your reply"}
MAX_LIST = 500
NOT_CONFIGURED = "Email sending is not set up yet: finish the email set-up and save your SMTP settings first."


def visitor_gone(conversation: Conversation, gone_minutes: int, now: datetime | None = None) -> bool:
    """The visitor's page has not called in for longer than ``gone_minutes``."""
    return as_utc(conversation.last_seen_at) < (now or utcnow()) - timedelta(minutes=gone_minutes)


def awaiting_reply(last_message: ChatMessage | None) -> bool:
    """A conversation awaits the merchant's reply when the visitor spoke last."""
    return last_message is not None and last_message.author == "visitor"


def email_blocker(session: Session, store: Store, contact: Contact | None, kind: str | None = None) -> str | None:
    """Why no email of ``kind`` (any kind when None) can go to this visitor, or None.

    The same rules ``outbox.queue.enqueue`` enforces (settings saved, the address
    not suppressed), said before the merchant writes the email."""
    if contact is None:
        return ("This visitor did not leave an email address in the pre-chat form, so there is nowhere to send "
                "an email. Answer in the chat while they are on your site.")
    if get_saved(session, store) is None:
        return NOT_CONFIGURED
    suppression = suppression_for(session, store.id, contact.email)
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
        return awaiting_reply(self.last_message)


def inbox_rows(session: Session, store: Store, active: set[str], gone_minutes: int) -> list[InboxRow]:
    """The store's conversations, latest activity first, narrowed by the ``active`` filters."""
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
        query = query.where(Conversation.last_seen_at < now - timedelta(minutes=gone_minutes))
    rows = []
    for conversation, contact, message, email in session.exec(query).all():
        moments = [as_utc(conversation.started_at)]
        moments += [as_utc(message.created_at)] if message is not None else []
        moments += [as_utc(email.created_at)] if email is not None else []
        rows.append(InboxRow(conversation, contact, message, email, max(moments),
                             visitor_gone(conversation, gone_minutes, now)))
    rows.sort(key=lambda row: (row.activity, row.conversation.id), reverse=True)
    rows = rows[:MAX_LIST]
    claims = conversations.address_claims(session, store.id, (row.conversation.visitor_email for row in rows))
    for row in rows:
        row.claims = claims.get(row.conversation.visitor_email or "", 1)
    return rows


# -- one conversation ----------------------------------------------------------------

@dataclass
class TimelineItem:
    at: datetime
    message: ChatMessage | None = None
    email: OutboxEmail | None = None
    problem: dict | None = None
    # An auto-reply or a bounce that came back (a note), or — with ``message`` —
    # the email the visitor's reply came in.
    inbound: InboundEmail | None = None

    @property
    def order(self) -> tuple:
        # Same instant: chat messages, then emails, then notes; ids keep each kind in order.
        kind = 0 if self.message is not None else 1 if self.email is not None else 2
        return (self.at, kind, (self.message or self.email or self.inbound).id)


def timeline(session: Session, conversation: Conversation, store: Store) -> list[TimelineItem]:
    """Chat messages (the visitor's emailed replies among them), the conversation's
    emails, and the auto-replies and bounces that came back, interleaved by time."""
    messages = session.exec(select(ChatMessage).where(ChatMessage.conversation_id == conversation.id)).all()
    emails = session.exec(select(OutboxEmail).where(OutboxEmail.conversation_id == conversation.id,
                                                    OutboxEmail.store_id == store.id)).all()
    inbound = {row.id: row for row in session.exec(select(InboundEmail).where(
        InboundEmail.conversation_id == conversation.id, InboundEmail.store_id == store.id)).all()}
    items = [TimelineItem(as_utc(m.created_at), message=m, inbound=inbound.pop(m.inbound_email_id, None))
             for m in messages]
    items += [TimelineItem(as_utc(e.created_at), email=e) for e in emails]
    items += [TimelineItem(as_utc(row.received_at), inbound=row) for row in inbound.values() if row.kind != MESSAGE]
    items.sort(key=lambda item: item.order)
    return items
