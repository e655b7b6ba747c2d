"""The visitor's poll and presence: "anything new?" answered from one indexed
row, and "the visitor is on the page" written at most every ``WRITE_EVERY``.

Every open chat tab asks every couple of seconds, and almost every answer is
"nothing new", so that answer must cost one lookup: the conversation's row
(found by its unique token, confined to the store of the page) carries its
newest message id (kept by ``wizard.models.activity``). Presence is written
only when the stored moment is older than ``WRITE_EVERY``, so the inbox's
"visitor gone" (minutes) is never more than ``WRITE_EVERY`` late, while a
busy tab writes twice a minute instead of thirty times. The contact's "last
seen" (the contacts page) is written in the same step, never per request.
No ORM objects: these run on a plain connection, per poll.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from wizard.models import Contact, Conversation, Store, utcnow
from wizard.models.outbox import BOUNCED, SENT, OutboxEmail
from wizard.outbox.times import as_utc

WRITE_EVERY = timedelta(seconds=30)

_conversation = Conversation.__table__
_store = Store.__table__
_contact = Contact.__table__
_email = OutboxEmail.__table__


@dataclass(frozen=True)
class PollState:
    """What a poll needs to know about the visitor's conversation."""

    store_id: int
    conversation_id: int
    token: str
    contact_id: int | None
    newest_message_id: int  # 0 before the first message
    last_seen_at: datetime
    # The newest email of the conversation, delivered or not (0 before the first).
    newest_email_id: int = 0


def poll_state(connection: Connection, slug: str, tokens: Iterable[str]) -> PollState | None:
    """The conversation of the store ``slug`` among the visitor's ``tokens`` (one indexed lookup), or None."""
    wanted = [token for token in tokens if token]
    if not wanted:
        return None
    row = connection.execute(
        select(_conversation.c.store_id, _conversation.c.id, _conversation.c.token, _conversation.c.contact_id,
               _conversation.c.last_message_id, _conversation.c.last_seen_at, _conversation.c.last_email_id)
        .join(_store, _store.c.id == _conversation.c.store_id)
        .where(_conversation.c.token.in_(wanted), _store.c.slug == slug)
        .limit(1)).first()
    if row is None:
        return None
    return PollState(row.store_id, row.id, row.token, row.contact_id, row.last_message_id or 0, as_utc(row.last_seen_at),
                     row.last_email_id or 0)


def presence_due(last_seen_at: datetime, now: datetime | None = None) -> bool:
    """Whether the stored "last seen" is old enough to be written again."""
    return as_utc(last_seen_at) <= (now or utcnow()) - WRITE_EVERY


def note_presence(connection: Connection, conversation_id: int, contact_id: int | None, last_seen_at: datetime,
                  now: datetime | None = None) -> bool:
    """Record that the visitor is on the page, unless that was recorded less than
    ``WRITE_EVERY`` ago; True when written. The caller commits (or runs in autocommit)."""
    now = now or utcnow()
    if not presence_due(last_seen_at, now):
        return False
    # The condition again in SQL: two processes answering polls of one conversation write once.
    written = connection.execute(
        update(_conversation)
        .where(_conversation.c.id == conversation_id, _conversation.c.last_seen_at <= now - WRITE_EVERY)
        .values(last_seen_at=now)).rowcount
    if written and contact_id is not None:
        connection.execute(update(_contact).where(_contact.c.id == contact_id).values(last_seen_at=now))
    return bool(written)


def email_arrived(connection: Connection, state: PollState, shown_email_id: int) -> bool:
    """Whether an email newer than the page's newest (``shown_email_id``) has reached
    the visitor since (sent, or bounced after sending: what the chat page lists).
    Asked only while the conversation holds a newer email than the page shows, so
    the common poll stays one lookup; an indexed range on the conversation's emails."""
    if state.newest_email_id <= shown_email_id:
        return False
    return connection.execute(
        select(_email.c.id)
        .where(_email.c.conversation_id == state.conversation_id, _email.c.store_id == state.store_id,
               _email.c.id > shown_email_id, _email.c.status.in_((SENT, BOUNCED)))
        .limit(1)).first() is not None
