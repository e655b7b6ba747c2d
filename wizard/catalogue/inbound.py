"""What is known about mail that comes back (``inbound.toml``), compiled once.

``wizard.inbound`` reads its quote markers, auto-reply headers and subjects,
text-bounce wordings and charset fallbacks here, so a new client's quoting
style or a new language is a line of data, not a new branch of code.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

INBOUND_FILE = Path(__file__).resolve().parent / "inbound.toml"
FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(frozen=True)
class TextBounce:
    """A bounce wording of an MTA that sends no delivery-status part."""

    name: str
    phrase: re.Pattern
    action: str
    default_status: str
    copy_marker: re.Pattern


@dataclass(frozen=True)
class InboundRules:
    attributions: tuple[re.Pattern, ...]
    separators: tuple[re.Pattern, ...]
    sent_from: tuple[re.Pattern, ...]
    signature_delimiters: tuple[re.Pattern, ...]
    sender_field: re.Pattern
    other_field: re.Pattern
    header_block_lookahead: int
    header_block_min_fields: int
    drop_classes: frozenset[str]
    drop_blockquote_types: frozenset[str]
    cut_ids: frozenset[str]
    invisible_tags: frozenset[str]
    block_tags: frozenset[str]
    auto_submitted_header: str
    marker_headers: tuple[str, ...]
    precedence_auto: frozenset[str]
    auto_reply_subjects: tuple[re.Pattern, ...]
    report_types: frozenset[str]
    failed_actions: frozenset[str]
    mailer_local_parts: frozenset[str]
    text_bounces: tuple[TextBounce, ...]
    charset_supersets: dict[str, str]
    charset_fallbacks: tuple[str, ...]


def _compiled(patterns: list[str]) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(pattern, FLAGS) for pattern in patterns)


def _field_line(names: list[str]) -> re.Pattern:
    """A header line of a quoted message: ``From:``, ``*Von:*``, ``发件人：`` …"""
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"^\*?\s*(?:{alternatives})\s*\*?\s*[:：]", FLAGS)


def _lower(values: list[str]) -> frozenset[str]:
    return frozenset(value.lower() for value in values)


@lru_cache(maxsize=1)
def inbound_rules() -> InboundRules:
    """The rules of ``inbound.toml``, compiled (read once per process)."""
    with open(INBOUND_FILE, "rb") as handle:
        raw = tomllib.load(handle)
    quotes, html, auto, bounce, charsets = raw["quotes"], raw["html"], raw["auto_reply"], raw["bounce"], raw["charsets"]
    return InboundRules(
        attributions=_compiled(quotes["attributions"]),
        separators=_compiled(quotes["separators"]),
        sent_from=_compiled(quotes["sent_from"]),
        signature_delimiters=_compiled(quotes["signature_delimiters"]),
        sender_field=_field_line(quotes["sender_fields"]),
        other_field=_field_line(quotes["other_fields"]),
        header_block_lookahead=int(quotes["header_block_lookahead"]),
        header_block_min_fields=int(quotes["header_block_min_fields"]),
        drop_classes=_lower(html["drop_classes"]),
        drop_blockquote_types=_lower(html["drop_blockquote_types"]),
        cut_ids=_lower(html["cut_ids"]),
        invisible_tags=_lower(html["invisible_tags"]),
        block_tags=_lower(html["block_tags"]),
        auto_submitted_header=auto["auto_submitted_header"],
        marker_headers=tuple(auto["marker_headers"]),
        precedence_auto=_lower(auto["precedence_auto"]),
        auto_reply_subjects=_compiled(auto["subjects"]),
        report_types=_lower(bounce["report_types"]),
        failed_actions=_lower(bounce["failed_actions"]),
        mailer_local_parts=_lower(bounce["mailer_local_parts"]),
        text_bounces=tuple(
            TextBounce(entry["name"], re.compile(entry["phrase"], FLAGS), entry["action"], entry["default_status"],
                       re.compile(entry["copy_marker"], FLAGS | re.MULTILINE))
            for entry in bounce["text"]
        ),
        charset_supersets={key.lower(): value for key, value in charsets["supersets"].items()},
        charset_fallbacks=tuple(charsets["fallbacks"]),
    )
