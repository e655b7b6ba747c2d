"""A local SMTP server that behaves like a strict provider and keeps what it gets.

``DevMailbox`` runs aiosmtpd in a background thread.  It insists on what real
submission servers insist on — STARTTLS before anything else, then AUTH — so
the wizard's connection test and test email take the same path they take
against Gmail or Microsoft 365.  Any username and password are accepted
except one deliberately rejected password, which lets a developer see the
wizard's "wrong password" guidance without a real account.  With a
``token_checker`` it also takes sign-in tokens (SASL XOAUTH2, see
``xoauth2``): the checker decides, and a refused token gets Google's
exchange, so the wizard's "Sign in again" guidance can be seen locally too.
Accepted mail is written to a Maildir (see ``store``), which the web app's
dev inbox reads.

Plain module, no Flask: the ``dev-mailbox`` CLI command and the tests use it
directly.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from . import store
from .certs import server_tls_context
from .xoauth2 import GOOGLE_REJECTION, google_error_report, read_xoauth2_credentials

__all__ = [
    "BANNER_HOSTNAME",
    "DEFAULT_REJECTED_PASSWORD",
    "DevMailbox",
    "find_free_port",
    "quiet_login_data_notice",
    "run_forever",
]

BANNER_HOSTNAME = "heichat-dev-mailbox"
DEFAULT_REJECTED_PASSWORD = "wrong-password"

log = logging.getLogger(__name__)


class _LoginDataNoticeFilter(logging.Filter):
    """Drops aiosmtpd 1.4.6's deprecation notice about ``Session.login_data``.

    aiosmtpd itself sets that attribute on every successful AUTH and then
    logs a warning about its own deprecated API — noise that says nothing
    about our server, and would otherwise appear once per login.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Session.login_data is deprecated")


_LOGIN_DATA_FILTER = _LoginDataNoticeFilter()


def quiet_login_data_notice() -> None:
    """Install the filter above on aiosmtpd's logger (idempotent)."""
    logger = logging.getLogger("mail.log")
    if _LOGIN_DATA_FILTER not in logger.filters:
        logger.addFilter(_LOGIN_DATA_FILTER)


def find_free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a currently unused TCP port on ``host``.

    aiosmtpd's Controller needs a concrete port up front (its readiness check
    connects to ``self.port``), so port 0 cannot be handed to it directly.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def check_port_available(host: str, port: int) -> None:
    """Fail fast with a clear error if ``host:port`` cannot be bound.

    When binding fails inside aiosmtpd's thread, ``Controller.start`` only
    notices after its whole ``ready_timeout``; checking first gives an
    immediate "address already in use".  SO_REUSEADDR mirrors what asyncio
    sets, so a port merely in TIME_WAIT is not reported as busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Authenticator:
    """Accepts every login except the one password that is refused on purpose."""

    def __init__(self, rejected_password: str) -> None:
        self._rejected = rejected_password.encode("utf-8")
        # Same enhanced status code Gmail uses for bad credentials, so the
        # wizard's failure classification is exercised realistically.  The
        # text names the configured password (a known dev value), never the
        # submitted one.
        self.reply = (
            "535 5.7.8 Username and Password not accepted "
            f"(the dev mailbox rejects the password {rejected_password!r} on purpose)"
        )

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False, message=self.reply)
        if auth_data.password == self._rejected:
            return AuthResult(success=False, handled=False, message=self.reply)
        # Keep only the username in the session: the password has no use
        # after this point and should not linger in memory or logs.
        return AuthResult(success=True, auth_data=auth_data.login)


class _MaildirHandler:
    """aiosmtpd handler that stores each accepted message in the Maildir."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = maildir

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        try:
            key = store.save_message(
                self.maildir, envelope.mail_from or "", list(envelope.rcpt_tos), data
            )
        except OSError:
            # A full or read-only disk is a temporary condition for the
            # client: 451 makes it retry later instead of giving up.
            log.exception("dev mailbox could not store a message in %s", self.maildir)
            return "451 4.3.0 Dev mailbox could not store the message"
        return f"250 2.0.0 Ok: queued as {key}"


# (username, token) -> whether the token is valid for that mailbox.
TokenChecker = Callable[[str, str], bool]


class _MaildirHandlerWithXoauth2(_MaildirHandler):
    """The Maildir handler plus XOAUTH2 (aiosmtpd offers an ``auth_*`` method's mechanism)."""

    def __init__(self, maildir: Path, token_checker: TokenChecker) -> None:
        super().__init__(maildir)
        self._token_checker = token_checker

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        credentials = await read_xoauth2_credentials(server, args)
        if credentials is None:
            return AuthResult(success=False, handled=True)
        username, token = credentials
        try:
            valid = self._token_checker(username, token)
        except Exception:  # noqa: BLE001 - a broken store must not drop the connection
            # Neither the token nor the exception text (which might quote it) is logged.
            log.error("dev mailbox token checker failed for %s", username)
            return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")
        if valid:
            return AuthResult(success=True, auth_data=username)
        if await google_error_report(server) is None:
            return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False, message=GOOGLE_REJECTION)


class DevMailbox:
    """The development SMTP server: STARTTLS + AUTH required, mail kept in a Maildir.

    ``port=0`` picks a free port; read the real one from ``.port`` after
    ``start()``.  Non-loopback hosts are refused unless ``allow_remote=True``,
    because the server accepts almost any credentials.  ``token_checker``
    ``(username, token) -> bool`` makes it offer XOAUTH2 too (None: not offered).
    """

    def __init__(
        self,
        maildir: Path,
        cert: Path,
        key: Path,
        host: str = "127.0.0.1",
        port: int = 8025,
        rejected_password: str = DEFAULT_REJECTED_PASSWORD,
        *,
        ready_timeout: float = 5.0,
        allow_remote: bool = False,
        token_checker: TokenChecker | None = None,
    ) -> None:
        if not allow_remote and not _is_loopback(host):
            raise ValueError(
                f"refusing to listen on {host!r}: the dev mailbox accepts any login, "
                "so it only listens on loopback unless allow_remote=True"
            )
        self.maildir = Path(maildir)
        self.cert = Path(cert)
        self.key = Path(key)
        self.host = host
        self.requested_port = port
        self.rejected_password = rejected_password
        self.ready_timeout = ready_timeout
        self.token_checker = token_checker
        self._port: int | None = None
        self._controller: Controller | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        """The port actually listened on (the requested one until started)."""
        return self._port if self._port is not None else self.requested_port

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Bind and serve in a background thread; returns once it answers."""
        with self._lock:
            if self._controller is not None:
                raise RuntimeError("dev mailbox already running")
            quiet_login_data_notice()
            # Create the Maildir now so a bad path fails here, not on the
            # first delivery inside the server thread.
            store.ensure_maildir(self.maildir)
            tls_context = server_tls_context(self.cert, self.key)

            # A free port found by probing can be taken by someone else before
            # aiosmtpd binds it; with port=0 simply try another.
            attempts = 3 if self.requested_port == 0 else 1
            for attempt in range(attempts):
                port = self.requested_port or find_free_port(self.host)
                try:
                    check_port_available(self.host, port)
                    self._controller = self._start_controller(tls_context, port)
                except OSError as error:
                    if attempt + 1 == attempts:
                        raise OSError(
                            error.errno,
                            f"dev mailbox cannot listen on {self.host}:{port}: {error.strerror}",
                        ) from error
                    continue
                self._port = port
                return

    def _start_controller(self, tls_context: ssl.SSLContext, port: int) -> Controller:
        if self.token_checker is None:
            handler = _MaildirHandler(self.maildir)
        else:
            handler = _MaildirHandlerWithXoauth2(self.maildir, self.token_checker)
        controller = Controller(
            handler,
            hostname=self.host,
            port=port,
            ready_timeout=self.ready_timeout,
            server_hostname=BANNER_HOSTNAME,
            tls_context=tls_context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=_Authenticator(self.rejected_password),
        )
        try:
            # The readiness probe only reads the greeting, which is allowed
            # before STARTTLS, so it works with require_starttls=True.
            controller.start()
        except BaseException:
            _discard_controller(controller)
            raise
        return controller

    def stop(self) -> None:
        """Stop serving; safe to call when not running."""
        with self._lock:
            controller, self._controller = self._controller, None
            self._port = None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> DevMailbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _discard_controller(controller: Controller) -> None:
    """Release a controller whose start() failed (thread, loop)."""
    try:
        controller.stop(no_assert=True)
    except Exception:  # noqa: BLE001 - best effort; the start error matters more
        pass
    # If the server thread died before running its loop, nothing closed the
    # loop; close it so it is not reported as leaked.
    loop = controller.loop
    if not loop.is_running() and not loop.is_closed():
        loop.close()


def run_forever(
    maildir: Path,
    cert: Path,
    key: Path,
    host: str = "127.0.0.1",
    port: int = 8025,
    rejected_password: str = DEFAULT_REJECTED_PASSWORD,
    *,
    announce: Callable[[str], None] | None = print,
    stop_event: threading.Event | None = None,
    allow_remote: bool = False,
    token_checker: TokenChecker | None = None,
) -> None:
    """Run a DevMailbox until Ctrl-C (or until ``stop_event`` is set).

    ``announce`` receives human-readable start/stop lines (``print`` for a
    CLI; pass None to stay quiet). ``token_checker`` as for ``DevMailbox``.
    """
    stop_event = stop_event or threading.Event()
    mailbox_server = DevMailbox(
        maildir,
        cert,
        key,
        host=host,
        port=port,
        rejected_password=rejected_password,
        allow_remote=allow_remote,
        token_checker=token_checker,
    )
    with mailbox_server:
        if announce:
            announce(
                f"Dev mailbox listening on {host}:{mailbox_server.port} "
                f"(STARTTLS + AUTH required; any password except {rejected_password!r}). "
                f"Mail is stored in {mailbox_server.maildir}. Press Ctrl-C to stop."
            )
        try:
            # Wait in slices: a plain wait() can delay Ctrl-C on some platforms.
            while not stop_event.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    if announce:
        announce("Dev mailbox stopped.")
