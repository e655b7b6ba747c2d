"""Shared set-up for the inbound-mail tests: a store that sent an email in a
conversation, the inbound SMTP server, and replies shaped like real clients'."""
from __future__ import annotations

import contextlib
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from sqlmodel import Session, select

from wizard.inbound.smtp_server import InboundServer
from wizard.models import ChatMessage, Contact, Conversation, SmtpSettings, Store
from wizard.models.inbound import InboundEmail
from wizard.models.outbox import SENT, OutboxEmail
from wizard.outbox import queue
from wizard.outbox.reply_addresses import reply_address

INBOUND_DOMAIN = "replies.heichat.test"


def engine_of(app):
    return app.extensions["db_engine"]


def saved_settings_for(app, store_id: int, sender: str = "support@bluefern.example.com") -> None:
    """Saved SMTP settings for ``store_id`` (enqueueing needs them; nothing is sent in these tests)."""
    with Session(engine_of(app)) as session:
        session.add(SmtpSettings(store_id=store_id, provider="custom", host="127.0.0.1", port=2525, security="starttls",
                                 sender_name="Shop", sender_email=sender, username=sender, password_encrypted="",
                                 fingerprint="x"))
        session.commit()


def store_with_conversation(app, slug: str, visitor: str = "ada@example.com") -> tuple[int, int]:
    """A store with saved SMTP settings and one conversation with ``visitor``: (store id, conversation id)."""
    with Session(engine_of(app)) as session:
        store = Store(name=f"Shop {slug}", slug=slug)
        session.add(store)
        session.commit()
        store_id = store.id
    saved_settings_for(app, store_id, f"support@{slug}.example.com")
    with Session(engine_of(app)) as session:
        store = session.get(Store, store_id)
        contact = Contact(store_id=store.id, email=visitor, name="Ada")
        session.add(contact)
        session.commit()
        conversation = Conversation(store_id=store.id, contact_id=contact.id, visitor_name="Ada",
                                    visitor_email=visitor, token=f"chat-{slug}")
        session.add(conversation)
        session.commit()
        session.add(ChatMessage(conversation_id=conversation.id, author="visitor", body="Do you ship to Oslo?"))
        session.add(ChatMessage(conversation_id=conversation.id, author="merchant", body="Let me check."))
        session.commit()
        return store.id, conversation.id


def sent_follow_up(app, store_id: int, conversation_id: int, key: str, *, inbound_domain: str | None = INBOUND_DOMAIN,
                   recipient: str = "ada@example.com") -> OutboxEmail:
    """A follow-up queued like the inbox does, then marked sent (the worker's part is tested elsewhere)."""
    with Session(engine_of(app), expire_on_commit=False) as session:
        store = session.get(Store, store_id)
        email = queue.enqueue(session, store=store, kind="follow_up", recipient=recipient,
                              subject="About your order", body_text="We ship to Oslo, yes.",
                              body_html="<p>We ship to Oslo, yes.</p>", idempotency_key=key,
                              conversation=conversation_id, inbound_domain=inbound_domain)
        email.status = SENT
        session.add(email)
        session.commit()
        return email


def reply_to_of(app, conversation_id: int) -> str:
    with Session(engine_of(app)) as session:
        return reply_address(session, session.get(Conversation, conversation_id), INBOUND_DOMAIN)


def gmail_style_reply(to: str, answered: OutboxEmail | None, text: str, *, sender: str = "ada@example.com",
                      message_id: str | None = None) -> EmailMessage:
    """A reply as Gmail writes it: new text on top, the attribution, then the quoted original."""
    reply = EmailMessage()
    reply["From"] = f"Ada Lovelace <{sender}>"
    reply["To"] = to
    reply["Subject"] = "Re: About your order"
    reply["Message-ID"] = message_id or make_msgid(domain="mail.gmail.com")
    if answered is not None:
        reply["In-Reply-To"] = answered.message_id
        reply["References"] = answered.message_id
    reply.set_content(f"{text}\n\nOn Tue, 1 Dec 2026 at 10:00, Shop <support@shop.example.com> wrote:\n"
                      "> We ship to Oslo, yes.\n")
    return reply


@contextlib.contextmanager
def inbound_server(app):
    with InboundServer(engine_of(app), INBOUND_DOMAIN, "127.0.0.1", 0) as server:
        yield server


def send_to(server, message: EmailMessage, recipients: list[str] | None = None) -> dict:
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        return client.send_message(message, to_addrs=recipients)


def inbound_rows(app) -> list[InboundEmail]:
    with Session(engine_of(app)) as session:
        return list(session.exec(select(InboundEmail).order_by(InboundEmail.id)).all())


def chat_messages(app, conversation_id: int) -> list[ChatMessage]:
    with Session(engine_of(app)) as session:
        return list(session.exec(select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
                                 .order_by(ChatMessage.id)).all())


def outbox_row(app, email_id: int) -> OutboxEmail:
    with Session(engine_of(app)) as session:
        return session.get(OutboxEmail, email_id)
