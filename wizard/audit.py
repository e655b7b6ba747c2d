"""The audit log: who changed, tested, saved or shared a store's email set-up.

Plain functions over a database session — no Flask — so views, commands and
tests record events the same way. A password or token never reaches the
log: ``record`` drops every detail key that mentions one, at any depth.
"""
from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from wizard.models import AuditEvent, Member

# Every action the log knows, with the words the audit page shows.
ACTIONS = {
    "settings.changed": "Changed the SMTP settings draft",
    "settings.tested": "Tested the SMTP connection",
    "settings.saved": "Saved the SMTP settings",
    "share_link.created": "Created a share link",
    "share_link.opened": "Opened a share link",
    "share_link.revoked": "Revoked a share link",
    "support_view.opened": "Opened the store in the support view",
    "oauth.connected": "Signed in to the mailbox provider",
    "oauth.reconnected": "Signed in again to the mailbox provider",
    "oauth.reading_allowed": "Allowed reading replies with the mailbox sign-in",
    "oauth.refresh_failed": "The provider refused the sign-in; signing in again is needed",
    "oauth.disconnected": "Disconnected the provider sign-in",
}
# Detail keys that could name a secret are never written.
SECRET_WORDS = ("password", "token", "secret")
PAGE_SIZE = 200


def without_passwords(value: Any) -> Any:
    """``value`` with every dict key containing a ``SECRET_WORDS`` word removed, recursively."""
    if isinstance(value, dict):
        return {str(k): without_passwords(v) for k, v in value.items()
                if not any(word in str(k).lower() for word in SECRET_WORDS)}
    if isinstance(value, (list, tuple)):
        return [without_passwords(v) for v in value]
    return value


def record(session: Session, *, store_id: int | None, actor: Member | None, action: str,
           detail: dict | None = None) -> AuditEvent:
    """Write one event (and commit). ``action`` must be one of ``ACTIONS``;
    ``detail`` must be JSON-serialisable and loses any password-like key."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    event = AuditEvent(
        store_id=store_id,
        actor_id=actor.id if actor is not None else None,
        actor_email=actor.email if actor is not None else "",
        actor_role=actor.role if actor is not None else "",
        action=action,
        detail=without_passwords(dict(detail or {})),
    )
    session.add(event)
    session.commit()
    return event


def events_for_store(session: Session, store_id: int, limit: int = PAGE_SIZE) -> list[AuditEvent]:
    """The store's events, newest first."""
    return list(session.exec(
        select(AuditEvent).where(AuditEvent.store_id == store_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    ).all())


def describe(action: str) -> str:
    return ACTIONS.get(action, action)
