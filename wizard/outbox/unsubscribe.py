"""Unsubscribe tokens: opaque random strings, each stored with what it suppresses.

A reminder's footer link and its ``List-Unsubscribe`` header carry a token
of 32 random bytes. The token itself says nothing — no store id, no address
to read or forge; the ``UnsubscribeToken`` row says which store and which
address it unsubscribes, and until when. A token lives for
``TOKEN_LIFETIME`` (a year: far longer than anyone acts on a reminder, and
well past the 30 days laws such as CAN-SPAM require), then the link says it
has expired. Tokens of the old, readable scheme are never decoded: the
migration stored a row for each one found in a queued or sent reminder, so
those links work through this table too, and expire the same way.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wizard.models import utcnow
from wizard.models.outbox import UnsubscribeToken
from wizard.outbox.queue import as_utc

TOKEN_LIFETIME = timedelta(days=365)
# Expired rows are kept a while, so an old link says "expired" rather than "not found".
KEEP_EXPIRED = timedelta(days=90)
TOKEN_BYTES = 32
# What a token in a URL may look like: new tokens are 43 URL-safe characters;
# old ones, mapped by the migration, are longer and contain a dot.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_.-]{20,512}")


def issue_token(session: Session, store_id: int, email: str, issued_for: str | None = None,
                now: datetime | None = None) -> UnsubscribeToken:
    """A stored token that unsubscribes ``email`` from the store (commits).

    With ``issued_for`` (e.g. a compose draft's idempotency key), issuing
    again for the same thing returns the same token, so a previewed and then
    sent draft carries one link."""
    now = now or utcnow()
    if issued_for is not None:
        existing = _issued_for(session, issued_for)
        if existing is not None:
            return existing
    session.exec(delete(UnsubscribeToken).where(UnsubscribeToken.expires_at < now - KEEP_EXPIRED))
    row = UnsubscribeToken(token=secrets.token_urlsafe(TOKEN_BYTES), store_id=store_id, email=email.strip().lower(),
                           issued_for=issued_for, created_at=now, expires_at=now + TOKEN_LIFETIME)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        # The same draft rendered twice at the same moment: keep the first.
        session.rollback()
        existing = _issued_for(session, issued_for) if issued_for is not None else None
        if existing is None:
            raise
        return existing
    return row


def _issued_for(session: Session, issued_for: str) -> UnsubscribeToken | None:
    return session.exec(select(UnsubscribeToken).where(UnsubscribeToken.issued_for == issued_for)).first()


def find_token(session: Session, token: str) -> UnsubscribeToken | None:
    """The row behind ``token`` (expired or not), or None for anything unknown or malformed."""
    if not TOKEN_SHAPE.fullmatch(token or ""):
        return None
    return session.exec(select(UnsubscribeToken).where(UnsubscribeToken.token == token)).first()


def is_expired(row: UnsubscribeToken, now: datetime | None = None) -> bool:
    """True once the link no longer unsubscribes."""
    return as_utc(row.expires_at) <= (now or utcnow())
