"""Follow-up emails from templates: placeholders, limits, a text body and its HTML twin.

Plain Python (no Flask): the inbox's compose page, the template editor and
the tests all call it. Default wording is data in ``catalogue/templates.toml``;
a store's own wording lives in ``EmailTemplate`` rows and is checked here too.

Problems are reported per form field with a stable code, so the page can show
each one next to the field it belongs to, and tests can assert on the code.
"""
from __future__ import annotations

import html
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from wizard.smtp.header_text import HEADER_BREAKING, fold_header

TEMPLATES_FILE = Path(__file__).resolve().parent.parent / "catalogue" / "templates.toml"
KINDS = ("follow_up", "support_reply", "order_update", "reminder")
COMMON_PLACEHOLDERS = ("visitor_name", "store_name", "last_messages")
ORDER_PLACEHOLDERS = ("order_number", "carrier", "tracking_link")
ORDER_FIELD_LABELS = {"order_number": "order number", "carrier": "carrier", "tracking_link": "tracking link"}
MAX_SUBJECT_CHARS = 200
MAX_ORDER_FIELD_CHARS = 300
DEFAULT_MAX_BODY_CHARS = 20_000
# How many chat messages {last_messages} quotes: enough for context, short enough to read.
QUOTED_MESSAGES = 5
# What {visitor_name} becomes when the visitor gave no name ("Hi there,").
NAMELESS_VISITOR = "there"

# "{{" and "}}" are literal braces; "{name}" is a placeholder (names are short and on one line).
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\n]{0,60})\}")
# One line: no control characters, no Unicode line or paragraph separators.
_SUBJECT_FORBIDDEN = HEADER_BREAKING
_BODY_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_EDGE_BREAKS = re.compile(r"^(?:\s|<br>)+|(?:\s|<br>)+$")


@dataclass(frozen=True)
class TemplateText:
    """The wording of one kind of email: a subject and a body with placeholders."""

    kind: str
    label: str
    purpose: str
    subject: str
    body: str


@dataclass(frozen=True)
class Problem:
    """Something that stops the email from being sent, beside the ``field`` it concerns."""

    field: str  # subject | body | order_number | carrier | tracking_link
    code: str
    text: str


@dataclass(frozen=True)
class ChatLine:
    """One chat message to quote: who wrote it (visitor | merchant) and what."""

    author: str
    body: str


@dataclass
class ComposeValues:
    """What the placeholders stand for in one conversation."""

    store_name: str
    visitor_name: str | None = None
    messages: Sequence[ChatLine] = ()
    order_number: str = ""
    carrier: str = ""
    tracking_link: str = ""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_text: str
    body_html: str
    # The HTML body without the document around it (for a preview).
    html_fragment: str = field(default="", repr=False)


@lru_cache(maxsize=1)
def default_templates() -> dict[str, TemplateText]:
    """The catalogue's wording for every kind, in ``KINDS`` order."""
    with open(TEMPLATES_FILE, "rb") as handle:
        raw = tomllib.load(handle)
    missing = set(KINDS) - set(raw)
    if missing:
        raise ValueError(f"templates.toml: missing {sorted(missing)}")
    return {kind: TemplateText(kind, raw[kind]["label"], raw[kind]["purpose"], raw[kind]["subject"].strip(),
                               raw[kind]["body"].strip() + "\n")
            for kind in KINDS}


# A line of a default template that is an instruction to the merchant ("[Write your answer here.]").
PROMPT_LINE = re.compile(r"^\[[^\[\]\n]+\]$", re.MULTILINE)


def template_prompts() -> tuple[str, ...]:
    """Every instruction line of the default templates: text meant to be replaced, never sent."""
    found = (m.group(0) for t in default_templates().values() for m in PROMPT_LINE.finditer(t.body))
    return tuple(dict.fromkeys(found))


def prompts_left(body: str) -> list[Problem]:
    """A problem for each template instruction still in ``body``: sending waits until it is replaced."""
    lines = {line.strip() for line in normalise(body).split("\n")}
    return [Problem("body", "prompt_left", f"Replace “{prompt}” with your own words before sending.")
            for prompt in template_prompts() if prompt in lines]


def placeholders(kind: str) -> tuple[str, ...]:
    """The placeholders a template of ``kind`` may use."""
    return COMMON_PLACEHOLDERS + (ORDER_PLACEHOLDERS if kind == "order_update" else ())


def placeholder_help(kind: str) -> str:
    """A sentence listing the placeholders of ``kind``, for the forms."""
    return "Placeholders: " + ", ".join(f"{{{name}}}" for name in placeholders(kind)) + "."


def normalise(text: str) -> str:
    """Line endings as browsers send them (CR LF) become plain newlines."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _tokens(template: str) -> list[tuple[str, str]]:
    """Split ``template`` into ("text", literal) and ("field", name) pieces."""
    pieces: list[tuple[str, str]] = []
    position = 0
    for match in _TOKEN.finditer(template):
        if match.start() > position:
            pieces.append(("text", template[position:match.start()]))
        token = match.group(0)
        if token in ("{{", "}}"):
            pieces.append(("text", token[0]))
        else:
            pieces.append(("field", match.group(1).strip()))
        position = match.end()
    if position < len(template):
        pieces.append(("text", template[position:]))
    return pieces


def _used(template: str) -> list[str]:
    return [name for kind, name in _tokens(template) if kind == "field"]


def _unknown(kind: str, template: str, where: str) -> list[Problem]:
    allowed = placeholders(kind)
    problems = []
    for name in dict.fromkeys(_used(template)):
        if name in allowed:
            continue
        if name in ORDER_PLACEHOLDERS:
            text = f"The placeholder {{{name}}} only works in order updates."
        else:
            text = (f"Unknown placeholder {{{name}}}. You can use "
                    + ", ".join(f"{{{p}}}" for p in allowed) + ". Write {{ or }} for a literal brace.")
        problems.append(Problem(where, "unknown_placeholder", text))
    return problems


def _limit(number: int) -> str:
    return f"{number:,}"


def check_template(kind: str, subject: str, body: str, max_body_chars: int = DEFAULT_MAX_BODY_CHARS) -> list[Problem]:
    """What is wrong with a template itself, before any values are filled in."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    subject, body = normalise(subject), normalise(body)
    problems: list[Problem] = []
    if not subject.strip():
        problems.append(Problem("subject", "subject_empty", "Enter a subject."))
    elif _SUBJECT_FORBIDDEN.search(subject):
        problems.append(Problem("subject", "subject_control",
                                "The subject must be one line: remove line breaks and invisible control characters."))
    elif len(subject) > MAX_SUBJECT_CHARS:
        problems.append(Problem("subject", "subject_too_long",
                                f"Keep the subject under {MAX_SUBJECT_CHARS} characters (it has {len(subject)})."))
    else:
        problems += _unknown(kind, subject, "subject")
    if not body.strip():
        problems.append(Problem("body", "body_empty", "Write the message."))
    elif _BODY_FORBIDDEN.search(body):
        problems.append(Problem("body", "body_control", "Remove invisible control characters from the message."))
    elif len(body) > max_body_chars:
        problems.append(Problem("body", "body_too_long", f"The message is {_limit(len(body))} characters long; "
                                                         f"the limit is {_limit(max_body_chars)}."))
    else:
        problems += _unknown(kind, body, "body")
    return problems


def _quoted_text(values: ComposeValues) -> str:
    lines = []
    for line in list(values.messages)[-QUOTED_MESSAGES:]:
        author = "You" if line.author == "visitor" else values.store_name
        text_lines = normalise(line.body).strip().split("\n")
        lines.append(f"> {author}: {text_lines[0]}")
        lines.extend(f"> {more}" if more else ">" for more in text_lines[1:])
    return "\n".join(lines)


def _quoted_html(values: ComposeValues) -> str:
    items = []
    for line in list(values.messages)[-QUOTED_MESSAGES:]:
        author = "You" if line.author == "visitor" else values.store_name
        items.append(f"<p><strong>{html.escape(author)}:</strong> {_inline(normalise(line.body).strip())}</p>")
    return f"<blockquote>\n{chr(10).join(items)}\n</blockquote>" if items else ""


def is_web_link(value: str) -> bool:
    """Only http(s) addresses with a host become links in the HTML body."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", value.strip())


def _inline(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")


def _link(url: str, label: str | None = None) -> str:
    if not is_web_link(url):
        return _inline(url)
    url = url.strip()
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(label or url)}</a>'


def _value(name: str, values: ComposeValues) -> str:
    if name == "visitor_name":
        return (values.visitor_name or "").strip() or NAMELESS_VISITOR
    if name == "last_messages":
        return _quoted_text(values)
    return getattr(values, name).strip()


def _text(template: str, values: ComposeValues) -> str:
    return "".join(piece if kind == "text" else _value(piece, values) for kind, piece in _tokens(template))


def _html_fragment(template: str, values: ComposeValues) -> str:
    """Paragraphs from blank lines, the quoted chat as a blockquote, the tracking link as a link."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        inner = _EDGE_BREAKS.sub("", "".join(current))
        if inner:
            blocks.append(f"<p>{inner}</p>")
        current.clear()

    for kind, piece in _tokens(template):
        if kind == "text":
            for index, part in enumerate(_PARAGRAPH_BREAK.split(piece)):
                if index:
                    flush()
                current.append(_inline(part))
        elif piece == "last_messages":
            flush()
            quote = _quoted_html(values)
            if quote:
                blocks.append(quote)
        elif piece == "tracking_link":
            current.append(_link(values.tracking_link))
        else:
            current.append(_inline(_value(piece, values)))
    flush()
    return "\n".join(blocks)


# Email clients drop <style> blocks and linked sheets unevenly, so the HTML email carries
# its look inline on two wrappers: the system font stack (not the client's default serif),
# a readable size and measure. Everything inside inherits it.
EMAIL_BODY_STYLE = "margin:0;padding:0;background:#ffffff;"
EMAIL_TEXT_STYLE = ("max-width:600px;padding:16px;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,"
                    "'Helvetica Neue',Arial,'Noto Sans',sans-serif;font-size:15px;line-height:1.55;color:#1c2530;")


def _document(subject: str, fragment: str) -> str:
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(subject)}</title></head>\n<body style=\"{EMAIL_BODY_STYLE}\">\n"
            f"<div style=\"{EMAIL_TEXT_STYLE}\">\n{fragment}\n</div>\n</body></html>\n")


def unsubscribe_footer(store_name: str, url: str) -> tuple[str, str]:
    """The text and HTML footer of a conversion reminder."""
    if not is_web_link(url):
        raise ValueError("the unsubscribe link must be an http(s) address")
    text = (f"\n\n--\nYou get this reminder because you chatted with {store_name}. "
            f"To stop these reminders, open {url.strip()}\n")
    markup = (f"<hr>\n<p>You get this reminder because you chatted with {html.escape(store_name)}. "
              f"{_link(url, 'Stop these reminders')}.</p>")
    return text, markup


def _check_values(kind: str, subject: str, body: str, values: ComposeValues) -> list[Problem]:
    if kind != "order_update":
        return []
    used = set(_used(subject)) | set(_used(body))
    problems = []
    for name in ORDER_PLACEHOLDERS:
        value = getattr(values, name) or ""
        label = ORDER_FIELD_LABELS[name]
        if _SUBJECT_FORBIDDEN.search(value):
            problems.append(Problem(name, "value_control", f"The {label} must be one line without control characters."))
        elif len(value) > MAX_ORDER_FIELD_CHARS:
            problems.append(Problem(name, "value_too_long",
                                    f"Keep the {label} under {MAX_ORDER_FIELD_CHARS} characters."))
        elif name in used and not value.strip():
            problems.append(Problem(name, "value_missing", f"Enter the {label}: the template uses {{{name}}}."))
    return problems


def render_email(kind: str, subject: str, body: str, values: ComposeValues, *,
                 max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
                 unsubscribe_url: str | None = None) -> tuple[RenderedEmail | None, list[Problem]]:
    """Fill in a template: the email, or ``None`` and the problems to show beside the fields."""
    subject, body = normalise(subject), normalise(body)
    problems = check_template(kind, subject, body, max_body_chars) + _check_values(kind, subject, body, values)
    if problems:
        return None, problems
    rendered_subject = _text(subject, values).strip()
    if _SUBJECT_FORBIDDEN.search(rendered_subject):
        multi_line = [f"{{{name}}}" for name in dict.fromkeys(_used(subject)) if "\n" in _value(name, values)]
        if multi_line:
            return None, [Problem("subject", "subject_control",
                                  f"{', '.join(multi_line)} spans several lines and cannot go in the subject.")]
        # The template itself was checked: a name stored before separators were refused. One line it is.
        rendered_subject = fold_header(rendered_subject)
    if len(rendered_subject) > MAX_SUBJECT_CHARS:
        return None, [Problem("subject", "subject_too_long",
                              f"With the placeholders filled in, the subject has {len(rendered_subject)} characters; "
                              f"keep it under {MAX_SUBJECT_CHARS}.")]
    text = _text(body, values).strip()
    if not text:
        return None, [Problem("body", "body_empty", "Write the message.")]
    if len(text) > max_body_chars:
        return None, [Problem("body", "body_too_long",
                              f"With the placeholders filled in, the message is {_limit(len(text))} characters long; "
                              f"the limit is {_limit(max_body_chars)}.")]
    fragment = _html_fragment(body, values)
    text += "\n"
    if unsubscribe_url is not None:
        footer_text, footer_html = unsubscribe_footer(values.store_name, unsubscribe_url)
        text = text.rstrip("\n") + footer_text
        fragment += "\n" + footer_html
    return RenderedEmail(rendered_subject, text, _document(rendered_subject, fragment), fragment), []
