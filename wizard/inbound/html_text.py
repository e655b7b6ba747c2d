"""An HTML email body as plain text, without the quoted history clients mark up.

Gmail, Apple Mail, Thunderbird and Outlook mark the answered message in their
HTML (``gmail_quote``, ``<blockquote type="cite">``, ``moz-cite-prefix``,
``divRplyFwdMsg`` …; the list is in ``inbound.toml``): those elements are
dropped, and at Outlook's markers everything after them too. Line breaks
follow ``<br>`` and the block elements; other whitespace collapses as a
browser would show it.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser

from wizard.catalogue.inbound import InboundRules, inbound_rules

VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                       "track", "wbr"})
SPACES = re.compile(r"[ \t\r\n\f\u00a0\u200b]+")


class QuoteDroppingText(HTMLParser):
    """Collects the visible text of the elements that are not history."""

    def __init__(self, rules: InboundRules):
        super().__init__(convert_charrefs=True)
        self.rules = rules
        self.chunks: list[str] = []
        # Inside a dropped or invisible element: its tag and nesting depth. Only
        # that tag is counted, so unclosed <p> or <li> inside cannot hide the rest.
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.preformatted = 0
        self.cut = False  # past an Outlook history marker: nothing more is text

    def is_history(self, tag: str, attributes: dict[str, str]) -> bool:
        classes = set(attributes.get("class", "").lower().split())
        if classes & self.rules.drop_classes:
            return True
        return tag == "blockquote" and attributes.get("type", "").lower() in self.rules.drop_blockquote_types

    def line_break(self) -> None:
        if self.chunks and not self.chunks[-1].endswith("\n"):
            self.chunks.append("\n")

    def handle_starttag(self, tag: str, attrs) -> None:
        if self.cut:
            return
        attributes = {name.lower(): value or "" for name, value in attrs}
        if attributes.get("id", "").lower() in self.rules.cut_ids:
            self.cut = True
            return
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        if tag in self.rules.invisible_tags or self.is_history(tag, attributes):
            if tag not in VOID_TAGS:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "br":
            self.chunks.append("\n")
        elif tag in self.rules.block_tags:
            self.line_break()
            if tag == "li":
                self.chunks.append("- ")
            if tag == "pre":
                self.preformatted += 1

    def handle_startendtag(self, tag: str, attrs) -> None:
        # <br/>, <div/>: a start tag without content.
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and not self.cut:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.cut or tag in VOID_TAGS:
            return
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag in self.rules.block_tags:
            self.line_break()
            if tag == "pre" and self.preformatted:
                self.preformatted -= 1

    def handle_data(self, data: str) -> None:
        if self.cut or self.skip_depth:
            return
        if self.preformatted:
            self.chunks.append(data.replace("\r\n", "\n"))
            return
        text = SPACES.sub(" ", data)
        if not self.chunks or self.chunks[-1].endswith("\n"):
            text = text.lstrip(" ")
            if not text and "\u00a0" in data:
                # Outlook's empty paragraph (<p>&nbsp;</p>) is a blank line on screen.
                text = " "
        if text:
            self.chunks.append(text)


def html_to_text(html: str) -> str:
    """The visible text of ``html`` that is not quoted history, one line per line."""
    parser = QuoteDroppingText(inbound_rules())
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; whatever was read so far is kept
        pass
    lines = [line.strip(" ") for line in "".join(parser.chunks).split("\n")]
    return "\n".join(lines)
