"""The email a queued outbox row stands for, built with the ``email`` package.

Headers go through ``EmailMessage`` and ``Address`` objects, which refuse
CR/LF in values, so no field can inject a header. The same row always gives
the same message (Date is the queueing time, the Message-ID the stored one),
so a retry after a crash is the same email, recognisable as such.
"""
from __future__ import annotations

import email.policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime

from wizard.models.outbox import OutboxEmail
from wizard.outbox.times import as_utc
from wizard.smtp.message import sender_address

ONE_CLICK = "List-Unsubscribe=One-Click"


class _CachingHeaderRegistry(HeaderRegistry):
    """``HeaderRegistry`` that remembers what it built.

    The standard registry creates a new header class on every header it
    parses, and parses values that repeat in every email (Content-Type,
    MIME-Version, the store's From and Reply-To). Building a message was
    most of a worker's CPU time per email; this makes it several times
    cheaper. Header objects are immutable once made, so sharing them between
    messages is safe; the policy still refuses CR/LF before they are made.
    """

    VALUE_CACHE_SIZE = 1024

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}
        self._values: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value) -> BaseHeader:
        if type(value) is not str:
            return self[name](name, value)
        key = (name.lower(), value)
        header = self._values.get(key)
        if header is None or header.name != name:
            if len(self._values) >= self.VALUE_CACHE_SIZE:
                self._values.clear()
            header = self._values[key] = self[name](name, value)
        return header


# The default policy (RFC 5322, CR/LF refused in header values) with the
# caching registry; the wire form uses CRLF line ends like ``email.policy.SMTP``.
POLICY = email.policy.default.clone(header_factory=_CachingHeaderRegistry())
SMTP_POLICY = POLICY.clone(linesep="\r\n")


def _address(text: str) -> Address:
    """``text`` as a bare address; ValueError when it has no local part or domain."""
    local, at, domain = text.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{text!r} is not an email address")
    if not text.isascii():
        # The wizard accepts ASCII addresses only (no SMTPUTF8), like its checks.
        raise ValueError(f"{text!r} is not an ASCII email address")
    return Address(username=local, domain=domain)


def build_message(email: OutboxEmail) -> EmailMessage:
    """The message for ``email``: From with the sender's name, To, Subject,
    Date, Message-ID, threading headers, Reply-To, text and HTML
    alternatives, and one-click unsubscribe headers (RFC 8058) when the row
    has an unsubscribe URL."""
    message = EmailMessage(policy=POLICY)
    # Addresses go in as text formatted by Address objects (quoting done
    # right): the header is parsed from text either way, and text lets the
    # registry reuse the store's From and Reply-To from the previous email.
    message["From"] = str(sender_address(email.sender_name, email.sender_email))
    message["To"] = str(_address(email.recipient))
    if email.reply_to:
        message["Reply-To"] = str(_address(email.reply_to))
    message["Subject"] = email.subject
    message["Date"] = format_datetime(as_utc(email.created_at))
    message["Message-ID"] = email.message_id
    if email.in_reply_to:
        message["In-Reply-To"] = email.in_reply_to
    if email.references:
        message["References"] = email.references
    if email.unsubscribe_url:
        if any(c in email.unsubscribe_url for c in "<>\r\n \t"):
            raise ValueError("the unsubscribe URL cannot go into a header")
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = ONE_CLICK
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    return message


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP (CRLF line ends, long lines folded)."""
    return message.as_bytes(policy=SMTP_POLICY)

