"""Building outgoing messages with the ``email`` package.

Headers are set through ``EmailMessage`` and ``Address`` objects, which
refuse CR/LF in header values, so no field can inject a header.
"""
from __future__ import annotations

from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from wizard.smtp.header_text import fold_header


def sender_address(name: str, email: str) -> Address:
    """The From address; a display name saved before line separators were refused is put on one line."""
    local, _, domain = email.rpartition("@")
    return Address(display_name=fold_header(name), username=local, domain=domain)


def possessive(name: str) -> str:
    """"Lumen Candles'", "Blue Fern's": English possessive of a name."""
    name = name.strip()
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def build_test_email(*, sender_name: str, sender_email: str, recipient: str, store_name: str, provider_name: str) -> EmailMessage:
    """The real test email of step 5: tells the reader what to check."""
    message = EmailMessage()
    message["From"] = sender_address(sender_name, sender_email)
    message["To"] = recipient
    # Store names are free text from sign-up; older ones may hold a line separator.
    message["Subject"] = f"Test email from {fold_header(store_name)} (HeiChat email set-up)"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender_email.rpartition("@")[2] or None)
    body = (
        f"Hello,\n\n"
        f"This is a test email from {possessive(store_name)} HeiChat email set-up, sent through {provider_name}.\n\n"
        f"Please check three things:\n"
        f"  1. It arrived in the inbox — if you found it in the spam or junk folder, the sending domain\n"
        f"     probably needs SPF, DKIM and DMARC records.\n"
        f"  2. The sender shows as \"{sender_name}\" — that is the name your customers will see.\n"
        f"  3. Replying goes to {sender_email}.\n\n"
        f"Then tick the checklist in the wizard. No reply is needed.\n\n"
        f"— HeiChat\n"
    )
    message.set_content(body)
    return message
