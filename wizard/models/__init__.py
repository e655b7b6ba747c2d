"""Database tables (SQLModel).

Table models hold data only; validation lives in forms and in the plain
``wizard.smtp.validation`` module, because ``table=True`` models skip
Pydantic validation.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Optional

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store(SQLModel, table=True):
    """A merchant's store: every setting belongs to one."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    slug: str = Field(max_length=80, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    # Step 1: the visitor-facing pre-chat form.
    prechat_enabled: bool = False
    prechat_email_required: bool = True
    prechat_name_mode: str = Field(default="optional", max_length=10)  # off | optional | required
    prechat_intro: str = Field(default="Leave your email so we can reply even after you leave.", max_length=300)
    # Step 2: the chosen provider (a catalogue key) and its extra input.
    provider: Optional[str] = Field(default=None, max_length=20)
    ses_region: Optional[str] = Field(default=None, max_length=30)
    # Follow-up emails: where replies go, and how fast the outbox may send
    # (free mailboxes cap a day's sending; None: the provider's usual cap).
    reply_to: Optional[str] = Field(default=None, max_length=254)
    # The store's own reply address token (reply+TOKEN@ the inbound domain), for
    # mail that belongs to no conversation: it lands in the unmatched list.
    reply_token: Optional[str] = Field(default=None, max_length=64, unique=True, index=True)
    send_limit_per_minute: int = 30
    send_limit_per_day: Optional[int] = None


class Member(SQLModel, table=True):
    """Someone who signs in. Store members have a store; the ``support``
    role (platform staff, a later issue) has none."""

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=300)
    store_id: Optional[int] = Field(default=None, foreign_key="store.id", index=True)
    role: str = Field(default="owner", max_length=10)  # owner | staff | support
    created_at: datetime = Field(default_factory=utcnow)

    # Flask-Login's user protocol, written out so the models need no Flask import.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        """Flask-Login's identifier: the key of the sign-in session this object
        was loaded for (``wizard.accounts``), never the member's id, so the session
        cookie and any remember cookie stop working once the session is ended."""
        # Kept in the instance dict, outside the columns and Pydantic's fields.
        return self.__dict__.get("session_key")

    # The same account is the same member, whichever session loaded it.
    __hash__ = object.__hash__

    def __eq__(self, other):
        if isinstance(other, Member):
            return self is other or (self.id is not None and self.id == other.id)
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal


class SignInSession(SQLModel, table=True):
    """One signed-in browser. The cookie carries a random key; only its SHA-256
    is stored, and deleting the row ends the session on the server."""

    id: Optional[int] = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per (email typed, client address) and per client
    address. ``key`` is a SHA-256 of what is counted, so neither addresses nor
    emails are stored; unknown emails are counted exactly like real ones."""

    key: str = Field(max_length=64, primary_key=True)
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow)
    blocked_until: Optional[datetime] = None


class OAuthGrant(SQLModel, table=True):
    """One "Sign in with Google / Microsoft": the tokens for one mailbox account.

    Both tokens are encrypted with the passwords' keys and bound (like a
    password) to the SMTP host and account they were issued for; the draft
    and the saved settings point at the grant they use. ``status`` becomes
    ``reconnect_needed`` when the provider refuses the refresh token."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    provider: str = Field(max_length=20)  # google | microsoft | local
    account_email: str = Field(max_length=254)
    subject: str = Field(default="", max_length=255)  # the provider's id of the account
    access_token_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    refresh_token_encrypted: Optional[str] = Field(default=None, sa_column=Column(Text))
    token_binding: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    scope: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default="connected", max_length=20)  # connected | reconnect_needed
    # Why it needs signing in again (a safe provider word, e.g. invalid_grant).
    problem: Optional[str] = Field(default=None, max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    refreshed_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class SmtpDraft(SQLModel, table=True):
    """The SMTP form exactly as the merchant left it, errors included, so a
    draft is never lost. Text columns: hostile lengths are reported by the
    validation, not refused by the database."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", unique=True, index=True)
    provider: str = Field(default="", sa_column=Column(Text, nullable=False))
    host: str = Field(default="", sa_column=Column(Text, nullable=False))
    port: str = Field(default="", sa_column=Column(Text, nullable=False))
    security: str = Field(default="", sa_column=Column(Text, nullable=False))
    sender_name: str = Field(default="", sa_column=Column(Text, nullable=False))
    sender_email: str = Field(default="", sa_column=Column(Text, nullable=False))
    username: str = Field(default="", sa_column=Column(Text, nullable=False))
    password_encrypted: Optional[str] = Field(default=None, sa_column=Column(Text))
    # Keyed fingerprint of the server identity the password was typed for
    # (``SecretBox.seal``); the password is only ever sent to that identity.
    password_binding: Optional[str] = Field(default=None, max_length=64)
    # Why the stored password (or the signed-in account) was dropped
    # (``wizard.secrets.SERVER_CHANGED``), so the form can say so; cleared
    # when one is typed (or signed in) again.
    password_notice: Optional[str] = Field(default=None, max_length=20)
    # How HeiChat logs in: "password", or "xoauth2" with the sign-in below.
    auth_method: str = Field(default="password", max_length=10)
    oauth_grant_id: Optional[int] = Field(default=None, foreign_key="oauthgrant.id", index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class SmtpSettings(SQLModel, table=True):
    """The SMTP settings a store saved and sends with."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", unique=True, index=True)
    provider: str = Field(max_length=20)
    host: str = Field(max_length=255)
    port: int
    security: str = Field(max_length=10)  # starttls | ssl
    sender_name: str = Field(max_length=120)
    sender_email: str = Field(max_length=254)
    username: str = Field(max_length=254)
    password_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    # The server identity the password is bound to (see ``SmtpDraft``).
    password_binding: Optional[str] = Field(default=None, max_length=64)
    auth_method: str = Field(default="password", max_length=10)  # password | xoauth2
    oauth_grant_id: Optional[int] = Field(default=None, foreign_key="oauthgrant.id", index=True)
    fingerprint: str = Field(max_length=64)
    # Whether these exact values passed a connection test before saving.
    tested: bool = False
    saved_at: datetime = Field(default_factory=utcnow)


class ConnectionTest(SQLModel, table=True):
    """One Test Connection run, stored without the password."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    provider: str = Field(max_length=20)
    host: str = Field(max_length=255)
    port: int
    security: str = Field(max_length=10)
    username: str = Field(max_length=254)
    sender_email: str = Field(max_length=254)
    fingerprint: str = Field(max_length=64)
    auth_method: str = Field(default="password", max_length=10)  # password | xoauth2
    # running while the stages fill in (the wizard polls it), then finished.
    status: str = Field(default="finished", max_length=10)
    ok: bool = False
    stage: str = Field(default="", max_length=20)  # stage that failed, or "done"
    category: str = Field(default="", max_length=40)
    reply_code: Optional[int] = None
    reply_enhanced: Optional[str] = Field(default=None, max_length=20)
    reply_text: Optional[str] = Field(default=None, sa_column=Column(Text))
    elapsed_ms: int = 0
    stages: list = Field(default_factory=list, sa_column=Column(JSON))
    transcript: list = Field(default_factory=list, sa_column=Column(JSON))
    suggestion: Optional[dict] = Field(default=None, sa_column=Column(JSON))
    # Set when the address policy refused the target: nothing was sent to it.
    refusal: Optional[str] = Field(default=None, sa_column=Column(Text))


class SendLog(SQLModel, table=True):
    """One real test email (and, later, every email) sent for a store."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    purpose: str = Field(default="test", max_length=20)
    auth_method: str = Field(default="password", max_length=10)  # password | xoauth2
    sender: str = Field(max_length=400)
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=300)
    message_id: str = Field(max_length=300)
    ok: bool
    stage: str = Field(max_length=20)
    category: str = Field(max_length=40)
    reply_code: Optional[int] = None
    reply_enhanced: Optional[str] = Field(default=None, max_length=20)
    reply_text: Optional[str] = Field(default=None, sa_column=Column(Text))
    queue_id: Optional[str] = Field(default=None, max_length=200)
    elapsed_ms: int = 0
    transcript: list = Field(default_factory=list, sa_column=Column(JSON))
    refusal: Optional[str] = Field(default=None, sa_column=Column(Text))
    # The merchant's delivery checklist (None = not answered yet).
    check_arrived: Optional[bool] = None
    check_sender_name: Optional[bool] = None
    check_not_spam: Optional[bool] = None


class Contact(SQLModel, table=True):
    """A visitor who left an email address in the pre-chat form."""

    __table_args__ = (UniqueConstraint("store_id", "email"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    email: str = Field(max_length=254)
    name: Optional[str] = Field(default=None, max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    """A chat started by a visitor through the pre-chat form.

    The name and address the visitor typed stay with the conversation: the
    address is not verified, so a later conversation claiming the same
    address never renames the contact or borrows this one's messages."""

    __table_args__ = (
        Index("ix_conversation_store_visitor_email", "store_id", "visitor_email"),
        # The inbox: a store's conversations, newest activity first, a page at a time (keyset).
        Index("ix_conversation_store_activity", "store_id", "last_activity_at", "id"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    contact_id: Optional[int] = Field(default=None, foreign_key="contact.id", index=True)
    visitor_name: Optional[str] = Field(default=None, max_length=120)
    visitor_email: Optional[str] = Field(default=None, max_length=254)
    token: str = Field(max_length=64, unique=True, index=True)
    # The opaque part of this conversation's reply address (reply+TOKEN@ the
    # inbound domain); made when its first email is queued.
    reply_token: Optional[str] = Field(default=None, max_length=64, unique=True, index=True)
    started_at: datetime = Field(default_factory=utcnow)
    # Written by the visitor's page at most every ``chat.presence.WRITE_EVERY`` (not on every poll).
    last_seen_at: datetime = Field(default_factory=utcnow)
    # Kept by ``chat.activity`` whenever a message or an email is added, so the inbox sorts,
    # pages and filters in SQL on one indexed row per conversation, and a visitor's poll
    # learns "nothing new" from this row alone.
    last_activity_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    last_message_id: Optional[int] = None
    last_author: Optional[str] = Field(default=None, max_length=10)  # of the newest chat message
    last_email_id: Optional[int] = None


class ChatMessage(SQLModel, table=True):
    """One message in a conversation."""

    # One conversation's timeline, a page at a time, newest first.
    __table_args__ = (Index("ix_chatmessage_conversation_created", "conversation_id", "created_at", "id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    author: str = Field(max_length=10)  # visitor | merchant
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the visitor wrote this by email (a reply that came back); the
    # original message stays viewable there.
    inbound_email_id: Optional[int] = Field(default=None, foreign_key="inboundemail.id", index=True)


# -- support: share links and the audit log ---------------------------------------------


class ShareLink(SQLModel, table=True):
    """A link a support agent made for one store: it opens a wizard step or a
    help topic, optionally suggesting non-secret values (never a password).
    The URL carries only this row's id, signed; the row decides expiry and
    revocation, so links can be listed and revoked."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    created_by: Optional[int] = Field(default=None, foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    target: str = Field(max_length=40)  # a wizard step slug or a help topic anchor
    prefill: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    revoked_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class ShareLinkOpening(SQLModel, table=True):
    """One time a store member opened a share link."""

    id: Optional[int] = Field(default=None, primary_key=True)
    link_id: int = Field(foreign_key="sharelink.id", index=True)
    member_id: Optional[int] = Field(default=None, foreign_key="member.id")
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class AuditEvent(SQLModel, table=True):
    """Who did what to a store's email set-up, and when. The actor's email and
    role are copied so the log still reads right after an account changes.
    ``detail`` never holds a password (``wizard.audit.record`` drops such keys)."""

    id: Optional[int] = Field(default=None, primary_key=True)
    store_id: Optional[int] = Field(default=None, foreign_key="store.id", index=True)
    actor_id: Optional[int] = Field(default=None, foreign_key="member.id")
    actor_email: str = Field(default="", max_length=254)
    actor_role: str = Field(default="", max_length=10)
    action: str = Field(max_length=40)
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True))


# Last: the summary-row hooks need every table above (and the outbox's).
from wizard.models import activity as _activity  # noqa: E402, F401
