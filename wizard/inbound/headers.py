"""Reading a received message's headers without ever failing on a broken one.

The stdlib's ``email.policy.default`` decodes RFC 2047 words and parses
addresses well, but on some malformed headers its parser raises; every
reader here falls back to the header's raw text, read with ``email.utils``
and ``email.header``, which do not.
"""
from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses

# A Message-ID between angle brackets; without them, any word with an "@".
BRACKETED_ID = re.compile(r"<\s*([^<>\s]+?)\s*>")
BARE_ID = re.compile(r"[^\s<>,;()\"]+@[^\s<>,;()\"]+")
WHITESPACE = re.compile(r"\s+")
LOOSE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# reply+TOKEN@domain: the address our outgoing email asks replies to go to.
REPLY_ADDRESS = re.compile(r"^reply\+([a-z0-9]+)@[^@\s]+$", re.IGNORECASE)
REPLY_TOKEN_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To")


def raw_values(message: EmailMessage, name: str) -> list[str]:
    """The raw (undecoded, unfolded) values of every ``name`` header."""
    wanted = name.lower()
    values = []
    for key, value in message.raw_items():
        if key.lower() == wanted:
            text = value if isinstance(value, str) else str(value)
            values.append(re.sub(r"\r?\n(?=[ \t])", "", text))
    return values


def decoded_value(message: EmailMessage, name: str) -> str | None:
    """The first ``name`` header as text (RFC 2047 decoded), whitespace collapsed."""
    try:
        value = message.get(name)
        text = None if value is None else str(value)
    except Exception:  # a broken header must not stop the parse
        raws = raw_values(message, name)
        if not raws:
            return None
        try:
            text = str(make_header(decode_header(raws[0])))
        except Exception:
            text = raws[0]
    if text is None:
        return None
    # Raw 8-bit bytes the parser could not decode come back as surrogates.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return WHITESPACE.sub(" ", text).strip()


def addresses(message: EmailMessage, name: str) -> list[str]:
    """Every addr-spec in the ``name`` headers, lower-case, in order."""
    found: list[str] = []
    try:
        for header in message.get_all(name) or ():
            for address in getattr(header, "addresses", ()):
                if address.username and address.domain:
                    found.append(f"{address.username}@{address.domain}".lower())
        if found:
            return found
    except Exception:  # fall back to the raw text below
        found = []
    raws = raw_values(message, name)
    for _display, spec in getaddresses(raws):
        spec = spec.strip().lower()
        if "@" in spec and not WHITESPACE.search(spec):
            found.append(spec)
    if not found:
        # Unbalanced quotes or brackets defeat both parsers; an addr-spec is still there.
        found = [spec.lower() for raw in raws for spec in LOOSE_ADDRESS.findall(raw)]
    return found


def sender(message: EmailMessage) -> str | None:
    """The From addr-spec, lower-case (None if absent or unparseable)."""
    found = addresses(message, "From")
    return found[0] if found else None


def message_ids(value: str) -> list[str]:
    """The Message-IDs in one header value, without angle brackets.

    Comments and other junk between the ids are skipped; a header whose
    client left the brackets out still gives its ids.
    """
    bracketed = BRACKETED_ID.findall(value)
    if bracketed:
        return [found for found in bracketed if "@" in found or "." in found]
    return [found.strip(".:") for found in BARE_ID.findall(value)]


def answered_ids(message: EmailMessage) -> tuple[str, ...]:
    """In-Reply-To then References ids, de-duplicated, in order."""
    ordered: dict[str, None] = {}
    for name in ("In-Reply-To", "References"):
        for value in raw_values(message, name):
            for found in message_ids(value):
                ordered.setdefault(found, None)
    return tuple(ordered)


def own_message_id(message: EmailMessage) -> str | None:
    """This message's Message-ID, without angle brackets."""
    for value in raw_values(message, "Message-ID"):
        found = message_ids(value)
        if found:
            return found[0]
        if value.strip():
            return value.strip()
    return None


def reply_token(message: EmailMessage) -> str | None:
    """The token of the first ``reply+TOKEN@`` address in To, Cc, Delivered-To, X-Original-To."""
    for name in REPLY_TOKEN_HEADERS:
        for address in addresses(message, name):
            match = REPLY_ADDRESS.match(address)
            if match:
                return match.group(1).lower()
    return None
