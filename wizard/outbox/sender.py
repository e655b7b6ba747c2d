"""A persistent SMTP session for one store: connect once, send many messages.

``SmtpConnection`` follows the connection test's rules exactly (it reuses
the probe's helpers): the host is resolved once, every address is checked
against the target's address policy, and the socket goes to a checked
address; TLS is always verified (``tls_context``); AUTH uses a mechanism the
server offers (PLAIN, then LOGIN, then CRAM-MD5), never over plain text.

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
import socket
import time
from dataclasses import dataclass

from wizard.smtp.diagnosis import Failure, diagnose_exception, diagnose_reply, non_ascii_address_message
from wizard.smtp.probe import (
    SUPPORTED_MECHANISMS,
    Reply,
    SmtpTarget,
    extract_queue_id,
    resolve,
    resolve_with_nameserver,
)
from wizard.smtp.tls import wrap_verified
from wizard.smtp.transcript import split_enhanced

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
    def of(cls, stage: str, failure: Failure) -> "SendFailure":
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


def reply_from(code: int, message: bytes | str) -> Reply:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    enhanced, text = split_enhanced(text.replace("\n", " "))
    return Reply(code, enhanced, text)


class SmtpConnection:
    """An authenticated SMTP session to one target, reused for many messages."""

    def __init__(self, target: SmtpTarget):
        self.target = target
        self.client: smtplib.SMTP | None = None
        self.messages_sent = 0
        self.last_used = time.monotonic()
        self._needs_reset = False

    @property
    def is_open(self) -> bool:
        return self.client is not None and self.client.sock is not None

    # -- opening -----------------------------------------------------------------

    def _fail(self, stage: str, reply: Reply | None = None, category: str | None = None,
              detail: str = "") -> SendError:
        failure = diagnose_reply(stage, reply, self.target, category=category, detail=detail)
        return SendError(SendFailure.of(stage, failure))

    def _expect(self, stage: str, code: int, message, accept: tuple[int, ...]) -> Reply:
        reply = reply_from(code, message)
        if code not in accept:
            raise self._fail(stage, reply)
        return reply

    def open(self) -> None:
        """Connect, secure, greet and log in; raises ``SendError`` on failure."""
        self.close()
        target = self.target
        policy = target.address_policy
        refusal = policy.port_refusal(target.port) if policy is not None else None
        if refusal:
            raise SendError(SendFailure("connect", "connection_refused", None, refusal, refusal))
        client = smtplib.SMTP(local_hostname=target.local_hostname, timeout=target.timeout)
        # What STARTTLS checks the certificate against: the name, not the address.
        client._host = target.host
        stage = "dns"
        try:
            if target.nameserver:
                addresses = resolve_with_nameserver(target.nameserver, target.host, target.port, target.timeout)
            else:
                addresses = resolve(target.host, target.port, target.timeout)
            stage = "connect"
            if policy is not None:
                # Every address is checked before any is used; the socket then
                # goes to a checked address, never through a second look-up.
                for *_ignored, address in addresses:
                    refusal = policy.address_refusal(address[0], address[1])
                    if refusal:
                        raise SendError(SendFailure("connect", "connection_refused", None, refusal, refusal))
            client.sock = self._connect(addresses)
            if target.security == "ssl":
                stage = "tls"
                client.sock = wrap_verified(client.sock, target.host, target.ca_file)
            stage = "greeting"
            # A short wait for the greeting: a STARTTLS client on an implicit-TLS
            # port would otherwise wait the whole timeout.
            client.sock.settimeout(min(target.greeting_timeout, target.timeout / 2))
            code, message = client.getreply()
            self._expect("greeting", code, message, (220,))
            client.sock.settimeout(target.timeout)
            stage = "ehlo"
            code, message = client.ehlo()
            self._expect("ehlo", code, message, (250,))
            if target.security != "ssl":
                stage = "starttls"
                self._starttls(client)
            stage = "auth"
            self._auth(client)
        except SendError:
            client.close()
            raise
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            client.close()
            failure = diagnose_exception(stage, exc, target)
            raise SendError(SendFailure.of(stage, failure)) from exc
        self.client = client
        self.messages_sent = 0
        self._needs_reset = False
        self.last_used = time.monotonic()

    def _connect(self, addresses: list[tuple]) -> socket.socket:
        last_error: OSError | None = None
        for family, kind, proto, _name, address in addresses:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.target.timeout)
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            return sock
        raise last_error or OSError("no address to connect to")

    def _starttls(self, client: smtplib.SMTP) -> None:
        if not client.has_extn("starttls"):
            raise self._fail("starttls", None, category="starttls_unsupported")
        code, message = client.docmd("STARTTLS")
        self._expect("starttls", code, message, (220,))
        client.sock = wrap_verified(client.sock, self.target.host, self.target.ca_file)
        client.file = None
        # The server forgets everything it said before TLS (RFC 3207).
        client.helo_resp = client.ehlo_resp = None
        client.esmtp_features = {}
        client.does_esmtp = False
        # EHLO ourselves: inside smtplib a 421 here would lose its text.
        code, message = client.ehlo()
        self._expect("starttls", code, message, (250,))

    def _auth(self, client: smtplib.SMTP) -> None:
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in SUPPORTED_MECHANISMS if m in offered), None)
        if mechanism is None:
            raise self._fail("auth", None, category="auth_unsupported",
                             detail=f"server offers: {' '.join(offered) or 'no AUTH at all'}")
        client.user, client.password = self.target.username, self.target.password
        handler = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login, "CRAM-MD5": client.auth_cram_md5}[mechanism]
        try:
            # Our own choice of mechanism: smtplib's login() would try them all
            # and report only the last server answer.
            code, message = client.auth(mechanism, handler, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            code, message = exc.smtp_code, exc.smtp_error
        finally:
            client.password = ""
        self._expect("auth", code, message, (235,))

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
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.sock is not None:
                client.sock.settimeout(QUIT_TIMEOUT)
                client.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            client.close()
