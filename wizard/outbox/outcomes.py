"""Recording what happened to a claimed email: sent, retry later, failed, put back.

A worker only changes an email it still holds (status ``sending``, claimed
by it), so a worker whose lease ran out cannot overwrite what the email's
new holder recorded — except "sent": the server took the message, so it is
sent, whoever holds the row now. Every function commits.
"""
from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import bindparam, func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from wizard.models import utcnow
from wizard.models.outbox import FAILED, QUEUED, SENDING, SENT, OutboxEmail
from wizard.outbox.suppressions import suppress
from wizard.outbox.times import as_utc

if TYPE_CHECKING:
    from wizard.smtp.types import Reply

__all__ = [
    "DEFAULT_BACKOFF_BASE", "DEFAULT_BACKOFF_CAP", "DeliveryFailure",
    "mark_sent", "mark_sent_many", "backoff_seconds", "mark_retry", "mark_failed", "is_hard_bounce",
    "reschedule", "hold", "release", "sent_since",
]

DEFAULT_BACKOFF_BASE = 30.0  # seconds before the first retry (before jitter)
DEFAULT_BACKOFF_CAP = 3600.0  # longest wait between two attempts


class DeliveryFailure(Protocol):
    """What went wrong with one attempt (``wizard.outbox.sender.SendFailure``)."""

    stage: str
    category: str
    reply: Reply | None
    detail: str


def _apply(session: Session, email: OutboxEmail, values: dict, *, held_only: bool = True) -> bool:
    """Write ``values`` to ``email`` (and the object) if the worker still holds it; commits."""
    conditions = [OutboxEmail.id == email.id]
    if held_only:
        conditions += [OutboxEmail.status == SENDING, OutboxEmail.claimed_by == email.claimed_by]
    result = session.execute(
        update(OutboxEmail).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != 1:
        return False
    for name, value in values.items():
        # Reflect the stored state without marking the object dirty (a later
        # flush must not write it again, unguarded).
        set_committed_value(email, name, value)
    return True


def _failure_values(failure: DeliveryFailure) -> dict:
    reply = failure.reply
    text = reply.text if reply is not None else failure.detail
    if reply is not None and reply.enhanced:
        text = f"{reply.enhanced} {text}"
    return {
        "last_stage": failure.stage,
        "last_category": failure.category,
        "last_reply_code": reply.code if reply is not None else None,
        "last_reply_text": text or None,
    }


def _sent_values(reply: Reply | None, queue_id: str | None, sent_at: datetime) -> dict:
    return {
        "status": SENT, "sent_at": sent_at, "lease_until": None,
        "last_stage": "done", "last_category": "ok",
        "last_reply_code": reply.code if reply is not None else None,
        "last_reply_text": reply.text if reply is not None else None,
        "queue_id": (queue_id or "")[:200] or None,
    }


def mark_sent(session: Session, email: OutboxEmail, reply: Reply | None, queue_id: str | None,
              now: datetime | None = None) -> bool:
    """Record that the server accepted ``email`` (commits).

    Recorded even when this worker's lease had run out meanwhile: the server
    took the message, so it is sent, whoever holds the row now.
    """
    return _apply(session, email, _sent_values(reply, queue_id, now or utcnow()), held_only=False)


def mark_sent_many(session: Session, outcomes: Iterable[tuple[int, Reply | None, str | None, datetime]]) -> None:
    """``mark_sent`` for several emails ``(email_id, reply, queue_id, sent_at)`` in one commit.

    Only the database is updated (the worker's hot path), not objects in memory.
    """
    rows = []
    for email_id, reply, queue_id, sent_at in outcomes:
        values = _sent_values(reply, queue_id, sent_at)
        rows.append({"row_id": email_id, **{f"new_{name}": value for name, value in values.items()}})
    if not rows:
        return
    # One statement executed for all the rows (executemany): a worker records
    # hundreds of these a second.
    table = OutboxEmail.__table__
    columns = [key[len("new_"):] for key in rows[0] if key != "row_id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values({column: bindparam(f"new_{column}") for column in columns})
    )
    session.execute(statement, rows)
    session.commit()


def backoff_seconds(attempts: int, base: float = DEFAULT_BACKOFF_BASE, cap: float = DEFAULT_BACKOFF_CAP,
                    rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` tries: doubling, jittered, capped.

    The jitter (×0.5–1.5) spreads out emails that failed together, so a
    server that comes back is not hit by all of them in the same second.
    """
    exponent = max(0, attempts - 1)
    delay = base * (2 ** min(exponent, 32)) * (rng or random).uniform(0.5, 1.5)
    return min(cap, delay)


def mark_retry(session: Session, email: OutboxEmail, failure: DeliveryFailure, *,
               base_seconds: float = DEFAULT_BACKOFF_BASE, cap_seconds: float = DEFAULT_BACKOFF_CAP,
               max_attempts: int | None = None, now: datetime | None = None,
               rng: random.Random | None = None) -> bool:
    """A temporary failure (4xx, dropped connection, timeout): try again later (commits).

    After ``max_attempts`` (default: the email's own) the email is failed
    instead, with this failure's category. Returns False when the worker no
    longer held the email (nothing was changed).
    """
    limit = max_attempts if max_attempts is not None else email.max_attempts
    values = _failure_values(failure)
    values["lease_until"] = None
    wait = getattr(failure, "retry_after", None)
    if wait:
        # A sending quota that resets (a daily cap, a rate limit): wait for the
        # reset. The email stays queued, whatever its count of tries.
        values["status"] = QUEUED
        values["next_attempt_at"] = (now or utcnow()) + timedelta(seconds=float(wait))
    elif email.attempts >= limit:
        values["status"] = FAILED
    else:
        delay = backoff_seconds(email.attempts, base_seconds, cap_seconds, rng)
        values["status"] = QUEUED
        values["next_attempt_at"] = (now or utcnow()) + timedelta(seconds=delay)
    return _apply(session, email, values)


def mark_failed(session: Session, email: OutboxEmail, failure: DeliveryFailure) -> bool:
    """A permanent failure (a 5xx reply): failed, with its category (commits).

    A 5xx at the recipient stage is a hard bounce: the address is also
    suppressed for the store's reminders — unless its enhanced code is 5.7.x,
    which speaks of the sender's permissions (relaying denied), not of the
    address. Returns False when the worker no longer held the email.
    """
    values = _failure_values(failure)
    values.update(status=FAILED, lease_until=None)
    changed = _apply(session, email, values)
    if changed and is_hard_bounce(failure):
        suppress(session, email.store_id, email.recipient, "hard_bounce")
    return changed


def is_hard_bounce(failure: DeliveryFailure) -> bool:
    """True when the server refused the recipient address itself, for good."""
    reply = failure.reply
    return (failure.stage == "recipient" and reply is not None and 500 <= reply.code < 600
            and not (reply.enhanced or "").startswith("5.7."))


def reschedule(session: Session, email: OutboxEmail, at: datetime) -> bool:
    """Put a claimed email back for later without counting an attempt (rate limits; commits)."""
    values = {"status": QUEUED, "next_attempt_at": at, "lease_until": None, "attempts": max(0, email.attempts - 1)}
    return _apply(session, email, values)


def hold(session: Session, email: OutboxEmail, until: datetime, category: str) -> bool:
    """Keep a claimed email queued until ``until`` because of ``category`` (shown
    with the email), without counting an attempt: nothing was tried (commits)."""
    values = {"status": QUEUED, "next_attempt_at": until, "lease_until": None,
              "attempts": max(0, email.attempts - 1), "last_stage": "auth", "last_category": category,
              "last_reply_code": None, "last_reply_text": None}
    return _apply(session, email, values)


def release(session: Session, emails: Iterable[OutboxEmail]) -> int:
    """Hand claimed but unsent emails back, due now (a worker stopping; commits)."""
    now = utcnow()
    return sum(reschedule(session, email, now) for email in emails)


def sent_since(session: Session, store_id: int, since: datetime) -> tuple[int, datetime | None]:
    """How many emails the store sent since ``since``, and the earliest of them."""
    count, earliest = session.exec(
        select(func.count(OutboxEmail.id), func.min(OutboxEmail.sent_at))
        .where(OutboxEmail.store_id == store_id, OutboxEmail.status == SENT, OutboxEmail.sent_at >= since)
    ).one()
    return int(count or 0), as_utc(earliest)
