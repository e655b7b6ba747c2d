"""Which characters can never be part of a header value, in one place.

A header is one line. CR and LF are the obvious line breaks, but Python's
``email`` package (``str.splitlines``) also breaks lines at U+2028 LINE
SEPARATOR, U+2029 PARAGRAPH SEPARATOR, U+0085 NEXT LINE and the C0 file,
group and record separators — and refuses a header value containing any of
them. A store name with U+2028 was accepted at sign-up and then broke every
test email. So every form field whose value can reach a header refuses these
characters (``breaks_header``), and the message builders fold whatever older
rows still hold (``fold_header``) instead of failing.
"""
from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (U+0085 among them), and the Unicode line and
# paragraph separators: none is visible, and each either breaks a header line
# or is refused by the ``email`` package.
HEADER_BREAKING_CLASS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
HEADER_BREAKING = re.compile(f"[{HEADER_BREAKING_CLASS}]")
_RUN = re.compile(f"\\s*[{HEADER_BREAKING_CLASS}]+\\s*")


def breaks_header(text: str | None) -> bool:
    """True when ``text`` holds a character that no header value may contain."""
    return bool(text) and HEADER_BREAKING.search(text) is not None


def fold_header(text: str | None) -> str:
    """``text`` on one line: every run of such characters becomes one space."""
    return _RUN.sub(" ", text or "").strip()
