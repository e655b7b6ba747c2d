"""Each conversation's summary row, kept right by the database writes themselves.

The inbox sorts, pages and filters conversations by their latest activity and
their newest message, and a visitor's poll asks "anything new?" — both read
``Conversation.last_activity_at``, ``last_message_id``, ``last_author`` and
``last_email_id`` instead of aggregating every message and email. Chat
messages are written by the chat, by inbound mail (emailed replies) and by
hand-filed replies; emails by the outbox. Hooking the inserts here, where the
tables are defined, keeps the summary right for every writer and every
process, including ones that never import the chat code.
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, case, event, literal, or_, update

from wizard.models import ChatMessage, Conversation
from wizard.models.outbox import OutboxEmail

_conversation = Conversation.__table__


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _later_activity(moment: datetime):
    """``last_activity_at`` moved forward to ``moment``, never back (writers may commit out of order)."""
    column = _conversation.c.last_activity_at
    at = literal(_aware(moment), type_=column.type)
    return case((column < at, at), else_=column)


def _newer(column, new_id: int):
    return or_(column.is_(None), column < new_id)


@event.listens_for(ChatMessage, "after_insert")
def _message_added(_mapper, connection, message: ChatMessage) -> None:
    connection.execute(
        update(_conversation)
        .where(and_(_conversation.c.id == message.conversation_id, _newer(_conversation.c.last_message_id, message.id)))
        .values(last_message_id=message.id, last_author=message.author,
                last_activity_at=_later_activity(message.created_at)))


@event.listens_for(OutboxEmail, "after_insert")
def _email_added(_mapper, connection, email: OutboxEmail) -> None:
    if email.conversation_id is None:
        return
    connection.execute(
        update(_conversation)
        .where(and_(_conversation.c.id == email.conversation_id, _newer(_conversation.c.last_email_id, email.id)))
        .values(last_email_id=email.id, last_activity_at=_later_activity(email.created_at)))
