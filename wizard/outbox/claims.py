"""Claiming due emails with a lease, and renewing the lease.

On PostgreSQL the rows are picked with ``SELECT … FOR UPDATE SKIP LOCKED``,
so any number of workers on any number of machines share the queue without
claiming the same email twice. SQLite has no row locks: the claim takes the
database's write lock (``BEGIN IMMEDIATE``), which is correct but
serialises workers — on SQLite run one worker. A worker that dies leaves
its emails ``sending`` with a lease that runs out; the next claim takes
them again (at-least-once delivery).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from wizard.models import utcnow
from wizard.models.outbox import QUEUED, SENDING, OutboxEmail

__all__ = ["claim", "extend_leases"]


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
