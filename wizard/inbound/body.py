"""Finding the message's own text and HTML parts and decoding them to text.

Attachments, forwarded or returned messages (``message/rfc822``) and the
machine-readable parts of a report are not the sender's text and are never
searched. Transfer encodings (base64, quoted-printable, 8bit) are undone by
the stdlib; charsets are decoded by label, then by the label's superset,
then by the fallbacks of ``inbound.toml`` (never failing).
"""
from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass
from email.message import Message

from wizard.catalogue.inbound import inbound_rules

# Parts that are a message of their own or machine-readable data.
NOT_THE_SENDERS_TEXT = ("message/", "text/rfc822-headers")
BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


@dataclass(frozen=True)
class BodyParts:
    plain: str | None
    html: str | None


def decode_bytes(data: bytes, label: str | None) -> str:
    """``data`` as text: by its charset label, its superset, then the fallbacks."""
    rules = inbound_rules()
    candidates: list[str] = []
    if label:
        label = label.strip().strip('"').lower()
        if label in rules.charset_supersets:
            candidates.append(rules.charset_supersets[label])
        candidates.append(label)
    candidates.extend(rules.charset_fallbacks)
    for candidate in candidates:
        try:
            codecs.lookup(candidate)
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode(rules.charset_fallbacks[-1], "replace")


def lenient_base64(payload: str) -> bytes:
    """Base64 up to the first line that is not base64 (a footer a list appended, junk).

    The stdlib gives back the undecoded text when any line is bad.
    """
    lines = []
    for line in payload.split("\n"):
        line = line.strip()
        if not BASE64_LINE.match(line):
            break
        lines.append(line)
    data = "".join(lines).rstrip("=")
    data = data[:len(data) - len(data) % 4] if len(data) % 4 == 1 else data
    try:
        return binascii.a2b_base64(data + "=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def part_text(part: Message) -> str:
    """A text part's content, decoded from its transfer encoding and charset."""
    try:
        if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
            payload = part.get_payload()
            data = lenient_base64(payload) if isinstance(payload, str) else None
        else:
            data = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: read what is there
        data = None
    if data is None:
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    text = decode_bytes(data, part.get_param("charset"))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_type() == "text/plain" and str(part.get_param("format", "")).lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp", "")).lower() == "yes")
    return text


def unflow(text: str, delete_space: bool) -> str:
    """Join the soft line breaks of format=flowed text (RFC 3676).

    Only unquoted lines are joined: quoted ones are dropped later anyway,
    and joining them would need the quote depth of both lines.
    """
    joined: list[str] = []
    for line in text.split("\n"):
        previous = joined[-1] if joined else None
        if (previous is not None and previous.endswith(" ") and previous != "-- "
                and not previous.startswith(">") and not line.startswith(">") and line != "-- "):
            joined[-1] = (previous[:-1] if delete_space else previous) + line
        else:
            joined.append(line)
    return "\n".join(joined)


def is_attachment(part: Message) -> bool:
    return str(part.get("Content-Disposition", "")).strip().lower().startswith("attachment")


def text_parts(message: Message) -> BodyParts:
    """The first text/plain and the first text/html part written by the sender."""
    plain: str | None = None
    html: str | None = None
    stack = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        if part is not message and content_type.startswith(NOT_THE_SENDERS_TEXT):
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                # Depth first, in order: the children come before the part's later siblings.
                stack[0:0] = children
            continue
        if is_attachment(part):
            continue
        if content_type == "text/plain" and plain is None:
            plain = part_text(part)
        elif content_type == "text/html" and html is None:
            html = part_text(part)
    return BodyParts(plain, html)
