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

This module writes emails into the queue (``enqueue``, ``retry_now``) and
names the whole queue's API in one place; the parts live in
``wizard.outbox.claims`` (claiming, leases), ``wizard.outbox.outcomes``
(outcomes, retries, back-off), ``wizard.outbox.suppressions`` and
``wizard.outbox.times`` (``as_utc``).

Every time is timezone-aware UTC. SQLite hands datetimes back without a
zone; ``as_utc`` restores it.
"""
from __future__ import annotations

from email.utils import make_msgid

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wizard.models import Conversation, SmtpSettings, Store, utcnow
from wizard.models.inbound import MESSAGE, InboundEmail
from wizard.models.outbox import CANCELLED, FAILED, QUEUED, SENDING, SENT, OutboxEmail
from wizard.outbox.claims import claim, extend_leases
from wizard.outbox.messages import build_message, message_bytes
from wizard.outbox.outcomes import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DeliveryFailure,
    backoff_seconds,
    hold,
    is_hard_bounce,
    mark_failed,
    mark_retry,
    mark_sent,
    mark_sent_many,
    release,
    reschedule,
    sent_since,
)
from wizard.outbox.reply_addresses import reply_address
from wizard.outbox.suppressions import HARD_BOUNCE, SuppressedAddress, is_suppressed, suppress, suppression_for
from wizard.outbox.times import as_utc

__all__ = [
    "CANCELLED", "FAILED", "QUEUED", "SENDING", "SENT", "KINDS", "REMINDER",
    "DEFAULT_BACKOFF_BASE", "DEFAULT_BACKOFF_CAP", "DEFAULT_MAX_ATTEMPTS",
    "NotConfigured", "SuppressedAddress", "DeliveryFailure",
    "enqueue", "claim", "extend_leases", "release", "reschedule", "hold", "mark_sent", "mark_sent_many",
    "mark_retry", "mark_failed",
    "retry_now", "suppress", "is_suppressed", "suppression_for", "is_hard_bounce", "backoff_seconds", "as_utc",
    "sent_since",
]

REMINDER = "reminder"
KINDS = ("follow_up", "support_reply", "order_update", REMINDER)
DEFAULT_MAX_ATTEMPTS = 6
# References keeps the thread's root and its latest ids; mail clients need
# no more, and an endless thread must not grow an endless header.
MAX_REFERENCES = 20


class NotConfigured(Exception):
    """The store has no saved SMTP settings, so it cannot send email yet."""


def _by_key(session: Session, idempotency_key: str) -> OutboxEmail | None:
    return session.exec(select(OutboxEmail).where(OutboxEmail.idempotency_key == idempotency_key)).first()


def _thread_headers(session: Session, conversation_id: int | None) -> tuple[str | None, str]:
    """In-Reply-To and References for the next email of a conversation: it
    answers the visitor's latest emailed reply when that came after our latest
    email, else our latest email."""
    if conversation_id is None:
        return None, ""
    previous = session.exec(
        select(OutboxEmail).where(OutboxEmail.conversation_id == conversation_id).order_by(OutboxEmail.id.desc()).limit(1)
    ).first()
    reply = session.exec(
        select(InboundEmail).where(InboundEmail.conversation_id == conversation_id, InboundEmail.kind == MESSAGE)
        .order_by(InboundEmail.id.desc()).limit(1)
    ).first()
    chain = (previous.references.split() + [previous.message_id]) if previous is not None else []
    answered = previous.message_id if previous is not None else None
    if reply is not None and (previous is None or as_utc(reply.received_at) >= as_utc(previous.created_at)):
        answered = f"<{reply.message_id}>"
        chain.append(answered)
    if answered is None:
        return None, ""
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return answered, " ".join(chain)


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
    inbound_domain: str | None = None,
) -> OutboxEmail:
    """Queue one email for delivery and return its row (committed; no SMTP here).

    The sender is the store's saved SMTP sender; ``reply_to`` defaults to the
    store's Reply-To — or, with an ``inbound_domain``, is the conversation's
    reply address (``reply+TOKEN@`` that domain), so answers come back. The Message-ID is fixed now. In a ``conversation``, the
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
    suppressed = suppression_for(session, store.id, recipient)
    # A hard bounce stops every kind (the address does not exist); an unsubscribe stops reminders.
    if suppressed is not None and (kind == REMINDER or suppressed.reason == HARD_BOUNCE):
        raise SuppressedAddress(recipient, suppressed.reason)
    conversation_id = getattr(conversation, "id", conversation)
    if inbound_domain and conversation_id is not None:
        row = conversation if isinstance(conversation, Conversation) else session.get(Conversation, conversation_id)
        reply_to = reply_address(session, row, inbound_domain)
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
