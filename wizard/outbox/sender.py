"""A persistent SMTP session for one store: connect once, send many messages.

``SmtpConnection`` opens its connection with the same ``SmtpSession`` as the
connection test (``wizard.smtp.session``), so the same rules hold: the host
is resolved once, every address is checked against the target's address
policy, and the socket goes to a checked address; TLS is always verified;
AUTH uses a mechanism the server offers, never over plain text. No
transcript is kept here.

Then it sends message after message over the same connection. A failed
transaction is cleared with RSET before the next one. When the server has
closed an idle connection (or ends it with 421 after its per-connection
limit), the next send notices at MAIL FROM, reconnects once and carries on;
only a second failure counts. Every failure is classified by
``wizard.smtp.diagnosis`` (stage, category, reply) for the outbox row.
"""
from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import dataclass

from wizard.smtp.diagnosis import Failure, diagnose_exception, diagnose_reply, non_ascii_address_message
from wizard.smtp.session import Refused, SmtpSession, StageFailed, extract_queue_id
from wizard.smtp.types import Reply, SmtpTarget, reply_from

log = logging.getLogger("wizard.outbox")

# Stages of opening a connection: a failure there affects every message.
CONNECTION_STAGES = ("dns", "connect", "tls", "greeting", "ehlo", "starttls", "auth")
# How long QUIT may take when closing (the server is usually still there).
QUIT_TIMEOUT = 2.0


@dataclass
class SendFailure:
    """One failed attempt, as the outbox row records it."""

    stage: str
    category: str
    reply: Reply | None
    detail: str
    # Set when the target or the sender was refused before anything was sent
    # (address policy, an address SMTP cannot carry): permanent.
    refusal: str | None = None
    # A sending quota that resets: wait this long before the next try (why: wait_reason).
    retry_after: float | None = None
    wait_reason: str = ""

    @classmethod
    def of(cls, stage: str, failure: Failure) -> SendFailure:
        return cls(stage, failure.category, failure.reply, failure.detail,
                   retry_after=failure.retry_after, wait_reason=failure.wait_reason)

    @property
    def permanent(self) -> bool:
        """True for a 5xx reply or a refused target: trying again will not help.

        A 5xx that the diagnosis files under ``temporary_failure`` (a quota or
        rate limit, e.g. Gmail's "550 5.4.5 Daily sending quota exceeded")
        clears up with time, so it is retried like a 4xx.
        """
        if self.refusal:
            return True
        return (self.reply is not None and 500 <= self.reply.code < 600
                and self.category != "temporary_failure")

    @property
    def connection_level(self) -> bool:
        return self.stage in CONNECTION_STAGES


class SendError(Exception):
    """An attempt failed; ``failure`` says where and why."""

    def __init__(self, failure: SendFailure):
        super().__init__(f"{failure.stage}: {failure.category}")
        self.failure = failure


class _Dropped(Exception):
    """The connection died (or the server said 421) during a transaction."""

    def __init__(self, failure: SendFailure):
        super().__init__(failure.category)
        self.failure = failure


@dataclass
class Delivered:
    reply: Reply
    queue_id: str | None


class SmtpConnection:
    """An authenticated SMTP session to one target, reused for many messages."""

    def __init__(self, target: SmtpTarget):
        self.target = target
        self.session: SmtpSession | None = None
        self.client: smtplib.SMTP | None = None
        self.messages_sent = 0
        self.last_used = time.monotonic()
        self._needs_reset = False

    @property
    def is_open(self) -> bool:
        return self.client is not None and self.client.sock is not None

    # -- opening -----------------------------------------------------------------

    def open(self) -> None:
        """Connect, secure, greet and log in; raises ``SendError`` on failure."""
        self.close()
        session = SmtpSession(self.target)
        try:
            session.open()
        except Refused as refused:
            session.client.close()
            refusal = str(refused)
            raise SendError(SendFailure("connect", "connection_refused", None, refusal, refusal)) from None
        except StageFailed as failed:
            session.client.close()
            raise SendError(SendFailure.of(failed.stage, failed.failure)) from failed.__cause__
        self.session, self.client = session, session.client
        self.messages_sent = 0
        self._needs_reset = False
        self.last_used = time.monotonic()

    # -- sending -----------------------------------------------------------------

    def send(self, sender: str, recipient: str, payload: bytes) -> Delivered:
        """Deliver one message (``payload``: CRLF bytes); raises ``SendError``.

        Opens the connection when needed. A reused connection that turns out
        closed at MAIL FROM is reopened once and the message sent again.
        """
        refusal = non_ascii_address_message(sender)
        if refusal:
            # The same words as step 3: SMTP without SMTPUTF8 cannot carry it.
            raise SendError(SendFailure("sender", "sender_rejected", None, refusal, refusal))
        reused = self.is_open
        if not reused:
            self.open()
        try:
            return self._transaction(sender, recipient, payload)
        except _Dropped as dropped:
            self.close()
            if not (reused and dropped.failure.stage == "sender"):
                raise SendError(dropped.failure) from None
            log.info("SMTP connection to %s was closed by the server; reconnecting", self.target.host)
        self.open()
        try:
            return self._transaction(sender, recipient, payload)
        except _Dropped as dropped:
            self.close()
            raise SendError(dropped.failure) from None

    def _transaction(self, sender: str, recipient: str, payload: bytes) -> Delivered:
        client = self.client
        stage = "sender"
        try:
            if self._needs_reset:
                # The last transaction failed half-way: make the server forget it.
                code, message = client.rset()
                if code == 421:
                    raise _Dropped(self._reply_failure("sender", code, message))
                self._needs_reset = False
            code, message = client.mail(sender)
            self._check("sender", code, message, (250,))
            stage = "recipient"
            code, message = client.rcpt(recipient)
            self._check("recipient", code, message, (250, 251))
            stage = "data"
            try:
                code, message = client.data(payload)
            except smtplib.SMTPDataError as refused:  # the DATA command itself was refused
                code, message = refused.smtp_code, refused.smtp_error
            reply = self._check("data", code, message, (250,))
        except (_Dropped, SendError):
            raise
        except (OSError, smtplib.SMTPException) as exc:
            # The connection is gone (or in an unknown state after a timeout).
            failure = diagnose_exception(stage, exc, self.target)
            raise _Dropped(SendFailure.of(stage, failure)) from exc
        finally:
            self.last_used = time.monotonic()
        self.messages_sent += 1
        return Delivered(reply, extract_queue_id(reply.text))

    def _reply_failure(self, stage: str, code: int, message) -> SendFailure:
        failure = diagnose_reply(stage, reply_from(code, message), self.target)
        return SendFailure.of(stage, failure)

    def _check(self, stage: str, code: int, message, accept: tuple[int, ...]) -> Reply:
        if code in accept:
            return reply_from(code, message)
        failure = self._reply_failure(stage, code, message)
        if code == 421:
            # 421: the server is closing the connection (shutting down, or
            # this connection has sent its share).
            raise _Dropped(failure)
        self._needs_reset = True
        raise SendError(failure)

    def close(self) -> None:
        """QUIT (briefly) and close; safe to call on a closed connection."""
        session, self.session, self.client = self.session, None, None
        if session is not None:
            session.quit(QUIT_TIMEOUT)
