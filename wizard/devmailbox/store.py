"""The dev mailbox's storage: a plain Maildir directory.

Maildir (via the stdlib ``mailbox`` module) needs no locking — each message is
written to ``tmp/`` and renamed into ``new/`` — so the SMTP server thread can
deliver while the web app or a CLI reads, without coordination.  The SMTP
envelope is kept by prepending two ``X-Dev-Mailbox-Envelope-*`` headers, so
what the server *received* (which may differ from the From/To headers, e.g.
for Bcc) stays visible when the message is inspected later.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
import os
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

__all__ = [
    "ENVELOPE_FROM_HEADER",
    "ENVELOPE_TO_HEADER",
    "StoredMessage",
    "clear",
    "ensure_maildir",
    "get_message",
    "is_valid_key",
    "list_messages",
    "parse_stored",
    "save_message",
]

ENVELOPE_FROM_HEADER = "X-Dev-Mailbox-Envelope-From"
ENVELOPE_TO_HEADER = "X-Dev-Mailbox-Envelope-To"
_ENVELOPE_HEADERS = {ENVELOPE_FROM_HEADER.lower(), ENVELOPE_TO_HEADER.lower()}

# Keys arrive from URLs.  Maildir keys are made of digits, letters, dots and
# the host name, so this alphabet covers them (a host name holding "/" or ":"
# would be escaped by Maildir into a backslash form this refuses — not a
# real-world host name).  A leading dot is refused so "." and ".." (and
# Maildir's hidden sub-folders) can never be named.
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
# Maildir appends ":2,<flags>" (or "!2,..." on Windows) to files in cur/.
_INFO_SEPARATORS = (":", "!")


@dataclass(frozen=True)
class StoredMessage:
    """One delivered message, parsed for display."""

    key: str
    received_at: dt.datetime
    envelope_from: str
    envelope_to: list[str]
    subject: str | None
    from_header: str | None
    to_header: str | None
    date_header: str | None
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    text_body: str | None = None
    html_body: str | None = None


def ensure_maildir(maildir_path: Path | str) -> Path:
    """Create the Maildir (tmp/, new/, cur/) if missing; return its path."""
    root = Path(maildir_path)
    # mailbox.Maildir(create=True) only builds the sub-folders when the
    # top folder does not exist yet; an existing empty folder (say, one made
    # by a deploy script) would make every delivery fail.  0o700 matches the
    # stdlib: other local users have no business reading this mail.
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(mode=0o700, exist_ok=True)
    return root


def save_message(
    maildir_path: Path | str, envelope_from: str, envelope_to: list[str], data: bytes
) -> str:
    """Store a raw message with its envelope recorded; return the Maildir key."""
    newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    envelope = (
        _header_line(ENVELOPE_FROM_HEADER, envelope_from, newline)
        + _header_line(ENVELOPE_TO_HEADER, ", ".join(envelope_to), newline)
    )
    box = mailbox.Maildir(os.fspath(ensure_maildir(maildir_path)), factory=None, create=False)
    # Passing bytes (not an email.message.Message) stores the client's
    # message byte for byte, so what the inbox shows is what was sent.
    return box.add(envelope + data)


def list_messages(maildir_path: Path | str, limit: int = 200) -> list[StoredMessage]:
    """Return up to ``limit`` stored messages, newest first."""
    if limit <= 0:
        return []
    entries = []
    for path in _message_files(Path(maildir_path)):
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue  # deleted (e.g. by clear()) while we were listing
        entries.append((mtime, path))
    entries.sort(key=lambda item: (item[0], _delivery_order(_key_of(item[1].name))), reverse=True)
    messages = []
    for mtime, path in entries[:limit]:
        stored = _load(path, mtime)
        if stored is not None:
            messages.append(stored)
    return messages


def get_message(maildir_path: Path | str, key: str) -> StoredMessage | None:
    """Return the message stored under ``key``, or None if it is unknown or invalid."""
    if not is_valid_key(key):
        return None
    root = Path(maildir_path)
    for path in _message_files(root):
        if _key_of(path.name) == key:
            try:
                return _load(path, path.stat().st_mtime)
            except FileNotFoundError:
                return None
    return None


def clear(maildir_path: Path | str) -> None:
    """Delete every stored message (the Maildir itself stays)."""
    if not Path(maildir_path).is_dir():
        return
    box = mailbox.Maildir(os.fspath(maildir_path), factory=None, create=False)
    for key in box.keys():
        box.discard(key)


def is_valid_key(key: object) -> bool:
    """True when ``key`` looks like a Maildir key and cannot name another path."""
    return isinstance(key, str) and _KEY_PATTERN.fullmatch(key) is not None


def _header_line(name: str, value: str, newline: bytes) -> bytes:
    # Envelope addresses come from SMTP command lines, which cannot hold a
    # line break, but this module is also called directly: never let a value
    # start a new header.
    value = re.sub(r"[\r\n]+", " ", value)
    return f"{name}: {value}".encode("utf-8", "surrogateescape") + newline


def _message_files(root: Path):
    """Yield message files in new/ and cur/, skipping anything that is not a key."""
    for sub in ("new", "cur"):
        directory = root / sub
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            # Only regular files, and no symlinks: a planted link must not
            # make the inbox read a file outside the mailbox.
            if not entry.is_file(follow_symlinks=False):
                continue
            if not is_valid_key(_key_of(entry.name)):
                continue
            yield directory / entry.name


_STDLIB_KEY = re.compile(r"(\d+)\.M(\d+)P\d+Q(\d+)\.")


def _delivery_order(key: str) -> tuple[int, int, int, str]:
    """Tie-breaker for equal mtimes (coarse filesystems, fast deliveries).

    The stdlib names files "<seconds>.M<microseconds>P<pid>Q<counter>.<host>";
    the numbers must be compared as numbers ("M97" is earlier than "M549670").
    """
    match = _STDLIB_KEY.match(key)
    if match is None:
        return (0, 0, 0, key)
    seconds, micros, counter = (int(group) for group in match.groups())
    return (seconds, micros, counter, key)


def _key_of(filename: str) -> str:
    for separator in _INFO_SEPARATORS:
        if separator in filename:
            return filename.split(separator, 1)[0]
    return filename


def _load(path: Path, mtime: float) -> StoredMessage | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_stored(
        _key_of(path.name), dt.datetime.fromtimestamp(mtime, tz=dt.UTC), data
    )


def parse_stored(key: str, received_at: dt.datetime, data: bytes) -> StoredMessage:
    """Parse stored bytes into a StoredMessage; never raises on bad input."""
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
    except Exception:  # noqa: BLE001 - the parser is lenient, but be certain
        message = None

    if message is None:
        return StoredMessage(
            key=key,
            received_at=received_at,
            envelope_from="",
            envelope_to=[],
            subject=None,
            from_header=None,
            to_header=None,
            date_header=None,
            message_id=None,
            in_reply_to=None,
            references=None,
            headers=[],
            text_body=data.decode("utf-8", "replace"),
        )

    envelope_to_raw = _header(message, ENVELOPE_TO_HEADER) or ""
    text_body, html_body = _bodies(message, data)
    return StoredMessage(
        key=key,
        received_at=received_at,
        envelope_from=_header(message, ENVELOPE_FROM_HEADER) or "",
        envelope_to=[part.strip() for part in envelope_to_raw.split(",") if part.strip()],
        subject=_header(message, "Subject"),
        from_header=_header(message, "From"),
        to_header=_header(message, "To"),
        date_header=_header(message, "Date"),
        message_id=_header(message, "Message-ID"),
        in_reply_to=_header(message, "In-Reply-To"),
        references=_header(message, "References"),
        headers=_visible_headers(message),
        text_body=text_body,
        html_body=html_body,
    )


def _header(message: EmailMessage, name: str) -> str | None:
    """The first ``name`` header for display, or None when absent."""
    wanted = name.lower()
    for raw_name, raw_value in message.raw_items():
        if raw_name.lower() == wanted:
            return _display_value(message, raw_name, raw_value)
    return None


def _visible_headers(message: EmailMessage) -> list[tuple[str, str]]:
    return [
        (raw_name, _display_value(message, raw_name, raw_value))
        for raw_name, raw_value in message.raw_items()
        if raw_name.lower() not in _ENVELOPE_HEADERS
    ]


def _display_value(message: EmailMessage, name: str, raw_value: str) -> str:
    """Decoded header text, or what was actually sent when it is malformed.

    The default policy "repairs" broken headers (``From: <<<`` reads back as
    ``<>``); in a debugging inbox that hides exactly what the user needs to
    see, so defective or unparsable headers are shown as sent (unfolded).
    """
    try:
        parsed = message.policy.header_fetch_parse(name, raw_value)
        if not getattr(parsed, "defects", None):
            return _raw_text(parsed)
    except Exception:  # noqa: BLE001 - malformed headers must not break the inbox
        pass
    return _raw_text(re.sub(r"\r?\n(?=[ \t])", "", str(raw_value))).strip()


def _raw_text(value: object) -> str:
    # Undecodable bytes in headers come back as surrogate escapes; make
    # them printable instead of letting them blow up a template later.
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _bodies(message: EmailMessage, data: bytes) -> tuple[str | None, str | None]:
    text_body = _body_text(message, "plain")
    html_body = _body_text(message, "html")
    if text_body is None and html_body is None and not message.is_multipart():
        # Neither part could be decoded (unknown charset, broken encoding,
        # a non-text type…): show the raw body rather than an empty message.
        text_body = _raw_body(data)
    return text_body, html_body


def _body_text(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except Exception:  # noqa: BLE001
        return None
    if part is None:
        return None
    try:
        content = part.get_content()
    except Exception:  # noqa: BLE001 - e.g. an unknown charset
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: BLE001
            return None
        if not isinstance(payload, bytes):
            return None
        content = payload.decode("utf-8", "replace")
    if not isinstance(content, str):
        return None
    # Bodies keep the wire's CRLF; templates and tests want plain newlines.
    return content.replace("\r\n", "\n")


def _raw_body(data: bytes) -> str:
    # The header block ends at the first blank line, whichever line ending
    # the sender used.
    ends = [
        (index, len(separator))
        for separator in (b"\r\n\r\n", b"\n\n")
        if (index := data.find(separator)) != -1
    ]
    if not ends:
        return data.decode("utf-8", "replace")
    index, length = min(ends)
    return data[index + length :].decode("utf-8", "replace").replace("\r\n", "\n")
