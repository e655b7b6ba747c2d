"""A redacted record of an SMTP dialogue.

Redaction is structural, never a search for the password in the text: while
the client authenticates, every line it sends is replaced by a fixed marker
(only the ``AUTH`` command and its mechanism stay), and so is every
continuation the server sends back (``334`` challenges, which carry the
other half of LOGIN and CRAM-MD5, and Google's error report after a
rejected XOAUTH2 token). So ``AUTH XOAUTH2 <token payload>`` is kept as
``AUTH XOAUTH2 [redacted]``, and the client's empty answer to Google's
report is a marker too. Message content is summarised by its
size. Everything else — greetings, EHLO lines, the final reply to AUTH —
is kept exactly as the server sent it, so a word in a banner that happens
to equal the password is neither masked nor otherwise singled out.

The probe's recording client feeds it (Test Connection, the test email and
``smtp-test`` all run the probe); the outbox sender keeps no transcript,
only each failure's final reply, which is never part of the exchange above.
"""
from __future__ import annotations

import re

REDACTED = "[redacted]"
AUTH_CONTINUATION = 334


class Transcript:
    """Collects ``C: …`` / ``S: …`` lines; the caller marks the AUTH exchange
    (``authenticating``) and the message content (``sending_data``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._authenticating = False
        self._auth_started = False
        self.sending_data = False

    @property
    def authenticating(self) -> bool:
        return self._authenticating

    @authenticating.setter
    def authenticating(self, value: bool) -> None:
        # Each exchange starts afresh: its first client line is the AUTH command.
        self._authenticating = bool(value)
        self._auth_started = False

    def client(self, raw: bytes | str) -> None:
        if self.sending_data:
            self.lines.append(f"C: [message content, {len(raw)} bytes]")
            return
        if not self._authenticating:
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            self.lines.append("C: " + text.rstrip("\r\n"))
            return
        self.lines.append("C: " + self._auth_line(raw))

    def _auth_line(self, raw: bytes | str) -> str:
        """The first line of the exchange keeps ``AUTH <mechanism>``; every other is the marker."""
        if self._auth_started:
            return REDACTED
        self._auth_started = True
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
        words = text.rstrip("\r\n").split(" ")
        mechanism = words[1] if len(words) >= 2 else ""
        if words[0].upper() != "AUTH" or not re.fullmatch(r"[A-Za-z0-9-]{1,20}", mechanism):
            return REDACTED
        return f"AUTH {mechanism.upper()}" + (f" {REDACTED}" if len(words) > 2 else "")

    def server(self, code: int, message: bytes | str) -> None:
        if self._authenticating and code == AUTH_CONTINUATION:
            self.lines.append(f"S: {code} {REDACTED}")
            return
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        for line in text.splitlines() or [""]:
            self.lines.append(f"S: {code} {line}".rstrip())

    def note(self, text: str) -> None:
        self.lines.append(f"-- {text}")


ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")


def split_enhanced(text: str) -> tuple[str | None, str]:
    """``'5.7.8 Username and Password not accepted'`` -> ``('5.7.8', '…')``."""
    match = ENHANCED.match(text.strip())
    if not match:
        return None, text.strip()
    return match.group(1), text.strip()
