"""Addresses a store must not send reminders to (hard bounces, unsubscribes).

Plain functions over a database session (no Flask). Addresses are compared
case-insensitively.
"""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wizard.models.outbox import Suppression

__all__ = ["HARD_BOUNCE", "UNSUBSCRIBED", "SUPPRESSION_REASONS", "SuppressedAddress", "suppression_for", "is_suppressed",
           "suppress"]

HARD_BOUNCE, UNSUBSCRIBED = "hard_bounce", "unsubscribed"
SUPPRESSION_REASONS = (HARD_BOUNCE, UNSUBSCRIBED)


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


def _normal_address(address: str) -> str:
    return address.strip().lower()


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
