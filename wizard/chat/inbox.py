"""The merchant's inbox as data: the conversation list with its filters, one
conversation's timeline, and the definitions the inbox is built on — when a
visitor counts as gone, when a conversation awaits a reply, and why no email
can go to a visitor. No Flask: the view passes the session and the settings.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, true, tuple_
from sqlmodel import Session, select

from wizard.chat import conversations
from wizard.models import ChatMessage, Contact, Conversation, Store, utcnow
from wizard.models.inbound import MESSAGE, InboundEmail
from wizard.models.outbox import OutboxEmail
from wizard.outbox.queue import as_utc, suppression_for
from wizard.setup.drafts import get_saved

FILTERS = {"email": "Has an email address", "gone": "Visitor gone", "awaiting": "Awaiting your reply"}
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

PAGE_SIZE = 50
# Longest excerpt of the last message a row shows (cut in SQL: a page never reads whole bodies).
EXCERPT_CHARS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class InboxRow:
    """One conversation in the list, read from its summary row (no ORM objects)."""

    conversation_id: int
    visitor_name: str | None
    visitor_email: str | None
    activity: datetime
    gone: bool
    last_author: str | None
    last_excerpt: str | None
    last_email_status: str | None
    # How many of the store's conversations give this conversation's address (1: only this one).
    claims: int = 1

    @property
    def awaiting(self) -> bool:
        return self.last_author == "visitor"


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    # Where the next (older) page starts, or None on the last page.
    older: str | None
    # Conversations in the store, per filter alone, and matching all active filters.
    counts: dict[str, int]
    # Changes whenever anything this page shows changes: the open list asks with it.
    stamp: str


def encode_cursor(moment: datetime, row_id: int, kind: int | None = None) -> str:
    """A keyset position for a URL: microseconds since 1970, (kind,) id."""
    micros = (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)
    return "-".join(str(part) for part in (micros, kind, row_id) if part is not None)


def decode_cursor(text: str | None, parts: int = 2) -> tuple | None:
    """The position ``encode_cursor`` wrote, or None for anything else (a hand-edited URL shows the first page)."""
    pieces = (text or "").split("-")
    if len(pieces) != parts or not all(piece.isdigit() and len(piece) <= 20 for piece in pieces):
        return None
    numbers = [int(piece) for piece in pieces]
    return (_EPOCH + timedelta(microseconds=numbers[0]), *numbers[1:])


def _conditions(active: set[str], gone_cutoff: datetime) -> dict[str, object]:
    return {"email": Conversation.contact_id.is_not(None), "awaiting": Conversation.last_author == "visitor",
            "gone": Conversation.last_seen_at < gone_cutoff}


def filter_counts(session: Session, store_id: int, active: set[str], gone_cutoff: datetime) -> dict[str, int]:
    """How many of the store's conversations each filter keeps, and all of ``active`` together (one aggregate)."""
    conditions = _conditions(active, gone_cutoff)
    chosen = [conditions[name] for name in sorted(active)]
    columns = [func.count().label("all")]
    columns += [func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(name)
                for name, condition in conditions.items()]
    columns.append(func.coalesce(func.sum(case((and_(*chosen), 1), else_=0)), 0).label("matching") if chosen
                   else func.count().label("matching"))
    row = session.exec(select(*columns).where(Conversation.store_id == store_id)).one()
    return {key: int(value) for key, value in row._mapping.items()}


def inbox_page(session: Session, store: Store, active: set[str], gone_minutes: int, older: str | None = None,
               size: int = PAGE_SIZE, now: datetime | None = None) -> InboxPage:
    """One page of the store's conversations, latest activity first, narrowed by the ``active``
    filters and starting after the ``older`` cursor; sorted, filtered and limited in SQL on
    ``ix_conversation_store_activity``."""
    now = now or utcnow()
    gone_cutoff = now - timedelta(minutes=gone_minutes)
    conditions = _conditions(active, gone_cutoff)
    query = (
        select(Conversation.id, Conversation.visitor_name, Conversation.visitor_email, Conversation.last_activity_at,
               Conversation.last_seen_at, Conversation.last_author,
               func.substr(ChatMessage.body, 1, EXCERPT_CHARS).label("excerpt"), OutboxEmail.status)
        .join(ChatMessage, ChatMessage.id == Conversation.last_message_id, isouter=True)
        .join(OutboxEmail, and_(OutboxEmail.id == Conversation.last_email_id, OutboxEmail.store_id == store.id),
              isouter=True)
        .where(Conversation.store_id == store.id, *(conditions[name] for name in sorted(active)))
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(size + 1)
    )
    position = decode_cursor(older)
    if position is not None:
        query = query.where(tuple_(Conversation.last_activity_at, Conversation.id) < tuple_(*position))
    found = session.exec(query).all()
    rows = [InboxRow(row.id, row.visitor_name, row.visitor_email, as_utc(row.last_activity_at),
                     as_utc(row.last_seen_at) < gone_cutoff, row.last_author, row.excerpt, row.status)
            for row in found[:size]]
    next_page = encode_cursor(rows[-1].activity, rows[-1].conversation_id) if len(found) > size else None
    counts = filter_counts(session, store.id, active, gone_cutoff)
    stamp = hashlib.sha256(repr((rows, next_page, counts)).encode()).hexdigest()[:20]
    return InboxPage(rows, next_page, counts, stamp)


def with_claims(session: Session, store_id: int, page: InboxPage) -> InboxPage:
    """``page`` with each row's count of conversations giving the same address (one indexed query)."""
    claims = conversations.address_claims(session, store_id, (row.visitor_email for row in page.rows))
    rows = [replace(row, claims=claims.get(row.visitor_email or "", 1)) for row in page.rows]
    return replace(page, rows=rows)


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


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    # Where the page of earlier items ends (``before=``), or None when this page starts the conversation.
    earlier: str | None


# The timeline's kinds, in the order they take at the same instant (``TimelineItem.order``).
MESSAGE_KIND, EMAIL_KIND, NOTE_KIND = 0, 1, 2


def _before(moment_column, id_column, kind: int, position: tuple | None):
    """Rows of ``kind`` that come before ``position`` (at, kind, id) in the timeline's order."""
    if position is None:
        return true()
    at, position_kind, position_id = position
    if kind < position_kind:
        return moment_column <= at
    if kind > position_kind:
        return moment_column < at
    return tuple_(moment_column, id_column) < tuple_(at, position_id)


def timeline(session: Session, conversation: Conversation, store: Store, before: str | None = None,
             size: int = PAGE_SIZE) -> TimelinePage:
    """The newest ``size`` items before the ``before`` cursor, oldest first: chat messages (the
    visitor's emailed replies among them), the conversation's emails, and the auto-replies and
    bounces that came back, interleaved by time. Each kind is read newest first through an
    index and limited in SQL, so a long conversation costs one page."""
    position = decode_cursor(before, parts=3)
    messages = session.exec(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id,
                                  _before(ChatMessage.created_at, ChatMessage.id, MESSAGE_KIND, position))
        .order_by(ChatMessage.created_at.desc(), ChatMessage.id.desc()).limit(size + 1)).all()
    emails = session.exec(
        select(OutboxEmail).where(OutboxEmail.conversation_id == conversation.id, OutboxEmail.store_id == store.id,
                                  _before(OutboxEmail.created_at, OutboxEmail.id, EMAIL_KIND, position))
        .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc()).limit(size + 1)).all()
    notes = session.exec(
        select(InboundEmail).where(InboundEmail.conversation_id == conversation.id, InboundEmail.store_id == store.id,
                                   InboundEmail.kind != MESSAGE,
                                   _before(InboundEmail.received_at, InboundEmail.id, NOTE_KIND, position))
        .order_by(InboundEmail.received_at.desc(), InboundEmail.id.desc()).limit(size + 1)).all()
    replied = [m.inbound_email_id for m in messages if m.inbound_email_id is not None]
    originals = {row.id: row for row in session.exec(select(InboundEmail).where(
        InboundEmail.id.in_(replied), InboundEmail.store_id == store.id))} if replied else {}
    items = [TimelineItem(as_utc(m.created_at), message=m, inbound=originals.get(m.inbound_email_id)) for m in messages]
    items += [TimelineItem(as_utc(e.created_at), email=e) for e in emails]
    items += [TimelineItem(as_utc(row.received_at), inbound=row) for row in notes]
    items.sort(key=lambda item: item.order, reverse=True)
    shown = items[:size]
    earlier = None
    if len(items) > size:
        oldest = shown[-1]
        earlier = encode_cursor(oldest.at, oldest.order[2], oldest.order[1])
    return TimelinePage(list(reversed(shown)), earlier)
