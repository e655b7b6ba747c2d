"""Only what the sender wrote now: the quoted history taken out of a plain-text body.

The history starts at the first of: an attribution line ("On … wrote:", in the
languages of ``inbound.toml``, also wrapped over two lines), an
"-----Original Message-----" line, an Outlook header block (From / Sent / To /
Subject, localized), a signature delimiter ("-- ") or a "Sent from my iPhone"
line. Everything from there on is dropped.

An attribution followed by ``>`` quotes *and* new text further down is an
inline (or bottom-posted) answer: the attribution goes, the answers stay.
Lines quoted with ``>`` are never the sender's new words and are always
dropped; each run of them leaves one blank line between the answers.
"""
from __future__ import annotations

import re

from wizard.catalogue.inbound import InboundRules, inbound_rules

QUOTED = re.compile(r"^\s*>")
DIGIT = re.compile(r"\d")
UNDERLINE_OR_DASHES = re.compile(r"^\s*[_\-=]{10,}\s*$")
BLANK_RUNS = re.compile(r"\n{3,}")


def is_quoted(line: str) -> bool:
    return bool(QUOTED.match(line))


def is_attribution(text: str, rules: InboundRules) -> bool:
    text = text.strip().replace("\u00a0", " ")
    if not DIGIT.search(text) or len(text) > 400:
        return False
    return any(pattern.match(text) for pattern in rules.attributions)


def attribution_length(lines: list[str], index: int, rules: InboundRules) -> int:
    """How many lines (0, 1 or 2) the attribution starting at ``index`` spans."""
    if is_attribution(lines[index], rules):
        return 1
    if index + 1 < len(lines) and lines[index + 1].strip() and not is_quoted(lines[index + 1]):
        if is_attribution(f"{lines[index].strip()} {lines[index + 1].strip()}", rules):
            return 2
    return 0


def starts_header_block(lines: list[str], index: int, rules: InboundRules) -> bool:
    if not rules.sender_field.match(lines[index].strip()):
        return False
    following = lines[index + 1:index + 1 + rules.header_block_lookahead]
    fields = sum(1 for line in following if rules.other_field.match(line.strip()))
    return fields >= rules.header_block_min_fields


def is_hard_marker(line: str, rules: InboundRules) -> bool:
    """A separator, signature delimiter or "Sent from" line: the new text ends here."""
    stripped = line.strip()
    patterns = (*rules.separators, *rules.signature_delimiters, *rules.sent_from)
    return any(pattern.match(stripped) for pattern in patterns)


def has_answer_after(lines: list[str], start: int, rules: InboundRules) -> bool:
    """Whether ``>`` quotes come first after ``start`` and new text follows them."""
    seen_quote = False
    for index in range(start, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        if is_quoted(line):
            seen_quote = True
            continue
        if not seen_quote or is_hard_marker(line, rules) or starts_header_block(lines, index, rules) \
                or attribution_length(lines, index, rules):
            return False
        return True
    return False


def history_start(lines: list[str], rules: InboundRules) -> tuple[int, set[int]]:
    """The index where the history starts, and the inline attribution lines to drop."""
    inline_attributions: set[int] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or is_quoted(line):
            index += 1
            continue
        if is_hard_marker(line, rules) or starts_header_block(lines, index, rules):
            return index, inline_attributions
        span = attribution_length(lines, index, rules)
        if span:
            if not has_answer_after(lines, index + span, rules):
                return index, inline_attributions
            inline_attributions.update(range(index, index + span))
            index += span
            continue
        index += 1
    return len(lines), inline_attributions


def strip_history(text: str) -> str:
    """``text`` without quoted history, signature and trailing or leading blank lines."""
    rules = inbound_rules()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end, dropped = history_start(lines, rules)
    # An Outlook block is often ruled off above ("________"): the rule goes with it.
    while end > 0 and (not lines[end - 1].strip() or UNDERLINE_OR_DASHES.match(lines[end - 1])):
        end -= 1
    kept: list[str] = []
    for index, line in enumerate(lines[:end]):
        if index in dropped:
            continue
        if is_quoted(line):
            if kept and kept[-1] != "":
                kept.append("")
            continue
        kept.append(line.rstrip())
    return BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip("\n")
