"""Storing what came back: once, in the right store and conversation (no Flask).

``ingest(session, raw, source=…)`` parses one raw message, matches it and
writes it in one transaction; it returns only after the commit, so the
inbound SMTP server answers 250 and the IMAP fetcher advances its last UID
only for what is safely stored. The same message twice (a retry, a
re-fetch after a crash or a UIDVALIDITY change) is stored once: the key is
the store and the Message-ID.

Matching, in this order: the reply token of a ``reply+TOKEN@`` address
(a conversation's; a store's own address only names the store); then
``In-Reply-To`` / ``References`` (for a bounce first the Message-ID of the
email that bounced) against the Message-IDs of our own emails; then nothing.
Every look-up is confined to one store once a store is known, so a token or
a Message-ID of store A never lands in store B.

What a match does:
- a reply (``message``) becomes a visitor message in the conversation
  ("replied by email"), so the inbox counts it as awaiting a reply and the
  visitor sees it when they come back to the chat;
- an ``auto_reply`` is kept as a note: it never awaits a reply, never triggers anything;
- a ``bounce`` marks the email it belongs to as bounced with the reason, and
  a permanent one suppresses the address for the store; a delayed one is a note.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from wizard.inbound.bounces import bounce_reason
from wizard.inbound.parse import parse_message
from wizard.inbound.parsed import NotAnEmail, ParsedEmail
from wizard.models import ChatMessage, Conversation, Store
from wizard.models.inbound import BOUNCE, MESSAGE, InboundEmail
from wizard.models.outbox import BOUNCED, SENT, OutboxEmail, Suppression
from wizard.outbox.suppressions import HARD_BOUNCE, suppression_for

__all__ = ["IngestResult", "Match", "ingest", "match", "IMPORTED", "DUPLICATE", "UNMATCHED", "SKIPPED"]

IMPORTED, DUPLICATE, UNMATCHED, SKIPPED = "imported", "duplicate", "unmatched", "skipped"
# What a reply with no text of its own shows in the conversation.
EMPTY_REPLY = "(an email with no text of its own — open the original)"


@dataclass
class Match:
    store_id: int | None = None
    conversation: Conversation | None = None
    outbox_email: OutboxEmail | None = None
    matched_by: str = ""  # token | references | ""


@dataclass
class IngestResult:
    outcome: str  # imported | duplicate | unmatched | skipped
    email: InboundEmail | None = None
    detail: str = ""


def _bracketed(message_id: str) -> str:
    return f"<{message_id.strip().strip('<>')}>"


def match(session: Session, parsed: ParsedEmail, *, store_id: int | None = None) -> Match:
    """Where ``parsed`` belongs, looking only inside ``store_id`` when given."""
    if parsed.reply_token:
        query = select(Conversation).where(Conversation.reply_token == parsed.reply_token)
        if store_id is not None:
            query = query.where(Conversation.store_id == store_id)
        conversation = session.exec(query).first()
        if conversation is not None:
            answered = _our_email(session, parsed, conversation.store_id)
            if answered is not None and answered.conversation_id != conversation.id:
                answered = None  # the token decides the conversation; an id of another one is ignored
            return Match(conversation.store_id, conversation, answered, "token")
        # The store's own reply address: that store, and its conversations only.
        query = select(Store).where(Store.reply_token == parsed.reply_token)
        if store_id is not None:
            query = query.where(Store.id == store_id)
        store = session.exec(query).first()
        if store is not None:
            store_id = store.id
    answered = _our_email(session, parsed, store_id)
    if answered is not None:
        conversation = session.get(Conversation, answered.conversation_id) if answered.conversation_id else None
        return Match(answered.store_id, conversation, answered, "references")
    return Match(store_id)


def _our_email(session: Session, parsed: ParsedEmail, store_id: int | None) -> OutboxEmail | None:
    """Our email that ``parsed`` answers or bounces: the bounced one first, then
    In-Reply-To, then the References from the newest back."""
    candidates: list[str] = []
    if parsed.bounce is not None and parsed.bounce.original_message_id:
        candidates.append(parsed.bounce.original_message_id)
    if parsed.in_reply_to:
        candidates.append(parsed.in_reply_to[0])
        candidates += list(reversed(parsed.in_reply_to[1:]))
    for message_id in dict.fromkeys(candidates):
        query = select(OutboxEmail).where(OutboxEmail.message_id == _bracketed(message_id))
        if store_id is not None:
            query = query.where(OutboxEmail.store_id == store_id)
        email = session.exec(query).first()
        if email is not None:
            return email
    return None


def own_message_id(parsed: ParsedEmail, raw: bytes) -> str:
    """The key a message is stored once under: its Message-ID, or (rare, a
    broken client) a digest of the whole message."""
    if parsed.message_id:
        return parsed.message_id.strip().strip("<>")[:290]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def ingest(session: Session, raw: bytes, *, source: str, store_id: int | None = None,
           keep_unmatched: bool = True) -> IngestResult:
    """Parse, match and store ``raw`` (commits). ``store_id``: the store it was
    fetched for (IMAP), or None (the reply address: the token decides).
    ``keep_unmatched``: keep a message no conversation matched (in the
    store's unmatched list) instead of leaving it alone."""
    try:
        parsed = parse_message(raw)
    except NotAnEmail as exc:
        return IngestResult(SKIPPED, detail=str(exc))
    found = match(session, parsed, store_id=store_id)
    if found.store_id is None:
        return IngestResult(UNMATCHED, detail="no store matches this message")
    if found.conversation is None and (not keep_unmatched or parsed.kind != MESSAGE):
        # Unmatched auto-replies and bounces (of mail we did not send) are not
        # ours to act on; a fetched message we cannot place stays in the
        # merchant's mailbox untouched.
        return IngestResult(UNMATCHED)
    message_id = own_message_id(parsed, raw)
    existing = session.exec(select(InboundEmail).where(InboundEmail.store_id == found.store_id,
                                                       InboundEmail.message_id == message_id)).first()
    if existing is not None:
        return IngestResult(DUPLICATE, existing)
    row = InboundEmail(
        store_id=found.store_id,
        conversation_id=found.conversation.id if found.conversation else None,
        outbox_email_id=found.outbox_email.id if found.outbox_email else None,
        message_id=message_id,
        kind=parsed.kind,
        source=source,
        matched_by=found.matched_by,
        sender=(parsed.sender or "")[:254] or None,
        subject=parsed.subject,
        text=parsed.text.replace("\x00", ""),
        raw=raw,
    )
    if parsed.bounce is not None:
        row.bounce_recipient = parsed.bounce.recipient[:254]
        row.bounce_status = parsed.bounce.status[:20]
        row.bounce_action = parsed.bounce.action[:10]
        row.bounce_permanent = parsed.bounce.permanent
    session.add(row)
    try:
        session.flush()
        if parsed.kind == MESSAGE and found.conversation is not None:
            session.add(ChatMessage(conversation_id=found.conversation.id, author="visitor",
                                    body=row.text.strip() or EMPTY_REPLY, inbound_email_id=row.id))
        elif parsed.kind == BOUNCE and parsed.bounce is not None:
            _apply_bounce(session, found, parsed)
        session.commit()
    except IntegrityError:
        # The same message stored a moment ago by another process (the unique key decides).
        session.rollback()
        existing = session.exec(select(InboundEmail).where(InboundEmail.store_id == found.store_id,
                                                           InboundEmail.message_id == message_id)).first()
        return IngestResult(DUPLICATE, existing)
    return IngestResult(IMPORTED, row)


def _apply_bounce(session: Session, found: Match, parsed: ParsedEmail) -> None:
    bounce = parsed.bounce
    email = found.outbox_email
    if bounce.action == "failed" and email is not None and email.status == SENT:
        category, reason = bounce_reason(bounce.status, parsed.text)
        email.status = BOUNCED
        email.last_stage, email.last_category, email.last_reply_text = "bounce", category, reason
        email.last_reply_code = None
        session.add(email)
    # Only an address this store really sent to: a forged DSN cannot suppress anyone.
    if (bounce.permanent and email is not None
            and email.recipient.strip().lower() == bounce.recipient.strip().lower()
            and suppression_for(session, found.store_id, bounce.recipient) is None):
        try:
            with session.begin_nested():  # in the same transaction as the bounce itself
                session.add(Suppression(store_id=found.store_id, email=bounce.recipient.strip().lower(),
                                        reason=HARD_BOUNCE))
        except IntegrityError:
            pass  # suppressed a moment ago by another process: the same outcome
