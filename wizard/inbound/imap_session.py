"""One IMAP client session: the checked connection, TLS, the greeting, the login and the folder.

Every IMAP conversation HeiChat starts goes through ``ImapSession.open`` —
"Test IMAP" (``wizard.inbound.imap_check``) and the fetcher
(``wizard.inbound.imap_fetcher``) — so the security rules hold everywhere,
as in the SMTP session (``wizard.smtp.session``):

- the host is resolved once; every address (and the port) is checked
  against the target's address policy before anything is sent, and the
  socket goes to a checked address, never through a second look-up;
- TLS is always verified, with the shared contexts of ``wizard.smtp.tls``,
  from the first byte (``ssl``, port 993) or after STARTTLS (``starttls``,
  port 143); an unencrypted session never reaches the login;
- the login is ``LOGIN`` with the password, or ``AUTHENTICATE XOAUTH2`` with
  the access token (only where the server offers it); neither is ever
  written to the transcript, a log or an error;
- the folder is opened read-only (``EXAMINE``): nothing HeiChat does can
  change a flag or delete a message.

The protocol itself is imapclient's (over imaplib); this module only hands
it a socket it connected and checked itself. Each stage is timed
(``StageRecord``) under one deadline; a failure raises ``StageFailed`` with
the diagnosis (``wizard.inbound.imap_diagnosis``), a refusal by the address
policy raises ``Refused`` (nothing was sent).
"""
from __future__ import annotations

import imaplib
import socket
import ssl
import time
from collections.abc import Callable

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError

from wizard.inbound.imap_diagnosis import answer_from_text, diagnose_answer, diagnose_exception
from wizard.inbound.imap_transcript import ImapTranscript
from wizard.inbound.imap_types import ImapAnswer, ImapFailure, ImapTarget, StageRecord
from wizard.smtp.lookup import connect_first, first_refusal, resolve_target
from wizard.smtp.session import fetch_presented_certificate
from wizard.smtp.session import xoauth2_initial_response as xoauth2_response
from wizard.smtp.stage_clock import StageClock
from wizard.smtp.tls import tls_context, wrap_verified

__all__ = ["ImapSession", "Refused", "StageFailed", "planned_stages"]


def planned_stages(security: str) -> list[str]:
    """The stages "Test IMAP" goes through, in order."""
    middle = ["tls", "greeting"] if security == "ssl" else ["greeting", "starttls"]
    return ["dns", "connect", *middle, "login", "folder"]


class Refused(Exception):
    """The address policy refused the target before anything was sent to it."""


class StageFailed(Exception):
    """``stage`` failed; ``failure`` is its diagnosis."""

    def __init__(self, stage: str, failure: ImapFailure):
        super().__init__(failure.category)
        self.stage = stage
        self.failure = failure


class _CheckedIMAP4(imaplib.IMAP4):
    """imaplib's client on a socket connected (and for ``ssl`` wrapped) by the session,
    with every line copied into the redacted transcript."""

    def __init__(self, host: str, sock: socket.socket, transcript: ImapTranscript | None):
        self._checked_socket = sock
        self._transcript = transcript
        # ``host`` is the name: what STARTTLS verifies the certificate against.
        super().__init__(host, 0)

    def _create_socket(self, timeout=None):
        return self._checked_socket

    def send(self, data):
        if self._transcript is not None:
            self._transcript.client(data)
        super().send(data)

    def _get_line(self):
        line = super()._get_line()
        if self._transcript is not None:
            self._transcript.server(line)
        return line


class _CheckedClient(IMAPClient):
    """imapclient over the session's own imaplib client (it opens no socket itself)."""

    def __init__(self, imap4: _CheckedIMAP4, target: ImapTarget):
        self._prepared = imap4
        super().__init__(target.host, port=target.port, ssl=target.security == "ssl", timeout=target.timeout)
        # imapclient copies every line to its debug log; the session keeps its own transcript.
        self._imap.debug = 0

    def _create_IMAP4(self):
        return self._prepared


class ImapSession(StageClock):
    """One client connection to ``target``, opened stage by stage."""

    def __init__(self, target: ImapTarget, *, transcript: ImapTranscript | None = None,
                 on_stage: Callable[[StageRecord], None] | None = None, deadline: float | None = None):
        super().__init__(target.timeout, on_stage, deadline)
        self.target = target
        self.transcript = transcript
        self.addresses: list[tuple] = []
        self.sock: socket.socket | None = None
        self.client: _CheckedClient | None = None
        self.folder_state: dict = {}

    # -- the stages ------------------------------------------------------------------------

    def stage(self, name: str, action: Callable[[], str | None], cap: float | None = None) -> str | None:
        """Run one stage within its share of the deadline; on failure record it and raise ``StageFailed``."""
        began = time.monotonic()
        try:
            self._set_timeout(self.budget(cap))
            detail = action()
        except StageFailed as failed:
            self.record(name, began, False, detail=failed.failure.detail)
            raise
        except (OSError, IMAPClientError, imaplib.IMAP4.abort, ValueError, EOFError) as exc:
            failure = diagnose_exception(name, exc, self.target)
            self.record(name, began, False, detail=failure.detail)
            raise StageFailed(name, failure) from exc
        self.record(name, began, True, detail=detail or "")
        return detail

    def _set_timeout(self, seconds: float) -> None:
        sock = self.client._imap.sock if self.client is not None else self.sock
        if sock is not None:
            sock.settimeout(seconds)

    def _answer_failed(self, stage: str, answer: ImapAnswer) -> StageFailed:
        return StageFailed(stage, diagnose_answer(stage, answer, self.target))

    def _failed(self, stage: str, category: str, detail: str) -> StageFailed:
        return StageFailed(stage, ImapFailure(category, None, detail))

    # -- opening ----------------------------------------------------------------------

    def open(self, *, select: bool = True) -> None:
        """Resolve, connect, secure, greet, log in and (unless told not to) open the folder.

        Raises ``Refused`` or ``StageFailed``; the caller closes the session either way.
        """
        target = self.target
        policy = target.address_policy
        refusal = policy.port_refusal(target.port) if policy is not None else None
        if refusal:
            raise Refused(refusal.replace("outgoing mail", "reading mail (IMAP)"))
        self.stage("dns", self._dns)
        self.stage("connect", self._connect)
        if target.security == "ssl":
            self.stage("tls", self._implicit_tls)
        self.stage("greeting", self._greeting, cap=min(target.greeting_timeout, target.timeout / 2))
        if target.security != "ssl":
            self.stage("starttls", self._starttls)
        self.stage("login", self._login)
        if select:
            self.stage("folder", self._select)

    def _dns(self) -> str:
        self.addresses = resolve_target(self.target, self.budget())
        return ", ".join(sorted({a[4][0] for a in self.addresses}))

    def _connect(self) -> str:
        # Every resolved address is checked first; the socket then goes to a
        # checked address, never through a second look-up.
        refusal = first_refusal(self.addresses, self.target.address_policy)
        if refusal:
            raise Refused(refusal.replace("the SMTP host", "the IMAP host"))
        self.sock, address = connect_first(self.addresses, self.budget)
        return f"{address[0]} port {address[1]}"

    def _implicit_tls(self) -> str:
        target = self.target
        try:
            self.sock = wrap_verified(self.sock, target.host, target.ca_file)
        except ssl.SSLCertVerificationError as exc:
            # Looked at once more, unverified, for the diagnosis to explain.
            address = getattr(exc, "peer_address", None)
            if address is not None:
                exc.peer_certificate = fetch_presented_certificate(
                    address[:2], target.host, "ssl", min(3.0, max(0.5, target.timeout / 3)), "heichat")
            raise
        return self.sock.version() or "TLS"

    def _greeting(self) -> str:
        try:
            imap4 = _CheckedIMAP4(self.target.host, self.sock, self.transcript)
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise self._answer_failed("greeting", answer_from_text("BYE", str(exc))) from exc
        self.client = _CheckedClient(imap4, self.target)
        return imap4.welcome.decode("utf-8", "replace")[:200]

    def _starttls(self) -> str:
        imap4 = self.client._imap
        if "STARTTLS" not in imap4.capabilities:
            raise self._failed("starttls", "starttls_unsupported", "The server does not offer STARTTLS.")
        # imaplib wraps with our verifying context, against the host name.
        self.client.starttls(tls_context(self.target.ca_file))
        return imap4.sock.version() or "TLS"

    def _login(self) -> str:
        target = self.target
        if not (target.username.isascii() and target.password.isascii() and target.access_token.isascii()):
            # imaplib sends ASCII only; its encoding error would quote part of the secret.
            raise self._failed("login", "auth_failed", "The username or password has characters IMAP LOGIN cannot carry.")
        if self.transcript is not None:
            self.transcript.authenticating = True
        try:
            if target.auth == "xoauth2":
                return self._xoauth2()
            imap4 = self.client._imap
            typ, data = imap4._simple_command("LOGIN", imap4._quote(target.username), imap4._quote(target.password))
        finally:
            if self.transcript is not None:
                self.transcript.authenticating = False
        if typ != "OK":
            raise self._answer_failed("login", answer_from_text(typ, data[-1] if data else b""))
        self.client._imap.state = "AUTH"
        return f"signed in as {target.username}"

    def _xoauth2(self) -> str:
        target = self.target
        if "AUTH=XOAUTH2" not in self.client._imap.capabilities:
            raise self._failed("login", "auth_unsupported", "The server does not offer AUTHENTICATE XOAUTH2.")
        answered = []

        def respond(_challenge: bytes) -> bytes:
            # The only challenge after the first is the server's error report
            # (Google: base64 JSON): it wants an empty line, then says NO.
            answered.append(True)
            return xoauth2_response(target.username, target.access_token).encode() if len(answered) == 1 else b""

        try:
            typ, data = self.client._imap.authenticate("XOAUTH2", respond)
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise self._answer_failed("login", _answer_from_error(exc)) from exc
        return f"signed in as {target.username}"

    def _select(self) -> str:
        folder = self.target.folder or "INBOX"
        try:
            state = self.client.select_folder(folder, readonly=True)
        except IMAPClientError as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            raise self._answer_failed("folder", _answer_from_error(exc)) from exc
        self.folder_state = {"uidvalidity": state.get(b"UIDVALIDITY"), "exists": state.get(b"EXISTS", 0),
                             "uidnext": state.get(b"UIDNEXT")}
        return f"{folder}: {self.folder_state['exists']} messages"

    # -- what the fetcher asks --------------------------------------------------------

    def capabilities(self) -> tuple[str, ...]:
        if self.client is None:
            return ()
        try:
            return tuple(c.decode() if isinstance(c, bytes) else str(c) for c in self.client.capabilities())
        except (OSError, IMAPClientError, CapabilityError):
            return ()

    # -- closing ----------------------------------------------------------------------

    def close(self, timeout: float = 2.0) -> None:
        """LOGOUT (within ``timeout``) and close; safe on a half-open session."""
        if self.client is not None:
            try:
                self.client._imap.sock.settimeout(timeout)
                self.client.logout()
            except (OSError, IMAPClientError, imaplib.IMAP4.abort, EOFError):
                pass
            try:
                self.client.shutdown()
            except (OSError, IMAPClientError, imaplib.IMAP4.abort):
                pass
        elif self.sock is not None:
            self.sock.close()


def _answer_from_error(exc: BaseException) -> ImapAnswer:
    """The server's answer inside an imaplib / imapclient error ("select failed: [NONEXISTENT] …")."""
    text = str(exc)
    if ": " in text and text.split(": ", 1)[0].endswith("failed"):
        text = text.split(": ", 1)[1]
    if text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        text = text[2:-1]
    return answer_from_text("NO", text)
