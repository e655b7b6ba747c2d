"""The staged SMTP conversation behind Test Connection and the test email.

``probe_smtp`` talks to the server stage by stage — dns, connect, tls
(implicit), greeting, ehlo, starttls, auth, sender, and for a real send
recipient and data — and records for each its duration, outcome and the
server's reply. The whole run is bounded by one deadline; the greeting has a
shorter wait of its own so a STARTTLS client on an implicit-TLS port is
caught quickly. Credentials only ever travel over TLS.
"""
from __future__ import annotations

import ipaddress
import re
import smtplib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Callable

import dns.exception
import dns.resolver

from wizard.dns.resolver import parse_nameserver
from wizard.smtp.address_policy import AddressPolicy
from wizard.smtp.diagnosis import Failure, diagnose_exception, diagnose_reply, non_ascii_address_message
from wizard.smtp.tls import tls_context, wrap_verified
from wizard.smtp.transcript import Transcript, split_enhanced

__all__ = ["SmtpTarget", "Reply", "StageRecord", "ProbeResult", "probe_smtp", "planned_stages", "tls_context",
           "resolve", "resolve_with_nameserver", "extract_queue_id", "SUPPORTED_MECHANISMS"]

SUPPORTED_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


@dataclass
class SmtpTarget:
    """Where and how to connect. ``password`` is used, never recorded."""

    host: str
    port: int
    security: str  # starttls | ssl
    username: str
    password: str = field(repr=False)
    sender_email: str = ""
    timeout: float = 15.0
    greeting_timeout: float = 5.0
    ca_file: str | None = None
    local_hostname: str = "heichat-wizard.localdomain"
    # "HOST:PORT" of a DNS server to ask instead of the system resolver.
    nameserver: str | None = None
    # Which addresses and ports may be connected to; None: anything (the CLI).
    address_policy: AddressPolicy | None = None


@dataclass
class Reply:
    code: int
    enhanced: str | None
    text: str


@dataclass
class StageRecord:
    name: str
    ok: bool
    elapsed_ms: int
    reply: Reply | None = None
    detail: str = ""


@dataclass
class ProbeResult:
    ok: bool
    stage: str  # the stage that failed, or "done"
    category: str
    detail: str
    reply: Reply | None
    stages: list[StageRecord]
    transcript: list[str]
    elapsed_ms: int
    queue_id: str | None = None
    server_banner: str = ""
    # Settings to try next when the failure is a transport mismatch.
    suggestion: dict | None = None
    # Why the address policy refused the target (nothing was sent to it).
    refusal: str | None = None

    def stages_as_dicts(self) -> list[dict]:
        return [asdict(stage) for stage in self.stages]


class _Refused(Exception):
    """The address policy refused the target before anything was sent to it."""


class _StageFailed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.category)
        self.failure = failure


class _RecordingSMTP(smtplib.SMTP):
    """smtplib's client with every line copied into a redacted transcript."""

    def __init__(self, transcript: Transcript, local_hostname: str):
        super().__init__(local_hostname=local_hostname)
        self._transcript = transcript

    def send(self, s):  # noqa: D401 - smtplib's name
        self._transcript.client(s)
        super().send(s)

    def getreply(self):
        code, message = super().getreply()
        self._transcript.server(code, message)
        return code, message


def planned_stages(security: str, sending: bool = False) -> list[str]:
    """The stages a run goes through, in order (for showing what is still to come)."""
    stages = ["dns", "connect"]
    stages += ["tls", "greeting", "ehlo"] if security == "ssl" else ["greeting", "ehlo", "starttls"]
    stages += ["auth", "sender"]
    return stages + (["recipient", "data"] if sending else [])


# Look-ups run on long-lived threads: ``getaddrinfo`` has no deadline of its
# own, and starting a thread per look-up costs more than the look-up itself.
# A look-up that hangs holds one thread until the system resolver gives up.
_LOOKUPS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="smtp-dns")


def resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """``getaddrinfo`` with a deadline (the C call itself has none)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    pending = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return pending.result(timeout)
    except FuturesTimeout:
        raise socket.timeout(f"looking up {host} took longer than {timeout:.0f} s") from None


def resolve_with_nameserver(nameserver: str, host: str, port: int, timeout: float) -> list[tuple]:
    """Addresses of ``host`` from one DNS server, shaped like ``getaddrinfo``'s."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    server, server_port = parse_nameserver(nameserver)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [server], server_port
    resolver.timeout = resolver.lifetime = timeout
    addresses = []
    for rdtype, family in (("A", socket.AF_INET), ("AAAA", socket.AF_INET6)):
        try:
            answer = resolver.resolve(host, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} does not exist (NXDOMAIN)") from None
        except dns.resolver.NoAnswer:
            continue
        except dns.exception.Timeout:
            raise socket.timeout(f"the DNS server did not answer for {host} in time") from None
        except dns.exception.DNSException as exc:  # a malformed name, SERVFAIL …
            raise socket.gaierror(socket.EAI_FAIL, f"looking up {host} failed: {exc}") from None
        addresses += [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (r.address, port)) for r in answer]
    if not addresses:
        raise socket.gaierror(socket.EAI_NODATA, f"{host} has no address records")
    return addresses


class _Run:
    """One probe: keeps the clock, the stage list and the transcript."""

    def __init__(self, target: SmtpTarget, on_stage: Callable[[StageRecord], None] | None):
        self.target = target
        self.on_stage = on_stage
        self.started = time.monotonic()
        self.deadline = self.started + target.timeout
        self.stages: list[StageRecord] = []
        self.transcript = Transcript()
        self.client = _RecordingSMTP(self.transcript, target.local_hostname)
        self.client._host = target.host  # what STARTTLS verifies the certificate against
        self.banner = ""
        self.last_reply: Reply | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def budget(self, cap: float | None = None) -> float:
        remaining = self.remaining()
        if remaining <= 0:
            raise socket.timeout("the test ran out of time")
        return min(remaining, cap) if cap else remaining

    def record(self, name: str, began: float, ok: bool, reply: Reply | None = None, detail: str = "") -> None:
        stage = StageRecord(name, ok, int((time.monotonic() - began) * 1000), reply, detail)
        self.stages.append(stage)
        if self.on_stage:
            self.on_stage(stage)

    def stage(self, name: str, action: Callable[[], Reply | str | None], cap: float | None = None):
        """Run one stage; on failure record it and raise _StageFailed."""
        began = time.monotonic()
        try:
            if self.client.sock is not None:
                self.client.sock.settimeout(self.budget(cap))
            else:
                self.budget()
            outcome = action()
        except _StageFailed as failed:
            self.record(name, began, False, failed.failure.reply, failed.failure.detail)
            raise
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            failure = diagnose_exception(name, exc, self.target)
            self.record(name, began, False, failure.reply, failure.detail)
            raise _StageFailed(failure) from exc
        reply = outcome if isinstance(outcome, Reply) else None
        detail = outcome if isinstance(outcome, str) else ""
        self.record(name, began, True, reply, detail)
        return outcome

    def expect(self, stage: str, code: int, message: bytes, accept: tuple[int, ...]) -> Reply:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        enhanced, text = split_enhanced(text.replace("\n", " "))
        reply = Reply(code, enhanced, text)
        self.last_reply = reply
        if code not in accept:
            raise _StageFailed(diagnose_reply(stage, reply, self.target))
        return reply

    # -- the stages ------------------------------------------------------------
    def dns(self) -> str:
        if self.target.nameserver:
            self.addresses = resolve_with_nameserver(self.target.nameserver, self.target.host, self.target.port,
                                                     self.budget())
        else:
            self.addresses = resolve(self.target.host, self.target.port, self.budget())
        return ", ".join(sorted({a[4][0] for a in self.addresses}))

    def check_policy(self) -> None:
        policy = self.target.address_policy
        if policy is None:
            return
        refusal = policy.port_refusal(self.target.port)
        for *_ignored, address in ([] if refusal else self.addresses):
            refusal = policy.address_refusal(address[0], address[1])
            if refusal:
                break
        if refusal:
            raise _Refused(refusal)

    def connect(self) -> str:
        # Every resolved address is checked first; the socket then goes to a
        # checked address, never through a second look-up.
        self.check_policy()
        last_error: OSError | None = None
        for family, kind, proto, _name, address in self.addresses:
            sock = socket.socket(family, kind, proto)
            sock.settimeout(self.budget())
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                last_error = exc
                continue
            self.client.sock = sock
            return f"{address[0]} port {address[1]}"
        raise last_error or OSError("no address to connect to")

    def implicit_tls(self) -> str:
        self.client.sock = wrap_verified(self.client.sock, self.target.host, self.target.ca_file)
        return self.client.sock.version() or "TLS"

    def greeting(self) -> Reply:
        code, message = self.client.getreply()
        reply = self.expect("greeting", code, message, (220,))
        self.banner = reply.text
        return reply

    def ehlo(self) -> Reply:
        code, message = self.client.ehlo()
        return self.expect("ehlo", code, message, (250,))

    def starttls(self) -> str:
        if not self.client.has_extn("starttls"):
            raise _StageFailed(diagnose_reply("starttls", None, self.target, category="starttls_unsupported"))
        code, message = self.client.docmd("STARTTLS")
        self.expect("starttls", code, message, (220,))
        self.client.sock = wrap_verified(self.client.sock, self.target.host, self.target.ca_file)
        self.client.file = None
        # The server forgets everything it said before TLS (RFC 3207).
        self.client.helo_resp = self.client.ehlo_resp = None
        self.client.esmtp_features = {}
        self.client.does_esmtp = False
        code, message = self.client.ehlo()
        self.expect("starttls", code, message, (250,))
        return self.client.sock.version() or "TLS"

    def auth(self) -> Reply:
        offered = self.client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in SUPPORTED_MECHANISMS if m in offered), None)
        if mechanism is None:
            detail = f"server offers: {' '.join(offered) or 'no AUTH at all'}"
            raise _StageFailed(diagnose_reply("auth", None, self.target, category="auth_unsupported", detail=detail))
        client = self.client
        client.user, client.password = self.target.username, self.target.password
        handler = {
            "PLAIN": client.auth_plain,
            "LOGIN": client.auth_login,
            "CRAM-MD5": client.auth_cram_md5,
        }[mechanism]
        self.transcript.authenticating = True
        try:
            code, message = client.auth(mechanism, handler, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            code, message = exc.smtp_code, exc.smtp_error
        finally:
            self.transcript.authenticating = False
            client.password = ""
        return self.expect("auth", code, message, (235,))

    def sender(self) -> Reply:
        refusal = non_ascii_address_message(self.target.sender_email)
        if refusal:
            raise _StageFailed(diagnose_reply("sender", None, self.target, category="sender_rejected", detail=refusal))
        code, message = self.client.mail(self.target.sender_email)
        return self.expect("sender", code, message, (250,))

    def recipient(self, recipients: list[str]) -> Reply:
        reply = None
        for address in recipients:
            code, message = self.client.rcpt(address)
            reply = self.expect("recipient", code, message, (250, 251))
        return reply

    def data(self, message: EmailMessage) -> Reply:
        payload = message.as_bytes(policy=SMTP_POLICY)
        code, text = self.client.docmd("DATA")
        self.expect("data", code, text, (354,))
        self.transcript.sending_data = True
        try:
            self.client.send(_dot_stuffed(payload))
        finally:
            self.transcript.sending_data = False
        code, text = self.client.getreply()
        return self.expect("data", code, text, (250,))

    def reset(self) -> None:
        """RSET after the sender check, so the server forgets the transaction."""
        try:
            self.client.rset()
        except (OSError, smtplib.SMTPException):
            pass

    def quit(self) -> None:
        try:
            if self.client.sock is not None:
                self.client.sock.settimeout(min(2.0, max(self.remaining(), 0.5)))
                self.client.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            self.client.close()


def _dot_stuffed(payload: bytes) -> bytes:
    """The DATA body (already CRLF): leading dots doubled, final '.' line (RFC 5321 4.5.2)."""
    data = re.sub(rb"(?m)^\.", b"..", payload)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def probe_smtp(
    target: SmtpTarget,
    *,
    message: EmailMessage | None = None,
    recipients: list[str] | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
    authenticate: bool = True,
) -> ProbeResult:
    """Run the SMTP conversation for ``target``.

    ``authenticate=False`` stops once the connection is encrypted and has
    said EHLO — no credentials are sent (auto-detection uses this).

    Without ``message`` it stops after MAIL FROM (then RSET): a connection
    test that sends nothing. With ``message`` and ``recipients`` it delivers
    the message and reports the server's final answer and queue id.
    """
    run = _Run(target, on_stage)
    queue_id = None
    try:
        if target.address_policy is not None and target.address_policy.port_refusal(target.port):
            raise _Refused(target.address_policy.port_refusal(target.port))
        run.stage("dns", run.dns)
        run.stage("connect", run.connect)
        if target.security == "ssl":
            run.stage("tls", run.implicit_tls)
        # The greeting wait stays well inside the whole budget, so a silent
        # implicit-TLS port is diagnosed with time to spare.
        run.stage("greeting", run.greeting, cap=min(target.greeting_timeout, target.timeout / 2))
        run.stage("ehlo", run.ehlo)
        if target.security != "ssl":
            run.stage("starttls", run.starttls)
        if authenticate:
            run.stage("auth", run.auth)
            run.stage("sender", run.sender)
            if message is None:
                run.reset()
            else:
                run.stage("recipient", lambda: run.recipient(recipients or []))
                final = run.stage("data", lambda: run.data(message))
                queue_id = extract_queue_id(final.text)
    except _Refused as refused:
        run.record("connect", time.monotonic(), False, None, str(refused))
        run.quit()
        return ProbeResult(
            ok=False, stage="connect", category="connection_refused", detail=str(refused), reply=None,
            stages=run.stages, transcript=run.transcript.lines,
            elapsed_ms=int((time.monotonic() - run.started) * 1000), refusal=str(refused),
        )
    except _StageFailed as failed:
        run.quit()
        failure = failed.failure
        return ProbeResult(
            ok=False,
            stage=run.stages[-1].name,
            category=failure.category,
            detail=failure.detail,
            reply=failure.reply,
            stages=run.stages,
            transcript=run.transcript.lines,
            elapsed_ms=int((time.monotonic() - run.started) * 1000),
            server_banner=run.banner,
            suggestion=failure.suggestion,
        )
    run.quit()
    return ProbeResult(
        ok=True,
        stage="done",
        category="ok",
        detail="",
        reply=run.last_reply,
        stages=run.stages,
        transcript=run.transcript.lines,
        elapsed_ms=int((time.monotonic() - run.started) * 1000),
        queue_id=queue_id,
        server_banner=run.banner,
    )


def extract_queue_id(text: str) -> str | None:
    """The queue id in a 250 reply to DATA, when the server names one."""
    lowered = text.lower()
    marker = "queued as"
    if marker in lowered:
        rest = text[lowered.index(marker) + len(marker):].strip()
        return rest.split()[0].strip("<>.,") if rest else None
    words = [w for w in text.split() if len(w) >= 8 and any(c.isdigit() for c in w) and w[0] != "<"]
    return words[-1].strip(".,") if words else None
