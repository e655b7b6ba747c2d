"""A redacted record of an SMTP dialogue.

Whatever the client sends while authenticating is replaced by
``[redacted]`` (only the command and mechanism stay), message content is
summarised by its size, and any occurrence of the password or its base64
forms in any line is masked too, so a transcript can be stored and shown.
"""
from __future__ import annotations

import base64
import re

REDACTED = "[redacted]"


def secret_forms(username: str, password: str) -> list[str]:
    """The password and the base64 strings that could carry it on the wire."""
    if not password:
        return []
    forms = {password}
    for payload in (
        password,
        f"\0{username}\0{password}",
        f"{username}\0{username}\0{password}",
    ):
        encoded = base64.b64encode(payload.encode("utf-8")).decode("ascii")
        forms.add(encoded)
    return sorted(forms, key=len, reverse=True)


class Transcript:
    """Collects ``C: …`` / ``S: …`` lines with secrets removed."""

    def __init__(self, username: str = "", password: str = ""):
        self.lines: list[str] = []
        self.authenticating = False
        self.sending_data = False
        self._secrets = secret_forms(username, password)

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def client(self, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if self.sending_data:
            self.lines.append(f"C: [message content, {len(raw)} bytes]")
            return
        text = text.rstrip("\r\n")
        if self.authenticating:
            words = text.split(" ")
            if words[0].upper() == "AUTH" and len(words) >= 2:
                text = " ".join(words[:2]) + (f" {REDACTED}" if len(words) > 2 else "")
            else:
                text = REDACTED
        self.lines.append("C: " + self._mask(text))

    def server(self, code: int, message: bytes | str) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        for line in text.splitlines() or [""]:
            self.lines.append(self._mask(f"S: {code} {line}".rstrip()))

    def note(self, text: str) -> None:
        self.lines.append(self._mask(f"-- {text}"))


ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")


def split_enhanced(text: str) -> tuple[str | None, str]:
    """``'5.7.8 Username and Password not accepted'`` -> ``('5.7.8', '…')``."""
    match = ENHANCED.match(text.strip())
    if not match:
        return None, text.strip()
    return match.group(1), text.strip()
