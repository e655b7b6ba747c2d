""""Reply as the visitor": answer a message in the local test mailbox the way a visitor's mail client would.

The reply goes to the message's Reply-To (the conversation's reply address
at the local inbound domain) over plain SMTP to the local inbound server on
loopback, with In-Reply-To / References and the original quoted below an
"On … wrote:" line — so the whole way back (matching, quote stripping, the
conversation) runs as it does for a real reply. Development mode only.
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

from wizard.devmailbox.store import StoredMessage

__all__ = ["visitor_reply", "deliver_reply", "reply_target"]


def _header(message: StoredMessage, name: str) -> str | None:
    return next((value for key, value in message.headers if key.lower() == name.lower()), None)


def reply_target(message: StoredMessage) -> str | None:
    """Where a reply to ``message`` goes (its Reply-To, else its From), or None."""
    for value in (_header(message, "Reply-To"), message.from_header):
        addresses = [address for _name, address in getaddresses([value or ""]) if "@" in address]
        if addresses:
            return addresses[0]
    return None


def visitor_reply(message: StoredMessage, text: str) -> EmailMessage:
    """The visitor's answer to ``message`` (which the local test mailbox received for them)."""
    visitor = message.envelope_to[0] if message.envelope_to else "visitor@example.test"
    reply = EmailMessage()
    reply["From"] = visitor
    reply["To"] = reply_target(message) or ""
    subject = message.subject or ""
    reply["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}".strip()
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = make_msgid(domain=visitor.rpartition("@")[2] or "example.test")
    if message.message_id:
        reply["In-Reply-To"] = message.message_id
        reply["References"] = " ".join(filter(None, [message.references, message.message_id]))
    quoted = "\n".join("> " + line for line in (message.text_body or "").splitlines())
    sender = message.from_header or "you"
    reply.set_content(f"{text.strip()}\n\nOn {message.date_header or 'an earlier day'}, {sender} wrote:\n{quoted}\n")
    return reply


def deliver_reply(reply: EmailMessage, host: str, port: int, timeout: float = 10.0) -> None:
    """Hand ``reply`` to the local inbound server (loopback, no login: it only receives)."""
    with smtplib.SMTP(host, port, timeout=timeout) as client:
        client.send_message(reply)
