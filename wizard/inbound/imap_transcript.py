"""A redacted record of an IMAP dialogue (what "Test IMAP" shows).

Redaction is structural, as in the SMTP transcript (``wizard.smtp.transcript``):
while the client logs in, the first line it sends keeps only its tag and
command (``a1 LOGIN [redacted]``, ``a1 AUTHENTICATE XOAUTH2``), every other
line it sends is the marker, and so is every continuation (``+ …``) the server
sends back — Google's error report after a refused token included. The
server's final answer to the login and everything outside the login are kept
as the server sent them. Literal data (message bodies) never passes through
the line reader, so it never reaches the transcript.
"""
from __future__ import annotations

import re

REDACTED = "[redacted]"
_COMMAND = re.compile(r"^(\S+) (LOGIN|AUTHENTICATE)(?: ([A-Za-z0-9-]{1,20}))?", re.IGNORECASE)


class ImapTranscript:
    """Collects ``C: …`` / ``S: …`` lines; the session marks the login (``authenticating``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._authenticating = False
        self._login_started = False

    @property
    def authenticating(self) -> bool:
        return self._authenticating

    @authenticating.setter
    def authenticating(self, value: bool) -> None:
        self._authenticating = bool(value)
        self._login_started = False

    def client(self, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if not self._authenticating:
            if text:
                self.lines.append("C: " + text)
            return
        if self._login_started:
            if text:
                self.lines.append("C: " + REDACTED)
            return
        self._login_started = True
        found = _COMMAND.match(text)
        if found is None:
            self.lines.append("C: " + REDACTED)
        elif found.group(2).upper() == "LOGIN":
            self.lines.append(f"C: {found.group(1)} LOGIN {REDACTED}")
        else:
            self.lines.append(f"C: {found.group(1)} AUTHENTICATE {(found.group(3) or '').upper()}".rstrip())

    def server(self, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if self._authenticating and text.startswith("+"):
            self.lines.append(f"S: + {REDACTED}")
            return
        self.lines.append("S: " + text)
