"""A store's sending limits: per minute (the store's setting) and per rolling day
(the store's setting, else the provider's usual cap from the catalogue).

An email over a limit is put back for when the window has room, without
counting an attempt (``wizard.outbox.worker``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from wizard.catalogue import Catalogue
from wizard.models import SmtpSettings, Store, utcnow
from wizard.outbox.outcomes import sent_since

__all__ = ["SendWindow", "daily_limit", "send_window"]

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def daily_limit(store: Store, saved: SmtpSettings, catalogue: Catalogue) -> int:
    """The store's sending cap per rolling 24 hours (0: none).

    The store's own setting wins; otherwise the provider's usual cap (lower
    for a free consumer address such as @gmail.com).
    """
    if store.send_limit_per_day is not None:
        return max(0, store.send_limit_per_day)
    preset = catalogue.get(saved.provider)
    if preset is None:
        return 0
    domain = saved.sender_email.rpartition("@")[2].lower()
    if preset.free_mail_daily_limit and domain in catalogue.free_mail_domains:
        return preset.free_mail_daily_limit
    return preset.daily_limit


@dataclass
class SendWindow:
    """How many more emails a store may send now, and when room opens up."""

    remaining: int | None  # None: no limit
    reopens_at: datetime | None = None

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


def send_window(session: Session, store: Store, saved: SmtpSettings, catalogue: Catalogue) -> SendWindow:
    """Room left under the store's per-minute and per-day limits."""
    now = utcnow()
    window = SendWindow(None)
    limits = ((store.send_limit_per_minute or 0, MINUTE), (daily_limit(store, saved, catalogue), DAY))
    for limit, span in limits:
        if limit <= 0:
            continue
        count, earliest = sent_since(session, store.id, now - span)
        remaining = max(0, limit - count)
        if window.remaining is None or remaining < window.remaining:
            window.remaining = remaining
            # Room opens when the oldest send in the window leaves it.
            window.reopens_at = (earliest or now) + span
    return window
