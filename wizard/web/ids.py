"""Row ids from URLs and query strings, bounded to what the id columns hold.

An id too large for the database (a 20-digit number, 10,000 digits, or a
digit that is not ASCII like "²") is simply no such row: 404, not a crash.
"""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

# Primary keys are 32-bit INTEGER on PostgreSQL; SQLite allows more, but no
# row here gets near this.
MAX_ID = 2**31 - 1


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` that does not match numbers beyond ``MAX_ID``."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def parse_id(text: str | None) -> int | None:
    """``text`` as a row id, or None when it is not one (never raises)."""
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
