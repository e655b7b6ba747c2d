"""Real SMTP peers for tests: aiosmtpd servers on 127.0.0.1 and a silent port.

Helpers, not fixtures, so conftest.py and individual tests can shape them as
needed.  Every server is a real aiosmtpd listener on a free loopback port, so
the code under test talks to it through genuine smtplib and TLS — nothing is
mocked.  Three modes mirror what providers offer:

- ``"starttls"``: port 587 style — STARTTLS required, then AUTH;
- ``"ssl"``: port 465 style — TLS from the first byte, then AUTH;
- ``"plain"``: an unencrypted relay — no STARTTLS and no AUTH advertised.

``silent_listener`` accepts TCP connections but never greets, which is what a
STARTTLS client experiences when pointed at an implicit-TLS port.

With ``xoauth2=Xoauth2Offer(...)`` a server also offers XOAUTH2 (sign-in
tokens) and answers a refused token the way Google (334 error report, empty
line, 535 5.7.8) or Microsoft (535 5.7.3) does, or refuses every token like a
Microsoft 365 mailbox with SMTP AUTH switched off (535 5.7.139). What it
received is kept in ``xoauth2_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hmac
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from wizard.devmailbox.certs import server_tls_context
from wizard.devmailbox.server import find_free_port, quiet_login_data_notice
from wizard.devmailbox.xoauth2 import GOOGLE_REJECTION, google_error_report, read_xoauth2_credentials

__all__ = [
    "DEFAULT_AUTH_REPLY",
    "MODES",
    "ReceivedMessage",
    "TestSmtpServer",
    "Xoauth2Attempt",
    "Xoauth2Offer",
    "silent_listener",
    "start_test_server",
]

HOST = "127.0.0.1"
MODES = ("starttls", "ssl", "plain")
DEFAULT_USERNAME = "merchant@example.test"
DEFAULT_PASSWORD = "correct-app-password"
DEFAULT_AUTH_REPLY = "535 5.7.8 Username and Password not accepted"
MICROSOFT_TOKEN_REJECTION = "535 5.7.3 Authentication unsuccessful"
MICROSOFT_MAILBOX_AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. "
    "Visit https://aka.ms/smtp_auth_disabled for more information."
)
FAILURE_STYLES = ("google", "microsoft")


@dataclass(frozen=True)
class ReceivedMessage:
    """A message as the server received it: envelope, raw bytes, parsed form."""

    envelope_from: str
    envelope_to: list[str]
    data: bytes
    message: EmailMessage


class _RecordingHandler:
    """Keeps every accepted message on the owning TestSmtpServer."""

    def __init__(self, owner: TestSmtpServer) -> None:
        self._owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self._owner.mail_reply is not None:
            return self._owner.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self._owner.rcpt_reply is not None:
            return self._owner.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._owner.data_delay:
            # A slow server: lets a test catch a client in the middle of a batch.
            await asyncio.sleep(self._owner.data_delay)
        if self._owner.data_reply is not None:
            # Providers often refuse only after DATA (unverified sender,
            # sandbox recipient); this lets a test reproduce that.
            return self._owner.data_reply
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        received = ReceivedMessage(
            envelope_from=envelope.mail_from or "",
            envelope_to=list(envelope.rcpt_tos),
            data=data,
            message=email.message_from_bytes(data, policy=email.policy.default),
        )
        with self._owner.lock:
            self._owner.messages.append(received)
            number = len(self._owner.messages)
        return f"250 2.0.0 Ok: queued as TEST{number:06d}"


@dataclass(frozen=True)
class Xoauth2Offer:
    """How a test server answers XOAUTH2.

    ``accepts`` is ``{username: token}`` or a callable ``(username, token) ->
    bool``; ``failure_style`` is how a refused token is answered ("google" or
    "microsoft"); ``mailbox_auth_disabled`` refuses every token with 5.7.139.
    """

    accepts: dict[str, str] | Callable[[str, str], bool] = field(default_factory=dict)
    failure_style: str = "google"
    mailbox_auth_disabled: bool = False

    def __post_init__(self) -> None:
        if self.failure_style not in FAILURE_STYLES:
            raise ValueError(f"failure_style must be one of {FAILURE_STYLES}, not {self.failure_style!r}")

    def token_valid(self, username: str, token: str) -> bool:
        if callable(self.accepts):
            return bool(self.accepts(username, token))
        expected = self.accepts.get(username)
        return expected is not None and hmac.compare_digest(expected.encode(), token.encode())


@dataclass(frozen=True)
class Xoauth2Attempt:
    """One XOAUTH2 login as the server received it."""

    username: str
    token: str
    # The client's answer to Google's 334 error report, decoded: b"" is the
    # empty line the protocol asks for; None when no report was sent (or the
    # client aborted it).
    answer_to_report: bytes | None = None


class _Xoauth2Handler(_RecordingHandler):
    """The recording handler plus XOAUTH2 (aiosmtpd offers an ``auth_*`` method's mechanism)."""

    def __init__(self, owner: TestSmtpServer, offer: Xoauth2Offer) -> None:
        super().__init__(owner)
        self._offer = offer

    def _record(self, username: str, token: str, answer: bytes | None = None) -> None:
        with self._owner.lock:
            self._owner.auth_attempts.append(("XOAUTH2", username))
            self._owner.xoauth2_attempts.append(Xoauth2Attempt(username, token, answer))

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        credentials = await read_xoauth2_credentials(server, args)
        if credentials is None:
            return AuthResult(success=False, handled=True)
        username, token = credentials
        offer = self._offer
        if offer.mailbox_auth_disabled:
            self._record(username, token)
            return AuthResult(success=False, handled=False, message=MICROSOFT_MAILBOX_AUTH_DISABLED)
        if offer.token_valid(username, token):
            self._record(username, token)
            return AuthResult(success=True, auth_data=username)
        if offer.failure_style == "microsoft":
            self._record(username, token)
            return AuthResult(success=False, handled=False, message=MICROSOFT_TOKEN_REJECTION)
        answer = await google_error_report(server)
        self._record(username, token, answer)
        if answer is None:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=GOOGLE_REJECTION)


class _ExactCredentials:
    """Accepts exactly one username/password; answers ``reply`` otherwise."""

    def __init__(self, owner: TestSmtpServer, username: str, password: str, reply: str) -> None:
        self._owner = owner
        self._username = username.encode("utf-8")
        self._password = password.encode("utf-8")
        self._reply = reply

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        login = auth_data.login if isinstance(auth_data, LoginPassword) else b""
        # Record who tried and how, never the password: test output and
        # failure reports must not carry secrets, not even fake ones.
        with self._owner.lock:
            self._owner.auth_attempts.append((mechanism, login.decode("utf-8", "replace")))
        if (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self._username)
            and hmac.compare_digest(auth_data.password, self._password)
        ):
            return AuthResult(success=True, auth_data=login)
        # handled=False + message: aiosmtpd sends our reply verbatim, so a
        # test can impersonate any provider's rejection (535 5.7.139, 534 …).
        return AuthResult(success=False, handled=False, message=self._reply)


class _ImplicitTlsController(Controller):
    """Controller for the ``ssl`` mode that silences one known aiosmtpd warning.

    On an implicit-TLS listener aiosmtpd hides AUTH when
    ``auth_require_tls=True`` (it only counts STARTTLS as TLS; aiosmtpd issues
    274/281), so this listener must use ``auth_require_tls=False`` — which
    makes every new SMTP instance warn "Requiring AUTH while not requiring
    TLS".  Here that is false (the socket is TLS-only), and under pytest's
    ``filterwarnings=error`` the warning would abort each connection.
    ``catch_warnings`` swaps process-wide state; the window is one
    constructor call on the server thread, which is acceptable in tests.
    """

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="Requiring AUTH while not requiring TLS",
                category=UserWarning,
            )
            return super().factory()


class TestSmtpServer:
    """A running aiosmtpd server for one test; stop it (or use ``with``)."""

    # Not a test class, despite the name pytest looks for.
    __test__ = False

    def __init__(self, mode: str, data_reply: str | None, mail_reply: str | None = None,
                 rcpt_reply: str | None = None) -> None:
        self.mode = mode
        self.host = HOST
        self.port = 0
        self.data_reply = data_reply
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        # The replies above may be changed while the server runs (a 451 that
        # clears up); seconds to wait before answering DATA.
        self.data_delay = 0.0
        # Appended to from the server thread; take the lock to read a
        # consistent snapshot while a client may still be sending.
        self.lock = threading.Lock()
        self.messages: list[ReceivedMessage] = []
        self.auth_attempts: list[tuple[str, str]] = []
        self.xoauth2_attempts: list[Xoauth2Attempt] = []
        self._controller: Controller | None = None

    def stop(self) -> None:
        """Stop the server; safe to call twice."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> TestSmtpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_test_server(
    mode: str,
    *,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    cert: Path,
    key: Path,
    auth_reply: str | None = None,
    data_reply: str | None = None,
    mail_reply: str | None = None,
    rcpt_reply: str | None = None,
    offer_auth: bool = True,
    exclude_mechanisms: tuple[str, ...] = (),
    ready_timeout: float = 5.0,
    port: int | None = None,
    command_call_limit: dict[str, int] | None = None,
    xoauth2: Xoauth2Offer | None = None,
    auth_in_the_clear: bool = False,
) -> TestSmtpServer:
    """Start a real SMTP server on 127.0.0.1 and a free port; see module docstring.

    ``auth_reply`` is the full reply line for failed logins (default
    ``535 5.7.8 …``); ``data_reply`` / ``mail_reply`` / ``rcpt_reply``, when
    set, are answered to every DATA / MAIL FROM / RCPT TO instead of
    accepting; ``offer_auth=False`` advertises no AUTH mechanism.
    ``port`` reuses a port (a server restarted where clients expect it);
    ``command_call_limit`` (e.g. ``{"MAIL": 5}``) makes the server answer 421
    and hang up once a connection used a command that often.
    ``xoauth2`` offers XOAUTH2 as well (``exclude_mechanisms=("LOGIN",
    "PLAIN")`` leaves it alone). ``auth_in_the_clear`` makes a ``"plain"``
    server offer AUTH without TLS — a careless server the client must refuse.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    quiet_login_data_notice()
    server = TestSmtpServer(mode, data_reply, mail_reply, rcpt_reply)
    handler = _RecordingHandler(server) if xoauth2 is None else _Xoauth2Handler(server, xoauth2)
    authenticator = _ExactCredentials(
        server, username, password, auth_reply or DEFAULT_AUTH_REPLY
    )
    tls = server_tls_context(cert, key)
    port = port or find_free_port(HOST)

    common = dict(
        hostname=HOST,
        port=port,
        ready_timeout=ready_timeout,
        server_hostname="smtp.test-provider.example",
        authenticator=authenticator,
    )
    if command_call_limit:
        common["command_call_limit"] = command_call_limit
    if not offer_auth:
        # Every mechanism excluded: the server advertises no AUTH at all.
        common["auth_exclude_mechanism"] = ["LOGIN", "PLAIN", "XOAUTH2"]
    elif exclude_mechanisms:
        common["auth_exclude_mechanism"] = list(exclude_mechanisms)
    if mode == "starttls":
        controller: Controller = Controller(
            handler,
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            **common,
        )
    elif mode == "ssl":
        controller = _ImplicitTlsController(
            handler,
            ssl_context=tls,
            auth_required=True,
            auth_require_tls=False,
            **common,
        )
    else:
        # No TLS context: STARTTLS is not offered, and with the default
        # auth_require_tls=True aiosmtpd does not advertise AUTH either.
        controller = Controller(handler, auth_required=False, auth_require_tls=not auth_in_the_clear, **common)

    try:
        controller.start()
    except BaseException:
        with contextlib.suppress(Exception):
            controller.stop(no_assert=True)
        if not controller.loop.is_running() and not controller.loop.is_closed():
            controller.loop.close()
        raise
    server.port = port
    server._controller = controller
    return server


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """Yield a 127.0.0.1 port that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(8)
    # A short accept timeout lets the thread notice shutdown promptly.
    listener.settimeout(0.05)
    stopping = threading.Event()
    accepted: list[socket.socket] = []

    def accept_and_hold() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed
            # Keep the connection open (and silent) until the test ends,
            # so the client waits for a greeting exactly as it would on 465.
            accepted.append(connection)

    thread = threading.Thread(target=accept_and_hold, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(timeout=2)
        listener.close()
        for connection in accepted:
            connection.close()
