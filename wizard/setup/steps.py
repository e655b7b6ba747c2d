"""Where a store stands in the five steps of the wizard.

Plain functions over a database session (no Flask), shared by the web views,
the CLI, the outbox worker and the tests."""
from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from wizard.catalogue import Catalogue
from wizard.models import (
    SendLog,
    Store,
)
from wizard.secrets import (
    SecretBox,
)
from wizard.setup.drafts import STEPS, check_draft, get_draft, get_saved
from wizard.smtp.validation import (
    has_errors,
)


@dataclass
class Progress:
    done: dict[str, bool]

    @property
    def next_step(self) -> str | None:
        return next((slug for slug, _ in STEPS if not self.done[slug]), None)

    @property
    def complete(self) -> bool:
        return all(self.done.values())


def prechat_ready(store: Store) -> bool:
    return store.prechat_enabled and store.prechat_email_required


def progress(session: Session, store: Store, catalogue: Catalogue, box: SecretBox) -> Progress:
    draft = get_draft(session, store)
    saved = get_saved(session, store)
    sent = None
    if saved is not None:
        sent = session.exec(
            select(SendLog).where(SendLog.store_id == store.id, SendLog.ok == True, SendLog.created_at >= saved.saved_at)  # noqa: E712
        ).first()
    return Progress(
        done={
            "pre-chat-form": prechat_ready(store),
            "provider": catalogue.get(store.provider) is not None,
            "smtp": draft is not None and bool(draft.host) and not has_errors(check_draft(draft, catalogue, box)),
            # Saved without a passing test is not done: the merchant still has to test.
            "test": saved is not None and saved.tested,
            "send": sent is not None,
        }
    )
