"""Tables of the outbox: queued emails, suppressed addresses, per-store templates."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from wizard.models import utcnow

QUEUED, SENDING, SENT, FAILED, CANCELLED = "queued", "sending", "sent", "failed", "cancelled"
# Sent, then bounced back later by email (a delivery status notification).
BOUNCED = "bounced"


def _moment(nullable: bool = False, index: bool = False):
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class OutboxEmail(SQLModel, table=True):
    """One email to deliver. Written before any SMTP happens; the Message-ID is
    fixed at enqueue time, so a retry after a crash is recognisable."""

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversation.id", index=True)
    kind: str = Field(max_length=20)  # follow_up | support_reply | order_update | reminder
    # One per compose draft: a double click or a resubmitted form sends once.
    idempotency_key: str = Field(max_length=100, unique=True)
    message_id: str = Field(max_length=300, unique=True)
    in_reply_to: Optional[str] = Field(default=None, max_length=300)
    references: str = Field(default="", sa_column=Column(Text, nullable=False))
    sender_name: str = Field(max_length=120)
    sender_email: str = Field(max_length=254)
    reply_to: Optional[str] = Field(default=None, max_length=254)
    recipient: str = Field(max_length=254)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    # One-click unsubscribe target (RFC 8058), for conversion reminders.
    unsubscribe_url: Optional[str] = Field(default=None, sa_column=Column(Text))
    status: str = Field(default=QUEUED, max_length=10)
    attempts: int = 0
    max_attempts: int = 6
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_moment())
    lease_until: Optional[datetime] = Field(default=None, sa_column=_moment(nullable=True))
    claimed_by: Optional[str] = Field(default=None, max_length=100)
    last_stage: Optional[str] = Field(default=None, max_length=20)
    last_category: Optional[str] = Field(default=None, max_length=40)
    last_reply_code: Optional[int] = None
    last_reply_text: Optional[str] = Field(default=None, sa_column=Column(Text))
    queue_id: Optional[str] = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_moment(index=True))
    sent_at: Optional[datetime] = Field(default=None, sa_column=_moment(nullable=True))


class Suppression(SQLModel, table=True):
    """An address a store must not send reminders to (hard bounce, unsubscribe)."""

    __table_args__ = (UniqueConstraint("store_id", "email"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    email: str = Field(max_length=254)
    reason: str = Field(max_length=20)  # hard_bounce | unsubscribed
    created_at: datetime = Field(default_factory=utcnow, sa_column=_moment())


class UnsubscribeToken(SQLModel, table=True):
    """An unsubscribe link: an opaque random token and the address it suppresses.

    The token says nothing by itself (no store id, no address); this row
    decides what it unsubscribes and until when. ``issued_for`` ties a token
    to what it was made for (a compose draft), so rendering the same draft
    twice gives the same link."""

    id: Optional[int] = Field(default=None, primary_key=True)
    token: str = Field(max_length=512, unique=True, index=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    email: str = Field(max_length=254)
    issued_for: Optional[str] = Field(default=None, max_length=120, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_moment())
    expires_at: datetime = Field(sa_column=_moment())


class EmailTemplate(SQLModel, table=True):
    """A store's own wording for one kind of follow-up (defaults live in the catalogue)."""

    __table_args__ = (UniqueConstraint("store_id", "kind"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    kind: str = Field(max_length=20)
    subject: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_moment())
