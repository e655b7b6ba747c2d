"""One raw message in, one ``ParsedEmail`` out: ``parse_message(raw)``.

The kind comes first from the structure (a delivery status notification is a
bounce; a text bounce from a mail system too), then from the auto-reply
headers and subjects, else it is a message. The text is the sender's new
words: the text/plain part, or the HTML part as text when there is no
plain one, with the quoted history taken out (``quotes``, ``html_text``).
Input that is not an email at all raises ``NotAnEmail``; a weird but real
message never raises.
"""
from __future__ import annotations

import re
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from wizard.inbound.auto_reply import is_auto_reply
from wizard.inbound.body import BodyParts, text_parts
from wizard.inbound.dsn import DeliveryReport, read_delivery_report, read_text_bounce
from wizard.inbound.headers import answered_ids, decoded_value, own_message_id, reply_token, sender
from wizard.inbound.html_text import html_to_text
from wizard.inbound.parsed import NotAnEmail, ParsedEmail
from wizard.inbound.quotes import strip_history

__all__ = ["parse_message", "NotAnEmail"]

HEADER_LINE = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9_.-]*)[ \t]*:")
# Headers every real message has at least one of.
MESSAGE_HEADERS = frozenset({
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"received", b"return-path", b"delivered-to",
    b"mime-version", b"content-type", b"in-reply-to", b"references", b"sender", b"reply-to", b"x-original-to",
    b"auto-submitted",
})
SNIFF_BYTES = 8192


def check_is_email(raw: bytes) -> bytes:
    """``raw`` without leading blank lines, or ``NotAnEmail`` saying why it is not one."""
    if not isinstance(raw, bytes | bytearray):
        raise NotAnEmail("the input is not bytes")
    raw = bytes(raw).lstrip(b"\r\n")
    if not raw.strip():
        raise NotAnEmail("the input is empty")
    head = raw[:SNIFF_BYTES]
    header_block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    if b"\x00" in header_block:
        raise NotAnEmail("the input is binary data, not an email")
    lines = header_block.splitlines()
    if lines and lines[0].startswith(b"From "):
        lines = lines[1:]  # an mbox separator line
    if not lines or not HEADER_LINE.match(lines[0]):
        raise NotAnEmail("the input does not start with an email header block (Name: value lines)")
    names = {match.group(1).lower() for line in lines if (match := HEADER_LINE.match(line))}
    if not names & MESSAGE_HEADERS:
        raise NotAnEmail("the input has no email headers (From, To, Subject, Date, Message-ID …)")
    return raw


def kind_and_report(message: EmailMessage, parts: BodyParts, subject: str | None) -> tuple[str, DeliveryReport | None]:
    report = read_delivery_report(message) or read_text_bounce(message, parts.plain)
    if report is not None:
        return ("bounce" if report.bounce is not None else "auto_reply"), report
    return ("auto_reply" if is_auto_reply(message, subject) else "message"), None


def new_text(parts: BodyParts, report: DeliveryReport | None) -> str:
    """What the sender wrote now, from the plain part or else the HTML part."""
    if report is not None and report.explanation is not None:
        return strip_history(report.explanation)
    if parts.plain is not None and (parts.plain.strip() or parts.html is None):
        return strip_history(parts.plain)
    if parts.html is not None:
        return strip_history(html_to_text(parts.html))
    return ""


def parse_message(raw: bytes) -> ParsedEmail:
    """Read one raw RFC 5322 message (``NotAnEmail`` if ``raw`` is not one)."""
    raw = check_is_email(raw)
    message = BytesParser(policy=default).parsebytes(raw)
    subject = decoded_value(message, "Subject")
    parts = text_parts(message)
    kind, report = kind_and_report(message, parts, subject)
    return ParsedEmail(
        kind=kind,
        sender=sender(message),
        subject=subject,
        in_reply_to=answered_ids(message),
        reply_token=reply_token(message),
        text=new_text(parts, report),
        bounce=report.bounce if report else None,
        message_id=own_message_id(message),
        html=parts.html,
    )
