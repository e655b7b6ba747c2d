"""The inbound SMTP server: where replies to ``reply+TOKEN@`` the inbound domain arrive.

Point the inbound domain's MX record at the host running
``flask --app wizard inbound-smtp`` (README, "Replies come back"). The server
accepts mail only for reply addresses of that domain whose token belongs to
a conversation — anything else is refused at RCPT, so it is never an open
relay and never a spam sink — up to a size limit, with optional STARTTLS.
A message is answered ``250`` only after it is committed (``ingest``): a
server killed mid-message loses nothing, the sender simply tries again, and
the retry is stored once. No authentication: it receives, it never sends.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import Engine
from sqlmodel import Session as DbSession
from sqlmodel import select

from wizard.devmailbox.server import check_port_available, find_free_port
from wizard.inbound.ingest import DUPLICATE, IMPORTED, ingest
from wizard.models import Conversation, Store
from wizard.outbox.reply_addresses import token_in

__all__ = ["InboundServer", "DEFAULT_MAX_BYTES"]

log = logging.getLogger("wizard.inbound")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
NOT_OURS = "550 5.1.1 No such recipient here: this server only takes replies to HeiChat reply addresses"
UNKNOWN_TOKEN = "550 5.1.1 This reply address is not (or no longer) in use"
TRY_LATER = "451 4.3.0 The message could not be stored just now; please try again later"


class _InboundHandler:
    def __init__(self, engine: Engine, domain: str):
        self.engine = engine
        self.domain = domain

    def _token_known(self, token: str) -> bool:
        with DbSession(self.engine) as session:
            return (session.exec(select(Conversation.id).where(Conversation.reply_token == token)).first() is not None
                    or session.exec(select(Store.id).where(Store.reply_token == token)).first() is not None)

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options) -> str:
        token = token_in(address, self.domain)
        if token is None:
            return NOT_OURS
        known = await asyncio.get_running_loop().run_in_executor(None, self._token_known, token)
        if not known:
            return UNKNOWN_TOKEN
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _store(self, raw: bytes) -> str:
        with DbSession(self.engine, expire_on_commit=False) as session:
            result = ingest(session, raw, source="smtp")
        if result.outcome in (IMPORTED, DUPLICATE):
            return f"250 2.0.0 OK: stored ({result.outcome})"
        # Parsed but nowhere to go, or not an email at all: accepted and
        # dropped would be a silent loss; a refusal tells the sender.
        return f"550 5.6.0 The message could not be filed: {result.outcome}"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self._store, raw)
        except Exception:  # the database is unreachable: the sender keeps the message and retries
            log.exception("inbound SMTP: could not store a message")
            return TRY_LATER


class _Controller(Controller):
    def __init__(self, handler, *, max_bytes: int, tls_context: ssl.SSLContext | None, **kwargs):
        super().__init__(handler, **kwargs)
        self._max_bytes = max_bytes
        self._tls_context = tls_context

    def factory(self) -> SMTP:
        return SMTP(self.handler, data_size_limit=self._max_bytes, tls_context=self._tls_context,
                    require_starttls=False, hostname=self.hostname, ident="HeiChat inbound")


class InboundServer:
    """The inbound server in a background thread (``start`` / ``stop``)."""

    def __init__(self, engine: Engine, domain: str, host: str = "127.0.0.1", port: int = 2525, *,
                 max_bytes: int = DEFAULT_MAX_BYTES, cert: str | Path | None = None, key: str | Path | None = None):
        if not domain.strip():
            raise ValueError("the inbound domain is not set (WIZARD_INBOUND_DOMAIN)")
        self.engine = engine
        self.domain = domain.strip().lower().rstrip(".")
        self.host = host
        self.requested_port = port
        self.max_bytes = max_bytes
        self.tls_context = None
        if cert and key:
            self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_context.load_cert_chain(str(cert), str(key))
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self.port = port

    def start(self) -> InboundServer:
        with self._lock:
            if self._controller is not None:
                raise RuntimeError("inbound server already running")
            port = self.requested_port or find_free_port(self.host)
            check_port_available(self.host, port)
            controller = _Controller(_InboundHandler(self.engine, self.domain), hostname=self.host, port=port,
                                     max_bytes=self.max_bytes, tls_context=self.tls_context,
                                     server_hostname=self.domain, ready_timeout=5.0)
            controller.start()
            self._controller, self.port = controller, port
        return self

    def stop(self) -> None:
        with self._lock:
            controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> InboundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
