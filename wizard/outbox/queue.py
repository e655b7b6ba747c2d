"""The outbox queue: enqueue, claim with a lease, and record each outcome.

Plain functions over a database session (no Flask), shared by the web
views, the workers and the tests.

- ``enqueue`` writes the email to the database before any SMTP happens, with
  its Message-ID fixed and its threading headers worked out. It is
  idempotent per ``idempotency_key``: the unique constraint decides, so two
  requests racing with the same key still queue one email.
- ``claim`` hands a worker a batch of due emails with a lease. On PostgreSQL
  the rows are picked with ``SELECT … FOR UPDATE SKIP LOCKED``, so any number
  of workers on any number of machines share the queue without claiming the
  same email twice. SQLite has no row locks: the claim takes the database's
  write lock (``BEGIN IMMEDIATE``), which is correct but serialises workers —
  on SQLite run one worker.
- A worker that dies leaves its emails ``sending`` with a lease that runs
  out; the next claim takes them again (at-least-once delivery; the
  Message-ID stays the same, so a repeat is recognisable).
- ``mark_sent`` / ``mark_retry`` / ``mark_failed`` record the outcome. A
  worker only changes an email it still holds, so a worker whose lease ran
  out cannot overwrite what the email's new holder recorded.

Every time is timezone-aware UTC. SQLite hands datetimes back without a
zone; ``as_utc`` restores it.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import make_msgid
from typing import TYPE_CHECKING, Iterable, Protocol

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from wizard.models import SmtpSettings, Store, utcnow
from wizard.models.outbox import CANCELLED, FAILED, QUEUED, SENDING, SENT, OutboxEmail, Suppression

if TYPE_CHECKING:
    from wizard.smtp.types import Reply

__all__ = [
    "CANCELLED", "FAILED", "QUEUED", "SENDING", "SENT", "KINDS", "REMINDER",
    "NotConfigured", "SuppressedAddress", "DeliveryFailure",
    "enqueue", "claim", "extend_leases", "release", "reschedule", "mark_sent", "mark_sent_many",
    "mark_retry", "mark_failed",
    "retry_now", "suppress", "is_suppressed", "suppression_for", "is_hard_bounce", "backoff_seconds", "as_utc",
    "sent_since",
]

REMINDER = "reminder"
KINDS = ("follow_up", "support_reply", "order_update", REMINDER)
SUPPRESSION_REASONS = ("hard_bounce", "unsubscribed")
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF_BASE = 30.0  # seconds before the first retry (before jitter)
DEFAULT_BACKOFF_CAP = 3600.0  # longest wait between two attempts
# References keeps the thread's root and its latest ids; mail clients need
# no more, and an endless thread must not grow an endless header.
MAX_REFERENCES = 20


class NotConfigured(Exception):
    """The store has no saved SMTP settings, so it cannot send email yet."""


class SuppressedAddress(Exception):
    """The recipient must not get this kind of email (hard bounce, unsubscribe)."""

    MESSAGES = {
        "hard_bounce": "{email} bounced permanently before, so reminders are not sent to it.",
        "unsubscribed": "{email} unsubscribed, so reminders are not sent to it.",
    }

    def __init__(self, email: str, reason: str):
        self.email = email
        self.reason = reason
        super().__init__(self.MESSAGES.get(reason, "{email} is suppressed ({reason}).").format(email=email,
                                                                                              reason=reason))


class DeliveryFailure(Protocol):
    """What went wrong with one attempt (``wizard.outbox.sender.SendFailure``)."""

    stage: str
    category: str
    reply: "Reply | None"
    detail: str


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as an aware UTC datetime (SQLite returns naive ones, meant as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _normal_address(address: str) -> str:
    return address.strip().lower()


# -- suppressions --------------------------------------------------------------------

def suppression_for(session: Session, store_id: int, email: str) -> Suppression | None:
    """The store's suppression of ``email`` (case-insensitive), or None."""
    return session.exec(
        select(Suppression).where(Suppression.store_id == store_id, Suppression.email == _normal_address(email))
    ).first()


def is_suppressed(session: Session, store_id: int, email: str) -> bool:
    """True when the store must not send reminders to ``email``."""
    return suppression_for(session, store_id, email) is not None


def suppress(session: Session, store_id: int, email: str, reason: str) -> Suppression:
    """Record that ``email`` must get no more reminders from the store (commits).

    ``reason`` is ``hard_bounce`` or ``unsubscribed``. Suppressing an address
    twice keeps the first record (and its reason).
    """
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    existing = suppression_for(session, store_id, email)
    if existing is not None:
        return existing
    row = Suppression(store_id=store_id, email=_normal_address(email), reason=reason)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # Another request suppressed it at the same moment: keep theirs.
        session.rollback()
        existing = suppression_for(session, store_id, email)
        if existing is None:
            raise
        return existing
    return row


# -- enqueue ------------------------------------------------------------------------

def _by_key(session: Session, idempotency_key: str) -> OutboxEmail | None:
    return session.exec(select(OutboxEmail).where(OutboxEmail.idempotency_key == idempotency_key)).first()


def _thread_headers(session: Session, conversation_id: int | None) -> tuple[str | None, str]:
    """In-Reply-To and References for the next email of a conversation."""
    if conversation_id is None:
        return None, ""
    previous = session.exec(
        select(OutboxEmail).where(OutboxEmail.conversation_id == conversation_id).order_by(OutboxEmail.id.desc())
    ).first()
    if previous is None:
        return None, ""
    chain = previous.references.split() + [previous.message_id]
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return previous.message_id, " ".join(chain)


def enqueue(
    session: Session,
    *,
    store: Store,
    kind: str,
    recipient: str,
    subject: str,
    body_text: str,
    body_html: str,
    idempotency_key: str,
    conversation=None,
    reply_to: str | None = None,
    unsubscribe_url: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> OutboxEmail:
    """Queue one email for delivery and return its row (committed; no SMTP here).

    The sender is the store's saved SMTP sender; ``reply_to`` defaults to the
    store's Reply-To. The Message-ID is fixed now. In a ``conversation``, the
    email answers the conversation's latest earlier email (In-Reply-To, and
    References: that email's References plus its Message-ID).

    Calling it again with the same ``idempotency_key`` returns the email
    already queued and queues nothing — a double click sends once. The
    session is committed (and, when a concurrent request won the race for
    the key, rolled back before the winner's row is returned).

    Raises ``NotConfigured`` without saved SMTP settings, ``SuppressedAddress``
    for a reminder to a suppressed address, and ``ValueError`` for an unknown
    kind or a value that cannot go into a header (CR/LF, a malformed address).
    """
    from wizard.outbox.messages import build_message, message_bytes

    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return _same_store(existing, store)
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}; one of {', '.join(KINDS)}")
    saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store.id)).first()
    if saved is None:
        raise NotConfigured(f"store {store.id} has no saved SMTP settings")
    recipient = recipient.strip()
    if any("\x00" in (value or "") for value in (recipient, subject, body_text, body_html, reply_to, unsubscribe_url)):
        raise ValueError("the email contains a NUL character")
    if kind == REMINDER:
        suppressed = suppression_for(session, store.id, recipient)
        if suppressed is not None:
            raise SuppressedAddress(recipient, suppressed.reason)
    conversation_id = getattr(conversation, "id", conversation)
    in_reply_to, references = _thread_headers(session, conversation_id)
    sender_domain = saved.sender_email.rpartition("@")[2] or None
    email = OutboxEmail(
        store_id=store.id,
        conversation_id=conversation_id,
        kind=kind,
        idempotency_key=idempotency_key,
        message_id=make_msgid(domain=sender_domain),
        in_reply_to=in_reply_to,
        references=references,
        sender_name=saved.sender_name,
        sender_email=saved.sender_email,
        reply_to=(reply_to if reply_to is not None else store.reply_to) or None,
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        unsubscribe_url=unsubscribe_url or None,
        max_attempts=max_attempts,
    )
    # Building the message now refuses what could never be sent (a header
    # with CR/LF, an address without a domain) before anything is stored.
    message_bytes(build_message(email))
    session.add(email)
    try:
        session.commit()
    except IntegrityError:
        # The same key committed first by a concurrent request (the unique
        # constraint is the arbiter): that one is the email.
        session.rollback()
        existing = _by_key(session, idempotency_key)
        if existing is None:
            raise
        return _same_store(existing, store)
    return email


def _same_store(email: OutboxEmail, store: Store) -> OutboxEmail:
    # Keys are unique across the table; another store's email is never handed out.
    if email.store_id != store.id:
        raise ValueError("this idempotency key belongs to another store's email")
    return email


# -- claiming -----------------------------------------------------------------------

def _due(now: datetime):
    return or_(
        and_(OutboxEmail.status == QUEUED, OutboxEmail.next_attempt_at <= now),
        # A worker died (or stalled) holding it: its lease ran out.
        and_(OutboxEmail.status == SENDING, OutboxEmail.lease_until < now),
    )


def claim(session: Session, worker_id: str, limit: int, lease_seconds: float,
          now: datetime | None = None) -> list[OutboxEmail]:
    """Take up to ``limit`` due emails for ``worker_id`` and commit the claim.

    Due: queued with ``next_attempt_at`` reached, or ``sending`` with an
    expired lease. Each claimed email is ``sending``, leased until now +
    ``lease_seconds``, ``claimed_by`` the worker, its attempts counted up.
    Call it on a session with no pending changes (the claim commits).
    """
    now = now or utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # Take the write lock before reading, so two SQLite workers cannot
        # read the same due rows; the busy timeout makes the second one wait.
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")
    query = (
        select(OutboxEmail)
        .where(_due(now))
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    if dialect == "postgresql":
        # Rows another worker is claiming right now are skipped, not waited
        # for: workers never block each other and never claim the same row.
        query = query.with_for_update(skip_locked=True)
    try:
        emails = list(session.exec(query).all())
        if emails:
            # One statement for the whole batch (a worker claims often).
            session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id.in_([email.id for email in emails]))
                .values(status=SENDING, lease_until=lease_until, claimed_by=worker_id,
                        attempts=OutboxEmail.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            for email in emails:
                for name, value in (("status", SENDING), ("lease_until", lease_until), ("claimed_by", worker_id),
                                    ("attempts", email.attempts + 1)):
                    set_committed_value(email, name, value)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return emails


def extend_leases(session: Session, worker_id: str, ids: Iterable[int], lease_seconds: float,
                  now: datetime | None = None) -> set[int]:
    """Renew the worker's lease on ``ids``; returns the ids it still holds.

    An id missing from the result was taken over (the lease had run out and
    another worker claimed it) or finished: this worker must not send it.
    """
    ids = list(ids)
    if not ids:
        return set()
    until = (now or utcnow()) + timedelta(seconds=lease_seconds)
    held = session.exec(
        select(OutboxEmail.id).where(OutboxEmail.id.in_(ids), OutboxEmail.status == SENDING,
                                     OutboxEmail.claimed_by == worker_id)
    ).all()
    if held:
        session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id.in_(held), OutboxEmail.status == SENDING, OutboxEmail.claimed_by == worker_id)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return set(held)


# -- outcomes -----------------------------------------------------------------------

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


def _sent_values(reply: "Reply | None", queue_id: str | None, sent_at: datetime) -> dict:
    return {
        "status": SENT, "sent_at": sent_at, "lease_until": None,
        "last_stage": "done", "last_category": "ok",
        "last_reply_code": reply.code if reply is not None else None,
        "last_reply_text": reply.text if reply is not None else None,
        "queue_id": (queue_id or "")[:200] or None,
    }


def mark_sent(session: Session, email: OutboxEmail, reply: "Reply | None", queue_id: str | None,
              now: datetime | None = None) -> bool:
    """Record that the server accepted ``email`` (commits).

    Recorded even when this worker's lease had run out meanwhile: the server
    took the message, so it is sent, whoever holds the row now.
    """
    return _apply(session, email, _sent_values(reply, queue_id, now or utcnow()), held_only=False)


def mark_sent_many(session: Session, outcomes: Iterable[tuple[int, "Reply | None", str | None, datetime]]) -> None:
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


def retry_now(session: Session, email_id: int, store_id: int) -> OutboxEmail | None:
    """The timeline's retry button: a failed email is queued again, due now (commits).

    Attempts start from zero again. A queued email waiting for its next try
    is made due now. Sent, sending or cancelled emails are left as they are.
    Returns the email (None when the store has no such email). A reminder to
    an address suppressed meanwhile raises ``SuppressedAddress``.
    """
    email = session.exec(
        select(OutboxEmail).where(OutboxEmail.id == email_id, OutboxEmail.store_id == store_id)
    ).first()
    if email is None:
        return None
    if email.status not in (FAILED, QUEUED):
        return email
    if email.kind == REMINDER:
        suppressed = suppression_for(session, store_id, email.recipient)
        if suppressed is not None:
            raise SuppressedAddress(email.recipient, suppressed.reason)
    values = {"status": QUEUED, "next_attempt_at": utcnow(), "attempts": 0, "lease_until": None,
              "claimed_by": None}
    # Guarded: a worker may have claimed a queued email since it was read.
    session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == email.id, OutboxEmail.status.in_((FAILED, QUEUED)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    session.refresh(email)
    return email


def sent_since(session: Session, store_id: int, since: datetime) -> tuple[int, datetime | None]:
    """How many emails the store sent since ``since``, and the earliest of them."""
    count, earliest = session.exec(
        select(func.count(OutboxEmail.id), func.min(OutboxEmail.sent_at))
        .where(OutboxEmail.store_id == store_id, OutboxEmail.status == SENT, OutboxEmail.sent_at >= since)
    ).one()
    return int(count or 0), as_utc(earliest)
