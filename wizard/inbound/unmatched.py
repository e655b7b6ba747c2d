"""Replies nothing matched (they came to the store's own reply address): list them, file one in a conversation."""
from __future__ import annotations

from sqlmodel import Session, select

from wizard.inbound.ingest import EMPTY_REPLY
from wizard.models import ChatMessage, Conversation
from wizard.models.inbound import MESSAGE, InboundEmail

__all__ = ["unmatched", "assign"]

LIST_LIMIT = 200


def unmatched(session: Session, store_id: int) -> list[InboundEmail]:
    """The store's messages that belong to no conversation, newest first."""
    return list(session.exec(select(InboundEmail).where(
        InboundEmail.store_id == store_id, InboundEmail.conversation_id.is_(None), InboundEmail.kind == MESSAGE)
        .order_by(InboundEmail.id.desc()).limit(LIST_LIMIT)).all())


def assign(session: Session, email: InboundEmail, conversation: Conversation) -> ChatMessage:
    """File ``email`` in ``conversation`` (same store only) as the visitor's reply (commits)."""
    if email.store_id != conversation.store_id or email.conversation_id is not None:
        raise ValueError("only an unmatched email of the same store can be assigned")
    email.conversation_id = conversation.id
    email.matched_by = "assigned"
    message = ChatMessage(conversation_id=conversation.id, author="visitor", body=email.text.strip() or EMPTY_REPLY,
                          inbound_email_id=email.id)
    session.add(email)
    session.add(message)
    session.commit()
    return message
