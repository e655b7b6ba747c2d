"""The IMAP fetcher: bring the replies in each store's own mailbox into HeiChat.

For each store with fetching enabled (``ImapFetching``) it opens the
mailbox through ``ImapSession`` (the folder read-only: ``EXAMINE``), checks
UIDVALIDITY (changed: the mailbox was rebuilt, read it again from the
start — ``ingest`` recognises what it already stored by Message-ID), and
reads every message with a UID above ``last_uid`` with ``BODY.PEEK[]`` (which
never sets ``\\Seen``), oldest first, handing each to
``wizard.inbound.ingest.ingest(..., source="imap", keep_unmatched=False)``.
``last_uid`` advances only after ``ingest`` committed the message, so a
fetcher killed between two messages loses nothing and doubles nothing.
HeiChat never deletes a message and never changes a flag.

Messages older than the store's first email from HeiChat cannot be replies
to it; they are passed over without being downloaded (IMAP ``SEARCH SINCE``).

Where it runs:

- ``flask --app wizard inbox-fetcher [--once]`` (``wizard.commands.inbox_fetcher``);
- inside ``serve`` (``wizard.commands.embedded_fetcher``).

Each store has its own watcher thread: when the server offers IDLE it waits
there for new mail (``EXISTS``, at most ``idle_seconds``, 29 minutes by
default, as RFC 2177 asks), otherwise it polls every ``poll_seconds``. The
list of stores is looked at again every ``poll_seconds``. A store's failure
never stops the others: it is recorded on its row (``last_category``,
``last_error``) and tried again after ``poll_seconds``.
"""
from __future__ import annotations

import imaplib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from imapclient.exceptions import IMAPClientError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wizard.catalogue import Catalogue, load_catalogue
from wizard.inbound.imap_diagnosis import diagnose_exception
from wizard.inbound.imap_options import ImapOptions
from wizard.inbound.imap_session import ImapSession, Refused, StageFailed
from wizard.inbound.imap_settings import imap_target, record_result
from wizard.inbound.ingest import ingest
from wizard.models import SmtpSettings
from wizard.models.inbound import ImapFetching
from wizard.models.outbox import OutboxEmail
from wizard.oauth.flow import SignInClient
from wizard.secrets import SecretBox, SecretError

__all__ = ["FetchStats", "Fetcher", "run_fetcher", "LOGIN_UNAVAILABLE"]

log = logging.getLogger("wizard.inbound.imap")

# How often a waiting watcher looks at its stop flag (seconds).
STOP_CHECK_SECONDS = 0.5
LOGIN_UNAVAILABLE = "login_unavailable"
# Why the borrowed login cannot be used, in words for the merchant (SecretError.reason).
LOGIN_PROBLEMS = {
    "unreadable": "The sending password cannot be read any more: type it again in the set-up, then turn reading on again.",
    "server_changed": "The sending login changed since reading was turned on: turn reading on again.",
    "reconnect_needed": "The sign-in needs renewing: click \"Sign in again\" in the set-up.",
    "token_unavailable": "The sign-in could not be refreshed just now; HeiChat tries again shortly.",
}

Ingest = Callable[..., object]


@dataclass
class FetchStats:
    """What a fetcher did (for logs and tests); counts by ``ingest`` outcome."""

    outcomes: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    failures: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _outcome_name(result) -> str:
    return str(getattr(result, "outcome", result))


class Fetcher:
    """Reads the enabled stores' mailboxes; ``run`` loops until ``stop_event`` is set."""

    def __init__(self, engine: Engine, box: SecretBox, options_factory: Callable[[], ImapOptions], *,
                 stop_event: threading.Event | None = None, catalogue: Catalogue | None = None,
                 sign_in_clients: Mapping[str, SignInClient] | None = None, ingest_message: Ingest = ingest,
                 on_idle: Callable[[int], None] | None = None):
        self.engine = engine
        self.box = box
        self.options_factory = options_factory
        self.stop_event = stop_event or threading.Event()
        self.catalogue = catalogue or load_catalogue()
        self.sign_in_clients = sign_in_clients or {}
        self.ingest_message = ingest_message
        self.on_idle = on_idle
        self.stats = FetchStats()
        self._lock = threading.Lock()

    # -- the loops -----------------------------------------------------------------

    def run_once(self) -> FetchStats:
        """Read every enabled store's new messages once, one store after another."""
        for store_id in self.enabled_stores():
            if self.stop_event.is_set():
                break
            self.fetch_store(store_id)
        return self.stats

    def run(self) -> FetchStats:
        """One watcher thread per enabled store, the list looked at again every ``poll_seconds``."""
        watchers: dict[int, tuple[tuple, _Watcher]] = {}
        try:
            while not self.stop_event.is_set():
                try:
                    wanted = self.enabled_stores_with_keys()
                except Exception:
                    log.exception("inbox fetcher: could not read the stores")
                    wanted = {store_id: key for store_id, (key, _w) in watchers.items()}
                for store_id, (key, watcher) in list(watchers.items()):
                    if wanted.get(store_id) != key or not watcher.thread.is_alive():
                        watcher.stop()
                        del watchers[store_id]
                for store_id, key in wanted.items():
                    if store_id not in watchers:
                        watchers[store_id] = (key, _Watcher(self, store_id))
                self.stop_event.wait(self.options_factory().poll_seconds)
        finally:
            for _key, watcher in watchers.values():
                watcher.stop(join=False)
            for _key, watcher in watchers.values():
                watcher.thread.join(10)
        return self.stats

    def enabled_stores(self) -> list[int]:
        return sorted(self.enabled_stores_with_keys())

    def enabled_stores_with_keys(self) -> dict[int, tuple]:
        """Enabled stores and what their watcher was started with (a change restarts it)."""
        with Session(self.engine) as session:
            rows = session.exec(select(ImapFetching).where(ImapFetching.enabled == True)).all()  # noqa: E712
            return {row.store_id: (row.host, row.port, row.security, row.username, row.folder, row.auth_method,
                                   row.password_binding, row.oauth_grant_id) for row in rows}

    # -- one store -------------------------------------------------------------------

    def fetch_store(self, store_id: int, *, stay: threading.Event | None = None) -> None:
        """Open the store's mailbox, read what is new; with ``stay`` (a watcher's stop
        flag), keep the connection and wait in IDLE for more until it is set."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.exec(select(ImapFetching).where(ImapFetching.store_id == store_id)).first()
            if row is None or not row.enabled:
                return
            target = None
            try:
                saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).first()
                options = self.options_factory()
                target = imap_target(session, row, saved, self.box, options, self.catalogue, self.sign_in_clients)
                # No read transaction stays open while IMAP talks.
                session.commit()
                imap = ImapSession(target)
                try:
                    imap.open()
                    self.read_new(session, row, imap)
                    record_result(session, row, "ok")
                    while stay is not None and not stay.is_set() and self.wait_for_mail(imap, stay, options, store_id):
                        self.read_new(session, row, imap)
                        record_result(session, row, "ok")
                finally:
                    imap.close()
            except SecretError as problem:
                self.failed(session, row, LOGIN_UNAVAILABLE, LOGIN_PROBLEMS.get(problem.reason, str(problem)))
            except Refused as refused:
                self.failed(session, row, "not_allowed", str(refused))
            except StageFailed as failed:
                self.failed(session, row, failed.failure.category, failed.failure.detail)
            except (OSError, IMAPClientError, imaplib.IMAP4.abort, EOFError) as exc:
                failure = diagnose_exception("fetch", exc, target) if target else None
                self.failed(session, row, failure.category if failure else "unexpected",
                            failure.detail if failure else exc.__class__.__name__)
            except Exception as exc:
                # A bug or the database: the class only, since a database error may quote a message.
                log.exception("inbox fetcher: store %s failed", store_id)
                session.rollback()
                self.failed(session, row, "unexpected", f"Reading stopped: {exc.__class__.__name__}.")

    def failed(self, session: Session, row: ImapFetching, category: str, detail: str) -> None:
        with self._lock:
            self.stats.failures += 1
        log.info("inbox fetcher: store %s: %s (%s)", row.store_id, category, detail)
        try:
            session.rollback()
            record_result(session, row, category, detail)
        except Exception:
            log.exception("inbox fetcher: could not record the failure of store %s", row.store_id)

    def read_new(self, session: Session, row: ImapFetching, imap: ImapSession) -> None:
        """Hand every message above ``last_uid`` to ``ingest``, oldest first, advancing ``last_uid`` after each."""
        client = imap.client
        validity = imap.folder_state.get("uidvalidity")
        if row.uidvalidity != validity:
            # A new mailbox (or a rebuilt one): its UIDs start over.
            row.uidvalidity, row.last_uid = validity, 0
            session.add(row)
            session.commit()
        start = row.last_uid + 1
        # ``n:*`` always includes the last message, even below n: filter.
        uids = sorted(uid for uid in client.search(["UID", f"{start}:*"]) if uid > row.last_uid)
        if not uids:
            return
        since = self.first_email_date(session, row.store_id)
        if since is None:
            wanted: set[int] = set()
        else:
            wanted = set(client.search(["UID", f"{start}:*", "SINCE", since]))
        session.commit()
        for uid in uids:
            if self.stop_event.is_set():
                return
            if uid in wanted:
                fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
                raw = fetched.get(b"BODY[]")
                if raw is not None:
                    result = self.ingest_message(session, raw, source="imap", store_id=row.store_id,
                                                 keep_unmatched=False)
                    with self._lock:
                        self.stats.count(_outcome_name(result))
            # Only now: ingest has committed this message (or it was passed over).
            row.last_uid = uid
            session.add(row)
            session.commit()
        with self._lock:
            self.stats.passes += 1

    @staticmethod
    def first_email_date(session: Session, store_id: int):
        """The day before the store's first email from HeiChat (None: it sent none, so nothing is a reply)."""
        first = session.exec(select(func.min(OutboxEmail.created_at)).where(OutboxEmail.store_id == store_id)).first()
        return (first - timedelta(days=1)).date() if first is not None else None

    def wait_for_mail(self, imap: ImapSession, stay: threading.Event, options: ImapOptions, store_id: int) -> bool:
        """Wait for new mail on the open session: in IDLE when offered (True on EXISTS or when
        the IDLE period ends), else False (the watcher reconnects after ``poll_seconds``)."""
        if "IDLE" not in imap.capabilities():
            return False
        client = imap.client
        client.idle()
        if self.on_idle:
            self.on_idle(store_id)
        deadline = time.monotonic() + options.idle_seconds
        arrived = False
        try:
            while not stay.is_set() and not self.stop_event.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=min(STOP_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))
                if any(len(r) >= 2 and r[1] == b"EXISTS" for r in responses):
                    arrived = True
                    break
        finally:
            client.idle_done()
        return arrived or time.monotonic() >= deadline


class _Watcher:
    """One store's thread: fetch, then IDLE (or sleep ``poll_seconds``), until stopped."""

    def __init__(self, fetcher: Fetcher, store_id: int):
        self.fetcher = fetcher
        self.store_id = store_id
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"imap-store-{store_id}", daemon=True)
        self.thread.start()

    def run(self) -> None:
        fetcher = self.fetcher
        while not self.stop_event.is_set() and not fetcher.stop_event.is_set():
            fetcher.fetch_store(self.store_id, stay=self.stop_event)
            poll = fetcher.options_factory().poll_seconds
            deadline = time.monotonic() + poll
            while time.monotonic() < deadline and not self.stop_event.is_set() and not fetcher.stop_event.is_set():
                self.stop_event.wait(min(STOP_CHECK_SECONDS, max(0.0, deadline - time.monotonic())))

    def stop(self, join: bool = True) -> None:
        self.stop_event.set()
        if join:
            self.thread.join(10)


def run_fetcher(engine: Engine, box: SecretBox, options_factory: Callable[[], ImapOptions], *,
                once: bool = False, stop_event: threading.Event | None = None, catalogue: Catalogue | None = None,
                sign_in_clients: Mapping[str, SignInClient] | None = None, ingest_message: Ingest = ingest,
                on_idle: Callable[[int], None] | None = None) -> FetchStats:
    """Bring replies in until ``stop_event`` is set (with ``once``: every enabled store once, then return).

    ``options_factory()`` gives the ``ImapOptions`` (timeouts, CA file, address
    policy, ``idle_seconds``, ``poll_seconds``); ``sign_in_clients`` refresh the
    access tokens of signed-in stores; ``on_idle(store_id)`` is told each time a
    store's watcher starts waiting in IDLE."""
    fetcher = Fetcher(engine, box, options_factory, stop_event=stop_event, catalogue=catalogue,
                      sign_in_clients=sign_in_clients, ingest_message=ingest_message, on_idle=on_idle)
    return fetcher.run_once() if once else fetcher.run()
