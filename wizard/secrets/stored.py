"""Every encrypted secret the database holds, in one list.

Start-up uses it to refuse generating a fresh encryption key over existing
secrets (they would all become unreadable); ``rotate-key`` re-encrypts
exactly these columns.
OAuth tokens (``OAuthGrant``) are sealed with the same keys as passwords.
No Flask.
"""
from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wizard.models import OAuthGrant, SmtpDraft, SmtpSettings

# (table model, ciphertext column) of every encrypted secret.
ENCRYPTED = ((SmtpSettings, "password_encrypted"), (SmtpDraft, "password_encrypted"),
             (OAuthGrant, "access_token_encrypted"), (OAuthGrant, "refresh_token_encrypted"))


def count_encrypted(engine: Engine) -> int:
    """How many encrypted secrets are stored (empty strings and NULLs are none)."""
    total = 0
    with Session(engine) as session:
        for model, column in ENCRYPTED:
            value = getattr(model, column)
            total += session.exec(select(func.count()).select_from(model)
                                  .where(value.is_not(None), value != "")).one()
    return total
