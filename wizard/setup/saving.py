"""Tests, saving and sending: the latest connection test, saving tested settings, the log of test emails.

Plain functions over a database session (no Flask), shared by the web views,
the CLI, the outbox worker and the tests."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from wizard.models import (
    ConnectionTest,
    SendLog,
    SmtpDraft,
    SmtpSettings,
    Store,
    utcnow,
)
from wizard.secrets import (
    SecretBox,
)
from wizard.setup.drafts import (
    draft_fingerprint,
    get_saved,
    signed_in,
    stored_password,
)
from wizard.setup.sign_in import prune_unused_grants
from wizard.smtp.target_options import saved_identity
from wizard.smtp.types import ProbeResult


def has_test(session: Session, store: Store) -> bool:
    """Whether the store ran Test Connection at all (an id, not a whole transcript)."""
    return session.exec(select(ConnectionTest.id).where(ConnectionTest.store_id == store.id).limit(1)).first() is not None


def latest_test(session: Session, store: Store) -> ConnectionTest | None:
    return session.exec(
        select(ConnectionTest).where(ConnectionTest.store_id == store.id).order_by(ConnectionTest.id.desc()).limit(1)
    ).first()


def draft_passed_test(session: Session, store: Store, draft: SmtpDraft | None, box: SecretBox) -> bool:
    """True when the exact current draft is the one the latest passed test used."""
    if draft is None or not (draft.oauth_grant_id if signed_in(draft) else draft.password_encrypted):
        return False
    current = draft_fingerprint(draft, box)
    passed = session.exec(
        select(ConnectionTest)
        .where(ConnectionTest.store_id == store.id, ConnectionTest.fingerprint == current, ConnectionTest.ok == True)  # noqa: E712
    ).first()
    return passed is not None


def test_matches_draft(test: ConnectionTest | None, draft: SmtpDraft | None, box: SecretBox) -> bool:
    """Whether ``test`` was run with the draft's current settings (password or sign-in included).
    A result that does not match is shown as one "for earlier settings"."""
    return test is not None and draft is not None and test.fingerprint == draft_fingerprint(draft, box)


def save_settings(session: Session, store: Store, draft: SmtpDraft, box: SecretBox, tested: bool) -> SmtpSettings:
    """Copy a valid draft to the saved settings (re-encrypting the password)."""
    saved = get_saved(session, store) or SmtpSettings(store_id=store.id, provider="", host="", port=0, security="",
                                                       sender_name="", sender_email="", username="",
                                                       password_encrypted="", fingerprint="")
    saved.provider = draft.provider
    saved.host = draft.host.strip().lower().rstrip(".")
    saved.port = int(draft.port.strip())
    saved.security = draft.security.strip()
    saved.sender_name = draft.sender_name.strip()
    saved.sender_email = draft.sender_email.strip()
    saved.username = draft.username.strip()
    saved.auth_method, saved.oauth_grant_id = draft.auth_method, draft.oauth_grant_id
    if signed_in(draft):
        saved.password_encrypted, saved.password_binding = "", None  # the sign-in's tokens are the grant's
    else:
        saved.password_encrypted, saved.password_binding = box.seal(stored_password(draft, box), saved_identity(saved))
    saved.fingerprint = draft_fingerprint(draft, box)
    saved.tested = tested
    saved.saved_at = utcnow()
    session.add(saved)
    session.commit()
    prune_unused_grants(session, store.id)
    return saved


def record_send(session: Session, store: Store, saved: SmtpSettings, recipient: str, subject: str, message_id: str,
                sender: str, result: ProbeResult) -> SendLog:
    reply = result.reply
    log = SendLog(
        store_id=store.id,
        auth_method=saved.auth_method,
        sender=sender,
        recipient=recipient,
        subject=subject,
        message_id=message_id,
        ok=result.ok,
        stage=result.stage,
        category=result.category,
        reply_code=reply.code if reply else None,
        reply_enhanced=reply.enhanced if reply else None,
        reply_text=reply.text if reply else None,
        queue_id=result.queue_id,
        elapsed_ms=result.elapsed_ms,
        transcript=result.transcript,
        refusal=result.refusal,
    )
    session.add(log)
    session.commit()
    return log


def latest_send(session: Session, store: Store, since: datetime | None = None) -> SendLog | None:
    query = select(SendLog).where(SendLog.store_id == store.id)
    if since is not None:
        query = query.where(SendLog.created_at >= since)
    return session.exec(query.order_by(SendLog.id.desc()).limit(1)).first()


