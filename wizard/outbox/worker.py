"""The outbox worker: claim due emails, deliver them store by store, record outcomes.

``run_worker`` loops: claim a batch (with a lease), group it by store, and
send each store's emails over one SMTP connection that stays open while the
store has queued mail (reused across batches, reopened when the server
closed it, closed once idle). Per-store rate limits are respected: emails
over a store's per-minute or per-day limit are put back for when the window
has room, without counting an attempt. Temporary failures are retried with
backoff, permanent ones failed with their category.

Where it runs:

- embedded: ``wizard.commands.embedded_worker.start_embedded_worker(app)`` —
  one worker thread alongside the web server (the ``serve`` command);
- on its own: ``flask --app wizard outbox-worker`` (``wizard.commands.outbox_worker``);
  on PostgreSQL any number of them, on any number of machines; on SQLite one.

Delivery is at-least-once: a worker killed after the server accepted a
message but before the outcome was committed sends it again once the lease
runs out (same Message-ID). To keep the database off the critical path, the
"sent" outcomes are committed in small groups (at most ``SENT_FLUSH_COUNT``
messages or ``SENT_FLUSH_SECONDS``), which widens that window slightly.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from wizard.catalogue import Catalogue, load_catalogue
from wizard.models import SmtpSettings, Store, utcnow
from wizard.models.outbox import OutboxEmail
from wizard.oauth.flow import SignInClient
from wizard.outbox import queue
from wizard.outbox.limits import SendWindow, send_window
from wizard.outbox.messages import build_message, message_bytes
from wizard.outbox.sender import SendError, SendFailure, SmtpConnection
from wizard.secrets import SecretBox, SecretError
from wizard.setup.sign_in import HELD_FOR_SIGN_IN, HELD_FOR_TOKEN, XOAUTH2, SignInNeeded, TokenUnavailable, get_grant
from wizard.setup.targets import saved_target, token_was_refused
from wizard.smtp.target_options import TargetOptions

log = logging.getLogger("wizard.outbox")

SENT_FLUSH_COUNT = 50
SENT_FLUSH_SECONDS = 0.25
DEFAULT_IDLE_SECONDS = 10.0
# A store whose saved password cannot be used: its mail stays queued with this
# category (the inbox says "type it again") and is looked at again this often.
PASSWORD_UNREADABLE = "password_unreadable"
PASSWORD_HOLD_SECONDS = 60.0
# A store whose sign-in the provider refused waits for "Sign in again", which
# makes its mail due at once; until then it is looked at again this rarely.
SIGN_IN_HOLD_SECONDS = 600.0
# (category shown with each held email, seconds until it is looked at again)
HOLDS = {
    SignInNeeded.reason: (HELD_FOR_SIGN_IN, SIGN_IN_HOLD_SECONDS),
    TokenUnavailable.reason: (HELD_FOR_TOKEN, PASSWORD_HOLD_SECONDS),
}


@dataclass
class WorkerStats:
    """What a worker did (for logs, tests and the benchmark)."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    rescheduled: int = 0
    released: int = 0
    connections_opened: int = 0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def settings_key(saved: SmtpSettings) -> tuple:
    """Changes whenever the saved settings change (a new connection is needed)."""
    return (saved.id, saved.fingerprint, saved.host, saved.port, saved.security, saved.username,
            saved.password_encrypted)


@dataclass
class _StoreLink:
    """A store's open SMTP connection and the settings it was opened with."""

    key: tuple
    connection: SmtpConnection


@dataclass
class _SentBuffer:
    """Sent outcomes waiting to be committed together."""

    items: list = field(default_factory=list)
    since: float = 0.0


class Worker:
    """One worker's state: its connections per store and its counters."""

    def __init__(self, engine: Engine, box: SecretBox, options_factory: Callable[[], TargetOptions], *,
                 worker_id: str, batch: int, lease_seconds: float, idle_seconds: float,
                 retry_base_seconds: float, retry_cap_seconds: float, stop_event: threading.Event,
                 catalogue: Catalogue | None = None, sign_in_clients: Mapping[str, SignInClient] | None = None):
        self.engine = engine
        self.sign_in_clients = sign_in_clients or {}
        self.box = box
        self.options_factory = options_factory
        self.worker_id = worker_id
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.retry_base_seconds = retry_base_seconds
        self.retry_cap_seconds = retry_cap_seconds
        self.stop_event = stop_event
        self.catalogue = catalogue or load_catalogue()
        self.links: dict[int, _StoreLink] = {}
        self.stats = WorkerStats()
        self._sent = _SentBuffer()
        self._renew_at = 0.0

    # -- the loop ------------------------------------------------------------------

    def run(self, poll_seconds: float, once: bool) -> WorkerStats:
        try:
            while not self.stop_event.is_set():
                try:
                    worked = self.run_batch()
                except Exception:
                    if once:
                        raise
                    # A database or programming error must not end the worker
                    # for good: leases bring its emails back, it tries again.
                    log.exception("outbox worker %s: batch failed", self.worker_id)
                    self.close_all()
                    self.stop_event.wait(poll_seconds)
                    continue
                if not worked:
                    self.close_idle()
                    if once:
                        break
                    self.stop_event.wait(poll_seconds)
        finally:
            self.close_all()
        return self.stats

    def run_batch(self) -> bool:
        """Claim and work one batch; False when nothing was due."""
        with Session(self.engine, expire_on_commit=False) as session:
            claimed = queue.claim(session, self.worker_id, self.batch, self.lease_seconds)
            if not claimed:
                return False
            self.stats.claimed += len(claimed)
            # Renewed at half-time, so a slow batch never outlives its lease.
            self._renew_at = time.monotonic() + self.lease_seconds / 2
            groups: OrderedDict[int, list[OutboxEmail]] = OrderedDict()
            for email in claimed:
                groups.setdefault(email.store_id, []).append(email)
            pending = {email.id: email for email in claimed}
            try:
                for store_id, emails in groups.items():
                    for email in self.deliver_store(session, store_id, emails, pending):
                        pending.pop(email.id, None)
                    if self.stop_event.is_set():
                        break
            finally:
                try:
                    self.flush_sent(session)
                    if pending:
                        # Stopping (or an error): hand the rest back, due now, so
                        # another worker need not wait for the lease to run out.
                        self.stats.released += queue.release(session, list(pending.values()))
                except Exception:
                    # The database is unreachable: the leases will bring them back.
                    log.exception("outbox worker %s: could not hand back its emails", self.worker_id)
            self.close_idle(keep=set(groups))
            return True

    def renew_if_due(self, session: Session, pending: dict[int, OutboxEmail]) -> None:
        """At half-lease, extend the lease on what is left of the batch and
        forget what another worker took over meanwhile."""
        if time.monotonic() < self._renew_at:
            return
        self.flush_sent(session)
        held = queue.extend_leases(session, self.worker_id, list(pending), self.lease_seconds)
        for email_id in list(pending):
            if email_id not in held:
                pending.pop(email_id)
        self._renew_at = time.monotonic() + self.lease_seconds / 2

    # -- one store's emails ----------------------------------------------------------

    def deliver_store(self, session: Session, store_id: int, emails: list[OutboxEmail],
                      pending: dict[int, OutboxEmail]) -> list[OutboxEmail]:
        """Send ``emails`` (all of one store); returns those it finished with."""
        store = session.get(Store, store_id)
        saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).first()
        if store is None or saved is None:
            failure = SendFailure("connect", "unexpected", None, "The store has no saved SMTP settings.")
            return self.settle(emails, pending, lambda email: self.record_failure(session, email, failure,
                                                                                  permanent=True))
        try:
            link = self.link_for(session, store_id, saved)
        except SecretError as problem:
            # The saved password cannot be read (or is not bound to this
            # server), or the sign-in needs renewing: nothing is sent, and the
            # mail waits, queued, with the reason on each email.
            self.links.pop(store_id, None)
            category, seconds = self.hold_for(saved, problem)
            until = utcnow() + timedelta(seconds=seconds)
            return self.settle(emails, pending, lambda email: self.hold(session, email, until, category))
        window = self.send_window(session, store, saved)
        # End the read transaction: none stays open while SMTP talks (on
        # PostgreSQL it would hold locks a migration may be waiting for).
        session.commit()
        for index, email in enumerate(emails):
            if self.stop_event.is_set():
                return emails[:index]
            self.renew_if_due(session, pending)
            if email.id not in pending:
                continue  # taken over by another worker: theirs now
            for_the_rest = self.deliver_one(session, link, window, email)
            if for_the_rest is not None:
                return emails[:index] + self.settle(emails[index:], pending, for_the_rest)
        return emails

    def deliver_one(self, session: Session, link: _StoreLink, window: SendWindow,
                    email: OutboxEmail) -> Callable[[OutboxEmail], None] | None:
        """Send one email and record the outcome. Returns None, or — when the
        outcome holds for the rest of the store's batch too — what to do with
        this email and each one after it."""
        if not window.take():
            self.flush_sent(session)
            return lambda later: self.reschedule(session, later, window.reopens_at)
        try:
            payload = message_bytes(build_message(email))
        except (ValueError, TypeError, UnicodeError) as exc:
            self.record_failure(session, email, SendFailure("data", "unexpected", None, str(exc)), permanent=True)
            return None
        try:
            delivered = link.connection.send(email.sender_email, email.recipient, payload)
        except SendError as error:
            failure = error.failure
            if failure.connection_level and token_was_refused(link.connection.target, failure.category):
                # The mail server refused the sign-in's access token: nothing
                # was sent. Due again at once with a new token (or held, if
                # the provider no longer renews it) — never failed for that.
                return self.token_refused(session, email.store_id, link, failure)
            if failure.connection_level:
                # The connection could not be opened: the same holds for
                # the rest of this store's emails in the batch.
                return lambda same: self.record_failure(session, same, failure, permanent=failure.permanent)
            self.record_failure(session, email, failure, permanent=failure.permanent)
            return None
        self.stats.sent += 1
        self.buffer_sent(session, email, delivered.reply, delivered.queue_id)
        return None

    def token_refused(self, session: Session, store_id: int, link: _StoreLink,
                      failure: SendFailure) -> Callable[[OutboxEmail], None]:
        """A new access token for the next try, which is an ordinary retry with
        backoff (a server that keeps refusing fresh tokens is a real failure);
        when the provider no longer renews it, the mail is held instead."""
        link.connection.close()
        self.links.pop(store_id, None)
        saved = session.exec(select(SmtpSettings).where(SmtpSettings.store_id == store_id)).first()
        try:
            saved_target(session, saved, self.box, self.options_factory(), self.sign_in_clients, token_refused=True)
        except SecretError as problem:
            category, seconds = self.hold_for(saved, problem)
            until = utcnow() + timedelta(seconds=seconds)
            return lambda held: self.hold(session, held, until, category)
        return lambda again: self.record_failure(session, again, failure, permanent=False)

    @staticmethod
    def hold_for(saved: SmtpSettings, problem: SecretError) -> tuple[str, float]:
        """(category shown on each held email, seconds until the next look) for ``problem``."""
        if problem.reason in HOLDS:
            return HOLDS[problem.reason]
        if saved.auth_method == XOAUTH2:
            # A sign-in made for another server or account: signing in again is the fix, not a password.
            return HOLDS[SignInNeeded.reason]
        return PASSWORD_UNREADABLE, PASSWORD_HOLD_SECONDS

    @staticmethod
    def settle(emails: list[OutboxEmail], pending: dict[int, OutboxEmail],
               action: Callable[[OutboxEmail], None]) -> list[OutboxEmail]:
        """Apply ``action`` to each of ``emails`` the worker still holds; the
        worker is done with all of them."""
        for email in emails:
            if email.id in pending:
                action(email)
        return emails

    def link_for(self, session: Session, store_id: int, saved: SmtpSettings) -> _StoreLink:
        """The store's connection, new when its settings (or its access token) changed.
        Raises ``SecretError`` when nothing may be sent."""
        if saved.auth_method == XOAUTH2 and get_grant(session, store_id, saved.oauth_grant_id) is None:
            # Saved again with another sign-in a moment ago (the old grant then goes): read them again.
            session.refresh(saved)
        key = settings_key(saved)
        if saved.auth_method == XOAUTH2:
            # Refreshed here, before the batch, when it is about to expire; a
            # new token means a new connection (a login lasts as long as its token).
            grant = get_grant(session, store_id, saved.oauth_grant_id)
            target = saved_target(session, saved, self.box, self.options_factory(), self.sign_in_clients)
            key = (*key, grant.id, grant.refreshed_at)
        link = self.links.get(store_id)
        if link is not None and link.key == key:
            return link
        if link is not None:
            link.connection.close()  # the settings changed: a new connection
            self.links.pop(store_id, None)
        if saved.auth_method != XOAUTH2:
            target = saved_target(session, saved, self.box, self.options_factory(), self.sign_in_clients)
        link = self.links[store_id] = _StoreLink(key, _CountingConnection(target, self.stats))
        return link

    def send_window(self, session: Session, store: Store, saved: SmtpSettings) -> SendWindow:
        """Room left under the store's per-minute and per-day limits."""
        self.flush_sent(session)
        return send_window(session, store, saved, self.catalogue)

    # -- outcomes --------------------------------------------------------------------

    def record_failure(self, session: Session, email: OutboxEmail, failure: SendFailure, *, permanent: bool) -> None:
        log.info("outbox email %s (store %s) failed at %s: %s (%s)", email.id, email.store_id,
                 failure.stage, failure.category, failure.reply.code if failure.reply else failure.detail)
        if permanent:
            if queue.mark_failed(session, email, failure):
                self.stats.failed += 1
            return
        if not queue.mark_retry(session, email, failure, base_seconds=self.retry_base_seconds,
                                cap_seconds=self.retry_cap_seconds):
            return  # another worker holds it now
        if email.status == queue.FAILED:
            self.stats.failed += 1  # that was its last attempt
        else:
            self.stats.retried += 1

    def reschedule(self, session: Session, email: OutboxEmail, at: datetime) -> None:
        self.stats.rescheduled += queue.reschedule(session, email, at)

    def hold(self, session: Session, email: OutboxEmail, until: datetime, category: str) -> None:
        self.stats.rescheduled += queue.hold(session, email, until, category)

    def buffer_sent(self, session: Session, email: OutboxEmail, reply, queue_id: str | None) -> None:
        if not self._sent.items:
            self._sent.since = time.monotonic()
        self._sent.items.append((email.id, reply, queue_id, utcnow()))
        if len(self._sent.items) >= SENT_FLUSH_COUNT or time.monotonic() - self._sent.since >= SENT_FLUSH_SECONDS:
            self.flush_sent(session)

    def flush_sent(self, session: Session) -> None:
        """Commit the buffered "sent" outcomes in one transaction."""
        items, self._sent.items = self._sent.items, []
        if items:
            queue.mark_sent_many(session, items)

    # -- connections -----------------------------------------------------------------

    def close_idle(self, keep: set[int] = frozenset()) -> None:
        """Close connections of stores that had no mail for ``idle_seconds``."""
        now = time.monotonic()
        for store_id, link in list(self.links.items()):
            if store_id not in keep and now - link.connection.last_used >= self.idle_seconds:
                link.connection.close()
                del self.links[store_id]

    def close_all(self) -> None:
        for link in self.links.values():
            link.connection.close()
        self.links.clear()


class _CountingConnection(SmtpConnection):
    """Counts the connections a worker opens (a reconnect is one more)."""

    def __init__(self, target, stats: WorkerStats):
        super().__init__(target)
        self._stats = stats

    def open(self) -> None:
        super().open()
        self._stats.connections_opened += 1


def run_worker(engine: Engine, box: SecretBox, options_factory: Callable[[], TargetOptions], *,
               worker_id: str | None = None, batch: int = 50, lease_seconds: float = 60.0,
               poll_seconds: float = 1.0, stop_event: threading.Event | None = None, once: bool = False,
               idle_seconds: float = DEFAULT_IDLE_SECONDS, retry_base_seconds: float = queue.DEFAULT_BACKOFF_BASE,
               retry_cap_seconds: float = queue.DEFAULT_BACKOFF_CAP,
               catalogue: Catalogue | None = None,
               sign_in_clients: Mapping[str, SignInClient] | None = None) -> WorkerStats:
    """Deliver queued email until ``stop_event`` is set (or, with ``once``, until nothing is due).

    ``options_factory()`` gives the ``TargetOptions`` (timeouts, CA file,
    nameserver, address policy) for each new SMTP connection; ``sign_in_clients``
    refresh the access tokens of signed-in stores. ``lease_seconds``
    bounds how long a dead worker's emails wait before another worker takes
    them; a live worker renews its lease while it works through a batch. A
    stop lets the current message finish and hands the rest of the batch back.
    """
    worker = Worker(
        engine, box, options_factory, worker_id=worker_id or default_worker_id(), batch=batch,
        lease_seconds=lease_seconds, idle_seconds=idle_seconds, retry_base_seconds=retry_base_seconds,
        retry_cap_seconds=retry_cap_seconds, stop_event=stop_event or threading.Event(), catalogue=catalogue,
        sign_in_clients=sign_in_clients,
    )
    return worker.run(poll_seconds, once)
