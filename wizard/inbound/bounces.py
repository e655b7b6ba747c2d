"""What a bounce says, in the diagnosis's words: the category and the reason shown with the bounced email."""
from __future__ import annotations

# Enhanced status code classes (RFC 3463) -> diagnosis category; the first
# prefix that fits wins, so the more specific come first.
BOUNCE_CATEGORIES = (
    ("5.1.", "recipient_rejected"),   # bad mailbox, bad domain, address moved
    ("5.2.2", "recipient_rejected"),  # mailbox full (the recipient's problem)
    ("5.2.", "recipient_rejected"),   # mailbox disabled or not accepting
    ("5.7.", "message_rejected"),     # policy: spam, DMARC, blocked sender
    ("5.6.", "message_rejected"),     # content
    ("5.3.", "message_rejected"),     # the receiving system
    ("5.", "message_rejected"),
    ("4.", "temporary_failure"),
)
# What the merchant reads, per status code prefix (most specific first).
BOUNCE_REASONS = (
    ("5.1.1", "The receiving server says this mailbox does not exist."),
    ("5.1.2", "The receiving domain does not exist or takes no mail."),
    ("5.1.10", "The receiving domain publishes a null MX: it takes no mail."),
    ("5.1.", "The receiving server does not know this address."),
    ("5.2.2", "The recipient's mailbox is full."),
    ("5.2.1", "The recipient's mailbox is disabled."),
    ("5.7.", "The receiving server refused the message by policy (spam filter, DMARC or a block list)."),
    ("5.", "The receiving server refused the message for good."),
    ("4.", "Delivery is delayed; the sending server keeps trying."),
)


def _first(table, status: str, default: str) -> str:
    return next((value for prefix, value in table if status.startswith(prefix)), default)


def bounce_reason(status: str, text: str = "") -> tuple[str, str]:
    """(category, reason) for a bounce with enhanced status ``status``."""
    status = (status or "").strip()
    category = _first(BOUNCE_CATEGORIES, status, "message_rejected")
    reason = _first(BOUNCE_REASONS, status, "The message bounced.")
    return category, f"{reason} (status {status})" if status else reason
