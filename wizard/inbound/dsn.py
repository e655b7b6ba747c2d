"""Bounces: delivery status notifications (RFC 3464) and a few MTAs' text bounces.

A DSN is ``multipart/report; report-type=delivery-status``; its
``message/delivery-status`` part has a per-message block and one block per
recipient. The recipient block read is the first that failed, else the first
delayed one, else the first. ``Action: failed`` or ``delayed`` makes a bounce;
``delivered``, ``relayed`` and ``expanded`` are success notices (a receipt the
sender's server asked for), which the parser reads as auto-replies: nobody
wrote them and nothing failed.

The returned message (``message/rfc822``) or its headers
(``text/rfc822-headers``) give the Message-ID of our email that bounced.

Text bounces (old Exim, qmail: no delivery-status part) are read only when
the sender is a mail system (``MAILER-DAEMON@``, ``postmaster@``) and the text
has the MTA's own wording from ``inbound.toml``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import default

from wizard.catalogue.inbound import TextBounce, inbound_rules
from wizard.inbound.body import part_text
from wizard.inbound.headers import addresses, own_message_id, raw_values
from wizard.inbound.parsed import Bounce

STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
ADDRESS = re.compile(r"<?([^\s<>@\"(),;:]+@[^\s<>@\"(),;:]+\.[a-z0-9-]+)>?", re.IGNORECASE)
FIELD = re.compile(r"^([A-Za-z0-9-]+)\s*:\s*(.*)$")
RETURNED_HEADERS = ("text/rfc822-headers", "message/rfc822-headers")


@dataclass(frozen=True)
class DeliveryReport:
    """What a DSN says: a bounce (failed, delayed), or ``bounce`` None for a success notice.

    ``explanation`` is a text bounce's own words, without the copy of our message.
    """

    bounce: Bounce | None
    explanation: str | None = None


def status_fields(part: Message) -> list[dict[str, str]]:
    """The blocks of a message/delivery-status part, as lower-case field → value."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            fields = {}
            for name, value in raw_items(block):
                fields.setdefault(name.lower(), " ".join(str(value).split()))
            blocks.append(fields)
        return blocks
    # A status part the parser left as text (wrongly encoded, or not split).
    text = part_text(part) if isinstance(payload, str) else ""
    blocks, fields, last = [], {}, None
    for line in text.split("\n"):
        if not line.strip():
            if fields:
                blocks.append(fields)
            fields, last = {}, None
        elif line[0] in " \t" and last:
            fields[last] += " " + line.strip()
        elif match := FIELD.match(line):
            last = match.group(1).lower()
            fields.setdefault(last, match.group(2).strip())
    if fields:
        blocks.append(fields)
    return blocks


def raw_items(block: Message) -> list[tuple[str, str]]:
    try:
        return [(name, str(value)) for name, value in block.items()]
    except Exception:  # a broken field: read the block's raw text
        return list(block.raw_items())


def recipient_address(fields: dict[str, str]) -> str | None:
    for name in ("final-recipient", "original-recipient"):
        value = fields.get(name, "")
        address = value.split(";", 1)[-1].strip().strip("<>").strip().lower()
        if "@" in address:
            return address
    return None


def chosen_block(blocks: list[dict[str, str]], failed_actions: frozenset[str]) -> dict[str, str] | None:
    recipients = [block for block in blocks if "action" in block or recipient_address(block)]
    for action in ("failed", "delayed"):
        for block in recipients:
            if block.get("action", "").lower() == action and action in failed_actions:
                return block
    return recipients[0] if recipients else None


def status_of(fields: dict[str, str], action: str) -> str:
    for name in ("status", "diagnostic-code"):
        match = STATUS_CODE.search(fields.get(name, ""))
        if match:
            return match.group(1)
    return "5.0.0" if action == "failed" else "4.0.0"


def returned_message_id(report: Message) -> str | None:
    """The Message-ID of the returned message (or of its headers) in the report."""
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                return own_message_id(inner)
        elif content_type in RETURNED_HEADERS:
            return headers_message_id(part_text(part))
    return None


def headers_message_id(text: str) -> str | None:
    return own_message_id(HeaderParser(policy=default).parsestr(text.lstrip("\n"), headersonly=True))


def is_delivery_report(message: Message) -> bool:
    rules = inbound_rules()
    return message.get_content_type() == "multipart/report" and \
        str(message.get_param("report-type", "")).lower() in rules.report_types


def read_delivery_report(message: Message) -> DeliveryReport | None:
    """The DSN's report (None when ``message`` is not a DSN)."""
    if not is_delivery_report(message):
        return None
    rules = inbound_rules()
    status_part = next((part for part in message.walk() if part.get_content_type() == "message/delivery-status"), None)
    block = chosen_block(status_fields(status_part), rules.failed_actions) if status_part is not None else None
    action = (block or {}).get("action", "failed").lower() or "failed"
    if action not in rules.failed_actions:
        return DeliveryReport(bounce=None)
    recipient = recipient_address(block or {}) or next(iter(failed_recipients(message)), "")
    status = status_of(block or {}, action)
    return DeliveryReport(bounce=Bounce(
        recipient=recipient, status=status, action=action,
        permanent=status.startswith("5") and action == "failed",
        original_message_id=returned_message_id(message),
    ))


def failed_recipients(message: Message) -> list[str]:
    """Exim's ``X-Failed-Recipients`` header (addresses, lower-case)."""
    found = []
    for value in raw_values(message, "X-Failed-Recipients"):
        found.extend(address.lower() for address in ADDRESS.findall(value))
    return found


def read_text_bounce(message: Message, plain: str | None) -> DeliveryReport | None:
    """A bounce in an MTA's own words (no delivery-status part), or None."""
    rules = inbound_rules()
    senders = addresses(message, "From")
    if plain is None or not senders or senders[0].split("@")[0] not in rules.mailer_local_parts:
        return None
    for wording in rules.text_bounces:
        match = wording.phrase.search(plain)
        if match:
            copy = wording.copy_marker.search(plain, match.end())
            return DeliveryReport(bounce=text_bounce(message, plain, match.end(), wording),
                                  explanation=plain[:copy.start()] if copy else plain)
    return None


def text_bounce(message: Message, plain: str, after: int, wording: TextBounce) -> Bounce:
    copy = wording.copy_marker.search(plain, after)
    explanation = plain[after:copy.start() if copy else len(plain)]
    address = ADDRESS.search(explanation)
    recipient = next(iter(failed_recipients(message)), None) or (address.group(1).lower() if address else "")
    code = STATUS_CODE.search(explanation)
    status = code.group(1) if code else wording.default_status
    original = headers_message_id(plain[copy.end():]) if copy else None
    return Bounce(recipient=recipient, status=status, action=wording.action,
                  permanent=status.startswith("5") and wording.action == "failed", original_message_id=original)
