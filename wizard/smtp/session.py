"""One SMTP client session: the checked connection, the greeting, TLS and AUTH.

Every SMTP conversation the wizard starts goes through ``SmtpSession.open``
— Test Connection and the test email (``wizard.smtp.probe``), auto-detection
and ``smtp-test`` (through the probe), and the outbox
(``wizard.outbox.sender``). It is the only place where the client wraps a
socket in TLS or authenticates, so the security rules hold everywhere:

- the host is resolved once; every address (and the port) is checked
  against the target's address policy before anything is sent, and the
  socket goes to a checked address, never through a second look-up;
- TLS is always verified, with the shared context of ``wizard.smtp.tls``,
  either from the first byte (``ssl``) or after STARTTLS (``starttls``);
  an unencrypted session never reaches AUTH;
- AUTH uses the first mechanism the server offers among those the
  target's auth method may use (``MECHANISMS_FOR_AUTH``: PLAIN, LOGIN,
  CRAM-MD5 for a password, only XOAUTH2 for a sign-in token) — our own
  choice: smtplib's ``login()`` would try them all and report only the
  last answer. A new mechanism is one more entry in ``MECHANISMS``;
- with a ``Transcript`` every line is recorded, the AUTH exchange redacted.

Each stage is timed and recorded (``StageRecord``); a failure raises
``StageFailed`` with the diagnosis (``wizard.smtp.diagnosis``), a refusal by
the address policy raises ``Refused`` (nothing was sent). With a
``deadline`` the whole session shares one time budget (the probe);
without, each step may take ``target.timeout`` (the outbox's long-lived
connections). The greeting always has a shorter wait of its own, so a
STARTTLS client on an implicit-TLS port is caught quickly.
"""
from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable

from wizard.smtp.diagnosis import Failure, diagnose_exception, diagnose_reply
from wizard.smtp.lookup import connect_first, first_refusal, resolve_target
from wizard.smtp.stage_clock import StageClock
from wizard.smtp.tls import presented_certificate, wrap_verified
from wizard.smtp.transcript import Transcript
from wizard.smtp.types import Reply, SmtpTarget, StageRecord, reply_from

__all__ = ["MECHANISMS", "MECHANISMS_FOR_AUTH", "SUPPORTED_MECHANISMS", "Refused", "SmtpSession", "StageFailed",
           "extract_queue_id", "xoauth2_initial_response"]

# An authenticator gives smtplib's ``auth()`` the callable that answers the
# server's challenges (``None`` first, for the initial response). smtplib's
# own answer the first three from ``client.user`` / ``client.password``;
# XOAUTH2 answers from the target's access token.
Authenticator = Callable[[smtplib.SMTP, SmtpTarget], Callable[..., str]]


def xoauth2_initial_response(username: str, access_token: str) -> str:
    """The SASL XOAUTH2 client response (before base64, which smtplib adds)."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


def _xoauth2(_client: smtplib.SMTP, target: SmtpTarget) -> Callable[..., str]:
    def answer(challenge: bytes | None = None) -> str:
        # The only challenge XOAUTH2 knows is the server's error report (Google
        # sends base64 JSON after a rejected token); the client must answer it
        # with an empty line to get the final 535.
        return xoauth2_initial_response(target.username, target.access_token) if challenge is None else ""
    return answer


MECHANISMS: dict[str, Authenticator] = {
    "PLAIN": lambda client, _target: client.auth_plain,
    "LOGIN": lambda client, _target: client.auth_login,
    "CRAM-MD5": lambda client, _target: client.auth_cram_md5,
    "XOAUTH2": _xoauth2,
}
SUPPORTED_MECHANISMS = tuple(MECHANISMS)

# Which mechanisms each auth method (``SmtpTarget.auth``) may use, in order of
# preference: the first the server offers is used. A password never goes to
# XOAUTH2, a token never to the password mechanisms.
MECHANISMS_FOR_AUTH: dict[str, tuple[str, ...]] = {
    "password": ("PLAIN", "LOGIN", "CRAM-MD5"),
    "xoauth2": ("XOAUTH2",),
}


class Refused(Exception):
    """The address policy refused the target before anything was sent to it.
    ``kind`` says what it refused: "port" (a port outside the allowed list) or "address"."""

    def __init__(self, message: str, kind: str = "address"):
        super().__init__(message)
        self.kind = kind


class StageFailed(Exception):
    """``stage`` failed; ``failure`` is its diagnosis."""

    def __init__(self, stage: str, failure: Failure):
        super().__init__(failure.category)
        self.stage = stage
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


class SmtpSession(StageClock):
    """One client connection to ``target``, opened stage by stage."""

    def __init__(self, target: SmtpTarget, *, transcript: Transcript | None = None,
                 on_stage: Callable[[StageRecord], None] | None = None, deadline: float | None = None):
        super().__init__(target.timeout, on_stage, deadline)
        self.target = target
        self.transcript = transcript
        if transcript is not None:
            self.client = _RecordingSMTP(transcript, target.local_hostname)
        else:
            self.client = smtplib.SMTP(local_hostname=target.local_hostname, timeout=target.timeout)
        self.client._host = target.host  # what STARTTLS verifies the certificate against: the name
        self.addresses: list[tuple] = []
        self.banner = ""
        self.last_reply: Reply | None = None

    # -- the stages ------------------------------------------------------------------------

    def stage(self, name: str, action: Callable[[], Reply | str | None], cap: float | None = None):
        """Run one stage; on failure record it and raise ``StageFailed``."""
        began = time.monotonic()
        try:
            if self.client.sock is not None:
                self.client.sock.settimeout(self.budget(cap))
            else:
                self.budget()
            outcome = action()
        except StageFailed as failed:
            self.record(name, began, False, failed.failure.reply, failed.failure.detail)
            raise
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            failure = diagnose_exception(name, exc, self.target)
            self.record(name, began, False, failure.reply, failure.detail)
            raise StageFailed(name, failure) from exc
        reply = outcome if isinstance(outcome, Reply) else None
        detail = outcome if isinstance(outcome, str) else ""
        self.record(name, began, True, reply, detail)
        return outcome

    def fail(self, stage: str, reply: Reply | None = None, category: str | None = None,
             detail: str = "") -> StageFailed:
        return StageFailed(stage, diagnose_reply(stage, reply, self.target, category=category, detail=detail))

    def expect(self, stage: str, code: int, message: bytes | str, accept: tuple[int, ...]) -> Reply:
        reply = reply_from(code, message)
        self.last_reply = reply
        if code not in accept:
            raise self.fail(stage, reply)
        return reply

    # -- opening ----------------------------------------------------------------------

    def open(self, *, authenticate: bool = True) -> None:
        """Resolve, connect, secure, greet and (unless told not to) log in.

        Raises ``Refused`` or ``StageFailed``; the caller closes the session
        either way (``quit`` or ``close``).
        """
        target = self.target
        policy = target.address_policy
        refusal = policy.port_refusal(target.port) if policy is not None else None
        if refusal:
            raise Refused(refusal, kind="port")
        self.stage("dns", self._dns)
        self.stage("connect", self._connect)
        if target.security == "ssl":
            self.stage("tls", self._implicit_tls)
        # The greeting wait stays well inside the whole budget, so a silent
        # implicit-TLS port is diagnosed with time to spare.
        self.stage("greeting", self._greeting, cap=min(target.greeting_timeout, target.timeout / 2))
        self.stage("ehlo", self._ehlo)
        if target.security != "ssl":
            self.stage("starttls", self._starttls)
        if authenticate:
            self.stage("auth", self._auth)

    def _dns(self) -> str:
        self.addresses = resolve_target(self.target, self.budget())
        return ", ".join(sorted({a[4][0] for a in self.addresses}))

    def _connect(self) -> str:
        # Every resolved address is checked first; the socket then goes to a
        # checked address, never through a second look-up.
        refusal = first_refusal(self.addresses, self.target.address_policy)
        if refusal:
            raise Refused(refusal)
        self.client.sock, address = connect_first(self.addresses, self.budget)
        return f"{address[0]} port {address[1]}"

    def _wrap(self) -> None:
        """Verified TLS on the connection; a certificate that fails verification
        is fetched once more, unverified, for the diagnosis to explain."""
        try:
            self.client.sock = wrap_verified(self.client.sock, self.target.host, self.target.ca_file)
        except ssl.SSLCertVerificationError as exc:
            address = getattr(exc, "peer_address", None)
            if address is not None:
                target = self.target
                exc.peer_certificate = fetch_presented_certificate(
                    address[:2], target.host, target.security, min(3.0, max(0.5, target.timeout / 3)),
                    target.local_hostname)
            raise

    def _implicit_tls(self) -> str:
        self._wrap()
        return self.client.sock.version() or "TLS"

    def _greeting(self) -> Reply:
        code, message = self.client.getreply()
        reply = self.expect("greeting", code, message, (220,))
        self.banner = reply.text
        return reply

    def _ehlo(self) -> Reply:
        code, message = self.client.ehlo()
        return self.expect("ehlo", code, message, (250,))

    def _starttls(self) -> str:
        client = self.client
        if not client.has_extn("starttls"):
            raise self.fail("starttls", None, category="starttls_unsupported")
        code, message = client.docmd("STARTTLS")
        self.expect("starttls", code, message, (220,))
        self._wrap()
        client.file = None
        # The server forgets everything it said before TLS (RFC 3207).
        client.helo_resp = client.ehlo_resp = None
        client.esmtp_features = {}
        client.does_esmtp = False
        # EHLO ourselves: inside smtplib a 421 here would lose its text.
        code, message = client.ehlo()
        self.expect("starttls", code, message, (250,))
        return client.sock.version() or "TLS"

    def _auth(self) -> Reply:
        client = self.client
        if self.target.auth not in MECHANISMS_FOR_AUTH:
            raise ValueError(f"unknown auth method {self.target.auth!r}")
        usable = MECHANISMS_FOR_AUTH[self.target.auth]
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in usable if m in offered), None)
        if mechanism is None:
            detail = f"server offers: {' '.join(offered) or 'no AUTH at all'}; needed: {' or '.join(usable)}"
            raise self.fail("auth", None, category="auth_unsupported", detail=detail)
        client.user, client.password = self.target.username, self.target.password
        answer = MECHANISMS[mechanism](client, self.target)
        if self.transcript is not None:
            self.transcript.authenticating = True
        try:
            code, message = client.auth(mechanism, answer, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as exc:
            code, message = exc.smtp_code, exc.smtp_error
        finally:
            if self.transcript is not None:
                self.transcript.authenticating = False
            client.password = ""
        return self.expect("auth", code, message, (235,))

    # -- closing ----------------------------------------------------------------------

    def quit(self, timeout: float) -> None:
        """QUIT (within ``timeout``) and close; safe on a closed session."""
        client = self.client
        try:
            if client.sock is not None:
                client.sock.settimeout(timeout)
                client.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            client.close()


def fetch_presented_certificate(address: tuple, host: str, security: str, timeout: float,
                                local_hostname: str) -> bytes | None:
    """The certificate (DER) the server at ``address`` (already checked) presents,
    unverified — to explain a failed verification; None if unreadable."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(timeout)
            raw.connect(address)
            if security != "ssl":
                client = smtplib.SMTP(local_hostname=local_hostname, timeout=timeout)
                client.sock = raw
                code, _ = client.getreply()
                if code != 220 or client.ehlo()[0] != 250 or client.docmd("STARTTLS")[0] != 220:
                    return None
            return presented_certificate(raw, host) or None
    except (OSError, smtplib.SMTPException, ValueError):
        return None


def extract_queue_id(text: str) -> str | None:
    """The queue id in a 250 reply to DATA, when the server names one."""
    lowered = text.lower()
    marker = "queued as"
    if marker in lowered:
        rest = text[lowered.index(marker) + len(marker):].strip()
        return rest.split()[0].strip("<>.,") if rest else None
    words = [w for w in text.split() if len(w) >= 8 and any(c.isdigit() for c in w) and w[0] != "<"]
    return words[-1].strip(".,") if words else None
