"""Tables of inbound mail: replies, auto-replies and bounces that came back, and each store's IMAP fetching."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from wizard.models import utcnow

# What an inbound message is (``wizard.inbound.parse``).
MESSAGE, AUTO_REPLY, BOUNCE = "message", "auto_reply", "bounce"


def _moment(nullable: bool = False, index: bool = False):
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


class InboundEmail(SQLModel, table=True):
    """One message that came back: written before it is acknowledged (SMTP 250,
    the IMAP fetcher's last UID), once per store and Message-ID.

    ``conversation_id`` is None for a reply-address message nothing matched:
    the owner sees those in the unmatched list and may assign them."""

    __table_args__ = (UniqueConstraint("store_id", "message_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    conversation_id: Optional[int] = Field(default=None, foreign_key="conversation.id", index=True)
    # The email of ours it answers or bounces (In-Reply-To / References, or the DSN's returned headers).
    outbox_email_id: Optional[int] = Field(default=None, foreign_key="outboxemail.id", index=True)
    message_id: str = Field(max_length=300)
    kind: str = Field(max_length=12)  # message | auto_reply | bounce
    source: str = Field(max_length=6)  # smtp | imap
    matched_by: str = Field(default="", max_length=12)  # token | references | assigned | "" (unmatched)
    sender: Optional[str] = Field(default=None, max_length=254)
    subject: Optional[str] = Field(default=None, sa_column=Column(Text))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The message as received, for "view the original" (sanitized when shown).
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    bounce_recipient: Optional[str] = Field(default=None, max_length=254)
    bounce_status: Optional[str] = Field(default=None, max_length=20)
    bounce_action: Optional[str] = Field(default=None, max_length=10)  # failed | delayed
    bounce_permanent: Optional[bool] = None
    received_at: datetime = Field(default_factory=utcnow, sa_column=_moment(index=True))


class ImapFetching(SQLModel, table=True):
    """"Bring replies into HeiChat" for one store: the merchant's own mailbox over IMAP.

    The login is the sending one (password or sign-in), sealed and bound to
    this IMAP server like the SMTP password is to its server. ``uidvalidity``
    and ``last_uid`` say what was read; ``last_uid`` advances only after the
    messages up to it are committed."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", unique=True, index=True)
    enabled: bool = False
    host: str = Field(default="", max_length=255)
    port: int = 993
    security: str = Field(default="ssl", max_length=10)  # ssl | starttls
    username: str = Field(default="", max_length=254)
    auth_method: str = Field(default="password", max_length=10)  # password | xoauth2
    password_encrypted: Optional[str] = Field(default=None, sa_column=Column(Text))
    password_binding: Optional[str] = Field(default=None, max_length=64)
    oauth_grant_id: Optional[int] = Field(default=None, foreign_key="oauthgrant.id")
    folder: str = Field(default="INBOX", max_length=200)
    uidvalidity: Optional[int] = Field(default=None, sa_column=Column(BigInteger))
    last_uid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # The last connection test or fetch: ok, or the diagnosis category.
    last_category: Optional[str] = Field(default=None, max_length=40)
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text))
    last_checked_at: Optional[datetime] = Field(default=None, sa_column=_moment(nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_moment())
