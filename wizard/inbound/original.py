"""An inbound message as the merchant may look at it: a few headers, the text, and sanitized HTML.

The HTML is cleaned with nh3 (scripts, event handlers, forms, frames and
styles with URLs are gone; links get ``rel="noopener noreferrer"``) and is
shown in a sandboxed frame with its own strict content policy. Remote
images stay blocked — they tell the sender when and where the mail was read —
unless the merchant asks for them. No Flask.
"""
from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import nh3

__all__ = ["Original", "read_original", "sanitized_html"]

SHOWN_HEADERS = ("From", "To", "Cc", "Date", "Subject")


@dataclass(frozen=True)
class Original:
    headers: tuple[tuple[str, str], ...]
    text: str
    html: str | None  # the raw HTML part (sanitize before showing)


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None
    except (LookupError, KeyError, ValueError, AssertionError):
        return None


def read_original(raw: bytes) -> Original:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    headers = []
    for name in SHOWN_HEADERS:
        try:
            value = message.get(name)
        except (ValueError, IndexError):  # a header the parser cannot read
            value = None
        if value:
            headers.append((name, str(value)))
    return Original(tuple(headers), _body(message, "plain") or "", _body(message, "html"))


def sanitized_html(html: str, *, remote_images: bool = False) -> str:
    """``html`` safe to show in a sandboxed frame."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and not value.startswith("data:") and not remote_images:
            return None  # no tracking pixels unless asked
        return value

    return nh3.clean(html, attribute_filter=keep, url_schemes={"http", "https", "mailto", "data"},
                     clean_content_tags={"script", "style", "head", "title"})
