"""Reply addresses: ``reply+TOKEN@`` the inbound domain, one opaque token per conversation.

With ``WIZARD_INBOUND_DOMAIN`` set, every follow-up carries such an address
as its Reply-To (the merchant's sender stays the From), so the visitor's
answer comes back to HeiChat's inbound SMTP server and into the same
conversation. The token is random (160 bits, lower-case base32 so it
survives mail systems that change the case of local parts) and says nothing
by itself: the conversation row decides where a reply belongs. No Flask.
"""
from __future__ import annotations

import base64
import re
import secrets

from sqlmodel import Session

from wizard.models import Conversation, Store

__all__ = ["TOKEN_SHAPE", "new_reply_token", "reply_address", "store_reply_address", "token_in"]

PREFIX = "reply+"
TOKEN_SHAPE = re.compile(r"^[a-z2-7]{32}$")


def new_reply_token() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def reply_address(session: Session, conversation: Conversation, domain: str) -> str:
    """The conversation's reply address (its token made on first use; commits then)."""
    if not conversation.reply_token:
        conversation.reply_token = new_reply_token()
        session.add(conversation)
        session.commit()
    return f"{PREFIX}{conversation.reply_token}@{domain.strip().lower().rstrip('.')}"


def store_reply_address(session: Session, store: Store, domain: str) -> str:
    """The store's own reply address: mail to it that answers none of our
    emails waits in the store's unmatched list (token made on first use; commits then)."""
    if not store.reply_token:
        store.reply_token = new_reply_token()
        session.add(store)
        session.commit()
    return f"{PREFIX}{store.reply_token}@{domain.strip().lower().rstrip('.')}"


def token_in(address: str, domain: str) -> str | None:
    """The token of ``address`` when it is a reply address at ``domain``, else None."""
    local, at, host = address.strip().lower().rpartition("@")
    if not at or host.rstrip(".") != domain.strip().lower().rstrip(".") or not local.startswith(PREFIX):
        return None
    token = local[len(PREFIX):]
    return token if TOKEN_SHAPE.match(token) else None
