"""Which of the local test mailbox's messages belong to which store.

The mailbox accepts any login, so neither the envelope sender nor the
username says who sent a message: two stores may type the same ones, and
anything on this computer can connect to the mailbox directly. What cannot
be claimed is the key the mailbox itself gives each message it stores — it
answers ``250 … queued as <key>``, and the app records that queue id on the
store's own test email or outbox row. So a message is a store's exactly when
one of the store's delivery records holds its key; mail nobody sent through
the app belongs to no store.
"""
from __future__ import annotations

from sqlmodel import Session, select

from wizard.models import SendLog
from wizard.models.outbox import OutboxEmail


def owned_message_keys(session: Session, store_id: int) -> set[str]:
    """The mailbox keys of every message the store's test emails and outbox delivered."""
    keys = set(session.exec(select(SendLog.queue_id).where(SendLog.store_id == store_id,
                                                          SendLog.queue_id.is_not(None))).all())
    keys |= set(session.exec(select(OutboxEmail.queue_id).where(OutboxEmail.store_id == store_id,
                                                                OutboxEmail.queue_id.is_not(None))).all())
    return keys
