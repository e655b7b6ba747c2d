"""What ``wizard.inbound.parse`` makes of one raw message (plain data)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Bounce", "ParsedEmail", "NotAnEmail", "KINDS"]

KINDS = ("message", "auto_reply", "bounce")


class NotAnEmail(ValueError):
    """The input is not an RFC 5322 message (the reason is the message)."""


@dataclass(frozen=True)
class Bounce:
    """The machine-readable part of a delivery status notification (RFC 3464)."""

    recipient: str
    status: str  # e.g. "5.1.1"
    action: str  # failed | delayed
    permanent: bool
    original_message_id: str | None  # without angle brackets


@dataclass(frozen=True)
class ParsedEmail:
    kind: str  # one of KINDS
    sender: str | None  # addr-spec, lower-case
    subject: str | None  # decoded
    in_reply_to: tuple[str, ...]  # In-Reply-To then References, no angle brackets, de-duplicated, in order
    reply_token: str | None  # from a reply+TOKEN@ address in To, Cc, Delivered-To or X-Original-To
    text: str  # only what the sender wrote now
    bounce: Bounce | None = None
    message_id: str | None = None  # this message's own Message-ID, without angle brackets
    html: str | None = None  # the HTML body as sent (unsanitized; sanitize before showing)
    extra: dict = field(default_factory=dict)

    def as_contract(self) -> dict:
        """The ``inbound-parse --json`` object, exactly (README, "inbound-parse")."""
        return {
            "kind": self.kind,
            "from": self.sender,
            "subject": self.subject,
            "in_reply_to": list(self.in_reply_to),
            "reply_token": self.reply_token,
            "text": self.text,
            "bounce": None if self.bounce is None else {
                "recipient": self.bounce.recipient,
                "status": self.bounce.status,
                "action": self.bounce.action,
                "permanent": self.bounce.permanent,
                "original_message_id": self.bounce.original_message_id,
            },
        }
