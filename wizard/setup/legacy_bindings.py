"""Bind passwords stored before secret binding existed, once, at start-up.

Passwords saved by an earlier version have no binding, and an unbound secret
is never sent anywhere: without this step every store's outbox would hold its
mail until the merchant typed the password again. Saved settings are bound to
their own server — they were saved from values the merchant tested or
confirmed. A draft's password is bound only when the draft still points at the
saved server; a draft that points elsewhere (a suggestion accepted before the
upgrade, say) keeps no binding, so that password is asked for again rather
than sent to a server it was not typed for. No Flask.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wizard.models import SmtpDraft, SmtpSettings
from wizard.secrets import SecretBox
from wizard.setup.drafts import draft_identity
from wizard.smtp.target_options import saved_identity


def bind_legacy_passwords(engine: Engine, box: SecretBox) -> int:
    """Bind every unbound stored password that can be bound safely; return how many were."""
    bound = 0
    with Session(engine) as session:
        saved_by_store = {}
        for saved in session.exec(select(SmtpSettings)).all():
            saved_by_store[saved.store_id] = saved
            if saved.password_encrypted and not saved.password_binding:
                saved.password_binding = box.binding(saved_identity(saved))
                bound += 1
        for draft in session.exec(select(SmtpDraft).where(SmtpDraft.password_binding.is_(None))).all():
            saved = saved_by_store.get(draft.store_id)
            if draft.password_encrypted and saved is not None and draft_identity(draft) == saved_identity(saved):
                draft.password_binding = box.binding(draft_identity(draft))
                bound += 1
        session.commit()
    return bound
