"""Whether a message was sent by a machine on the recipient's behalf (RFC 3834).

Headers first: ``Auto-Submitted`` with any value but ``no`` (Exchange's
out-of-office sets ``auto-generated``, Gmail's vacation responder
``auto-replied``), ``X-Autoreply`` / ``X-Autorespond``, ``Precedence:
auto_reply``. ``Precedence: bulk`` (or junk, list) does not count on its own,
since mailing lists send it too. As a last resort the
subject alone ("Automatic reply:", "Abwesenheitsnotiz", "Réponse automatique" …):
many responders set no header at all. The rules are in ``inbound.toml``.
"""
from __future__ import annotations

from email.message import Message

from wizard.catalogue.inbound import inbound_rules


def first_token(value: str | None) -> str:
    return "" if value is None else str(value).split(";")[0].strip().lower()


def has_auto_reply_subject(subject: str | None) -> bool:
    return bool(subject) and any(pattern.match(subject.strip()) for pattern in inbound_rules().auto_reply_subjects)


def is_auto_reply(message: Message, subject: str | None) -> bool:
    """Whether ``message`` (with its decoded ``subject``) is an auto-reply."""
    rules = inbound_rules()
    auto_submitted = first_token(_header(message, rules.auto_submitted_header))
    if auto_submitted and auto_submitted != "no":
        return True
    if any(_header(message, name) is not None for name in rules.marker_headers):
        return True
    precedence = first_token(_header(message, "Precedence"))
    if precedence in rules.precedence_auto:
        return True
    return has_auto_reply_subject(subject)


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a broken header is as good as none
        return None
    return None if value is None else str(value)
