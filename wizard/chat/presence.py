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

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from wizard.models import Contact, Conversation, Store, utcnow
from wizard.models.outbox import BOUNCED, FAILED, QUEUED, SENDING, SENT, OutboxEmail
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


def email_arrived(connection: Connection, state: PollState, watch_from: int, listed: int) -> bool:
    """Whether an email reached the visitor that the page does not list yet.

    The page watches the conversation's emails from ``watch_from`` on (its
    oldest email still on its way when it was drawn, else one past the newest)
    and lists ``listed`` of those. Until an email at or past ``watch_from``
    exists, nothing is asked (the common poll stays one lookup); then one
    indexed count says whether more of them reached the visitor (sent, or
    bounced after sending) than the page lists — in whatever order they went."""
    if state.newest_email_id < watch_from:
        return False
    delivered = connection.execute(
        select(func.count())
        .select_from(_email)
        .where(_email.c.conversation_id == state.conversation_id, _email.c.store_id == state.store_id,
               _email.c.id >= watch_from, _email.c.status.in_((SENT, BOUNCED)))).scalar_one()
    return delivered > listed


def email_watch(emails: Iterable[OutboxEmail], listed_ids: Iterable[int]) -> tuple[int, int]:
    """What a drawn page watches (``email_arrived``): from its oldest email still
    on its way (else one past its newest), and how many of those it lists.
    A failed email is watched too: the merchant may retry it (same id); only
    a cancelled one is final."""
    emails = list(emails)
    waiting = [email.id for email in emails if email.status in (QUEUED, SENDING, FAILED)]
    watch_from = min(waiting) if waiting else max((email.id for email in emails), default=0) + 1
    return watch_from, sum(1 for email_id in listed_ids if email_id >= watch_from)
