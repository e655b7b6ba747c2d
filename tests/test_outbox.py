"""The durable outbox against real aiosmtpd servers, on SQLite and PostgreSQL:
headers and threading as the server received them, idempotency, retries with
backoff, permanent failures and the retry button, suppression, rate limits,
connection reuse and reconnects, a server that goes away mid-batch."""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from wizard.catalogue import load_catalogue
from wizard.commands.embedded_worker import start_embedded_worker
from wizard.models import Conversation, SmtpSettings, Store, utcnow
from wizard.models.outbox import FAILED, QUEUED, SENT, OutboxEmail, Suppression
from wizard.outbox import queue
from wizard.outbox.limits import daily_limit
from wizard.outbox.worker import run_worker
from wizard.secrets import SecretBox
from wizard.smtp.target_options import saved_identity, target_options_from_config

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from smtp_servers import start_test_server

SENDER_NAME = "Blue Fern Support"
REPLY_TO = "help@bluefern.example.com"


# -- helpers (the other outbox test files use them too) ---------------------------------

def secret_box(app) -> SecretBox:
    return SecretBox(app.config["ENCRYPTION_KEYS"], app.config["SECRET_KEY"])


def make_store(app, server, *, slug: str = "blue-fern", per_minute: int = 0, per_day: int | None = None,
               provider: str = "custom", password: str = SMTP_PASSWORD) -> int:
    """A store whose saved SMTP settings point at ``server``; returns its id."""
    with Session(app.extensions["db_engine"]) as session:
        store = Store(name="Blue Fern Shop", slug=slug, reply_to=REPLY_TO, send_limit_per_minute=per_minute,
                      send_limit_per_day=per_day)
        session.add(store)
        session.commit()
        settings = SmtpSettings(
            store_id=store.id, provider=provider, host="127.0.0.1", port=server.port,
            security="ssl" if server.mode == "ssl" else "starttls", sender_name=SENDER_NAME,
            sender_email=SMTP_USERNAME, username=SMTP_USERNAME, password_encrypted="",
            fingerprint=f"test-{server.port}", tested=True,
        )
        # Sealed as saving does: the password is bound to exactly this server.
        settings.password_encrypted, settings.password_binding = secret_box(app).seal(password, saved_identity(settings))
        session.add(settings)
        session.commit()
        return store.id


def make_conversation(app, store_id: int, token: str = "conversation-1") -> int:
    with Session(app.extensions["db_engine"]) as session:
        conversation = Conversation(store_id=store_id, token=token)
        session.add(conversation)
        session.commit()
        return conversation.id


def queue_email(app, store_id: int, key: str, *, kind: str = "follow_up", recipient: str = "visitor@example.com",
                conversation_id: int | None = None, **extra) -> OutboxEmail:
    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        store = session.get(Store, store_id)
        return queue.enqueue(
            session, store=store, kind=kind, recipient=recipient, subject=f"About your visit ({key})",
            body_text=f"Hello again — {key}", body_html=f"<p>Hello again — <b>{key}</b></p>",
            idempotency_key=key, conversation=conversation_id, **extra,
        )


def rows(app) -> list[OutboxEmail]:
    with Session(app.extensions["db_engine"]) as session:
        return list(session.exec(select(OutboxEmail).order_by(OutboxEmail.id)).all())


def drain(app, **options):
    """Run an in-process worker until nothing is due."""
    config = app.config
    target_options = target_options_from_config(config, False)
    options.setdefault("worker_id", "test-worker")
    options.setdefault("retry_base_seconds", 0.05)
    options.setdefault("retry_cap_seconds", 0.2)
    return run_worker(app.extensions["db_engine"], secret_box(app), lambda: target_options, once=True, **options)


def wait_until(condition, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def received_ids(*servers) -> Counter:
    with_locks = []
    for server in servers:
        with server.lock:
            with_locks += [m.message["Message-ID"] for m in server.messages]
    return Counter(with_locks)


# -- headers and threading ---------------------------------------------------------------

def test_follow_ups_arrive_with_their_headers_and_threaded(app, starttls_server):
    store_id = make_store(app, starttls_server)
    conversation_id = make_conversation(app, store_id)
    first = queue_email(app, store_id, "draft-1", conversation_id=conversation_id)
    second = queue_email(app, store_id, "draft-2", conversation_id=conversation_id)
    third = queue_email(app, store_id, "draft-3", conversation_id=conversation_id, reply_to="orders@bluefern.example.com")
    # Written first, no SMTP yet.
    assert [r.status for r in rows(app)] == [QUEUED] * 3 and not starttls_server.messages

    stats = drain(app)

    assert stats.sent == 3 and stats.connections_opened == 1
    received = [m.message for m in starttls_server.messages]
    assert [m["Message-ID"] for m in received] == [first.message_id, second.message_id, third.message_id]
    assert first.message_id.endswith("@bluefern.example.com>")
    message = received[0]
    assert message["From"].addresses[0].display_name == SENDER_NAME
    assert message["From"].addresses[0].addr_spec == SMTP_USERNAME
    assert message["To"] == "visitor@example.com"
    assert message["Reply-To"] == REPLY_TO  # the store's
    assert received[2]["Reply-To"] == "orders@bluefern.example.com"  # given for this email
    assert message["Subject"] == "About your visit (draft-1)"
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Hello again — draft-1"
    assert "<b>draft-1</b>" in message.get_body(("html",)).get_content()
    assert "In-Reply-To" not in message and "List-Unsubscribe" not in message
    # Threading: each email answers the one before; References grows.
    assert received[1]["In-Reply-To"] == first.message_id
    assert received[1]["References"].split() == [first.message_id]
    assert received[2]["In-Reply-To"] == second.message_id
    assert received[2]["References"].split() == [first.message_id, second.message_id]
    envelope = starttls_server.messages[0]
    assert envelope.envelope_from == SMTP_USERNAME and envelope.envelope_to == ["visitor@example.com"]
    stored = rows(app)
    assert [r.status for r in stored] == [SENT] * 3
    assert [r.queue_id for r in stored] == ["TEST000001", "TEST000002", "TEST000003"]
    assert all(r.attempts == 1 and r.sent_at is not None and r.lease_until is None for r in stored)


def test_reminders_carry_one_click_unsubscribe(app, starttls_server):
    store_id = make_store(app, starttls_server)
    queue_email(app, store_id, "reminder-1", kind="reminder", unsubscribe_url="https://shop.example/u/abc123")
    drain(app)
    message = starttls_server.messages[0].message
    assert message["List-Unsubscribe"] == "<https://shop.example/u/abc123>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_enqueue_refuses_what_cannot_be_sent(app, starttls_server):
    store_id = make_store(app, starttls_server)
    with pytest.raises(ValueError):
        queue_email(app, store_id, "bad-1", recipient="visitor@example.com\r\nBcc: everyone@example.com")
    with pytest.raises(ValueError):
        queue_email(app, store_id, "bad-2", kind="newsletter")
    with Session(app.extensions["db_engine"]) as session, pytest.raises(ValueError):
        queue.enqueue(session, store=session.get(Store, store_id), kind="follow_up", recipient="v@example.com",
                      subject="Hello\r\nBcc: everyone@example.com", body_text="t", body_html="",
                      idempotency_key="bad-3")
    with Session(app.extensions["db_engine"]) as session:
        bare = Store(name="No settings", slug="no-settings")
        session.add(bare)
        session.commit()
        with pytest.raises(queue.NotConfigured):
            queue.enqueue(session, store=bare, kind="follow_up", recipient="v@example.com", subject="s",
                          body_text="t", body_html="", idempotency_key="bare-1")
    assert rows(app) == []


# -- idempotency -----------------------------------------------------------------------

def test_the_same_key_queues_and_sends_once(app, starttls_server):
    store_id = make_store(app, starttls_server)
    first = queue_email(app, store_id, "draft-7")
    again = queue_email(app, store_id, "draft-7")
    assert again.id == first.id and again.message_id == first.message_id
    drain(app)
    third = queue_email(app, store_id, "draft-7")  # a resubmitted form after sending
    drain(app)
    assert third.id == first.id
    assert len(rows(app)) == 1 and len(starttls_server.messages) == 1


def test_concurrent_double_submit_queues_one_email(app, starttls_server):
    store_id = make_store(app, starttls_server)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def submit():
        try:
            barrier.wait()
            results.append(queue_email(app, store_id, "double-click").id)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1
    drain(app)
    assert len(rows(app)) == 1 and len(starttls_server.messages) == 1


# -- temporary and permanent failures ----------------------------------------------------

def test_451_is_retried_with_backoff_then_delivered(app, starttls_server):
    store_id = make_store(app, starttls_server)
    email = queue_email(app, store_id, "draft-451")
    starttls_server.data_reply = "451 4.3.0 Mail server temporarily rejected message"
    before = utcnow()
    stats = drain(app, retry_base_seconds=1.0, retry_cap_seconds=5)
    after = utcnow()
    assert stats.retried == 1 and not starttls_server.messages
    (row,) = rows(app)
    assert row.status == QUEUED and row.attempts == 1
    assert row.last_stage == "data" and row.last_category == "temporary_failure" and row.last_reply_code == 451
    # Backoff: base 1 s × jitter 0.5–1.5, from the moment of the failure.
    due = queue.as_utc(row.next_attempt_at)
    assert before + timedelta(seconds=0.5) <= due <= after + timedelta(seconds=1.5), (due - before, after - before)
    # A worker pass before the due time leaves the email alone. (On a loaded machine the
    # pass may start after the due time; then it is a legitimate second attempt.)
    pass_started = utcnow()
    drain(app, retry_base_seconds=1.0, retry_cap_seconds=5)
    (row,) = rows(app)
    attempts_so_far = row.attempts
    if pass_started < due:
        assert attempts_so_far == 1 and row.status == QUEUED

    starttls_server.data_reply = None  # the server recovers
    assert wait_until(lambda: drain(app).sent == 1, timeout=10)
    (row,) = rows(app)
    assert row.status == SENT and row.attempts == attempts_so_far + 1
    assert received_ids(starttls_server) == Counter({email.message_id: 1})


def test_temporary_failures_give_up_after_max_attempts(app, certs):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           mail_reply="421 4.7.0 Try again later, closing connection") as server:
        store_id = make_store(app, server)
        queue_email(app, store_id, "draft-421", max_attempts=3)
        assert wait_until(lambda: (drain(app), rows(app)[0].status == FAILED)[1], timeout=10)
    (row,) = rows(app)
    assert row.attempts == 3 and row.last_category == "temporary_failure" and row.last_reply_code == 421


def test_backoff_doubles_with_jitter_and_is_capped():
    import random

    rng = random.Random(7)
    for attempts in range(1, 8):
        delay = queue.backoff_seconds(attempts, base=30, cap=3600, rng=rng)
        assert 15 * 2 ** (attempts - 1) <= delay <= min(3600, 45 * 2 ** (attempts - 1))
    assert queue.backoff_seconds(40, base=30, cap=3600, rng=rng) == 3600


def test_which_failures_are_permanent_and_which_are_hard_bounces():
    from wizard.outbox.sender import SendFailure
    from wizard.smtp.types import Reply

    unknown_user = SendFailure("recipient", "recipient_rejected", Reply(550, "5.1.1", "no such user"), "")
    relaying = SendFailure("recipient", "sender_rejected", Reply(550, "5.7.1", "Relaying denied"), "")
    greylisted = SendFailure("recipient", "temporary_failure", Reply(450, "4.2.0", "Greylisted"), "")
    quota = SendFailure("data", "temporary_failure", Reply(550, "5.4.5", "Daily user sending quota exceeded"), "")
    spam = SendFailure("data", "message_rejected", Reply(554, "5.7.1", "Message rejected as spam"), "")
    refused = SendFailure("connect", "connection_refused", None, "a loopback address", refusal="a loopback address")
    dropped = SendFailure("data", "connection_dropped", None, "Connection unexpectedly closed")
    assert [f.permanent for f in (unknown_user, relaying, greylisted, quota, spam, refused, dropped)] == [
        True, True, False, False, True, True, False]
    assert [queue.is_hard_bounce(f) for f in (unknown_user, relaying, greylisted, spam)] == [True, False, False, False]


def test_550_after_data_fails_with_category_and_retry_now_sends_it(app, starttls_server):
    store_id = make_store(app, starttls_server)
    email = queue_email(app, store_id, "draft-550")
    starttls_server.data_reply = "550 5.7.1 Message rejected: content looks like spam"
    assert drain(app).failed == 1
    (row,) = rows(app)
    assert row.status == FAILED and row.last_stage == "data" and row.last_category == "message_rejected"
    assert row.last_reply_code == 550 and "5.7.1" in row.last_reply_text
    with Session(app.extensions["db_engine"]) as session:
        assert session.exec(select(func.count(Suppression.id))).one() == 0  # not a bounce of the address

    starttls_server.data_reply = None
    with Session(app.extensions["db_engine"]) as session:
        assert queue.retry_now(session, email.id, store_id + 1) is None  # another store's button
        retried = queue.retry_now(session, email.id, store_id)
        assert retried.status == QUEUED and retried.attempts == 0
    assert drain(app).sent == 1
    assert rows(app)[0].status == SENT and received_ids(starttls_server) == Counter({email.message_id: 1})


def test_550_at_recipient_suppresses_the_address(app, certs):
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           rcpt_reply="550 5.1.1 The email account that you tried to reach does not exist") as server:
        store_id = make_store(app, server)
        queue_email(app, store_id, "draft-bounce", recipient="Gone.Visitor@example.com")
        drain(app)
    (row,) = rows(app)
    assert row.status == FAILED and row.last_stage == "recipient" and row.last_category == "recipient_rejected"
    with Session(app.extensions["db_engine"]) as session:
        assert queue.is_suppressed(session, store_id, "gone.visitor@example.com")
        assert queue.suppression_for(session, store_id, "GONE.visitor@example.com").reason == "hard_bounce"
        assert not queue.is_suppressed(session, store_id + 1, "gone.visitor@example.com")
    with pytest.raises(queue.SuppressedAddress) as refused:
        queue_email(app, store_id, "reminder-bounce", kind="reminder", recipient="gone.visitor@example.com")
    assert refused.value.reason == "hard_bounce" and "bounced" in str(refused.value)
    # The address does not exist: no kind of email goes there any more (the inbox says why before writing).
    for kind in ("follow_up", "support_reply", "order_update"):
        with pytest.raises(queue.SuppressedAddress):
            queue_email(app, store_id, f"{kind}-bounce", kind=kind, recipient="gone.visitor@example.com")


def test_unsubscribe_is_recorded_once_and_honoured(app, starttls_server):
    store_id = make_store(app, starttls_server)
    with Session(app.extensions["db_engine"]) as session:
        first = queue.suppress(session, store_id, "Visitor@Example.com", "unsubscribed")
        again = queue.suppress(session, store_id, "visitor@example.com", "hard_bounce")
        assert again.id == first.id and again.reason == "unsubscribed"
        with pytest.raises(ValueError):
            queue.suppress(session, store_id, "x@example.com", "annoyed")
    with pytest.raises(queue.SuppressedAddress) as refused:
        queue_email(app, store_id, "reminder-u", kind="reminder")
    assert refused.value.reason == "unsubscribed"


def test_wrong_password_fails_every_email_of_the_store_with_auth_failed(app, starttls_server):
    store_id = make_store(app, starttls_server, password="not-the-password")
    for n in range(3):
        queue_email(app, store_id, f"auth-{n}")
    stats = drain(app)
    assert stats.failed == 3 and stats.connections_opened == 0
    assert {(r.status, r.last_stage, r.last_category, r.last_reply_code) for r in rows(app)} == {
        (FAILED, "auth", "auth_failed", 535)}
    # One login attempt for the batch, not one per email.
    assert len(starttls_server.auth_attempts) == 1


def test_the_address_policy_applies_to_the_worker(app, starttls_server):
    store_id = make_store(app, starttls_server)
    queue_email(app, store_id, "policy-1")
    config = dict(app.config, SMTP_ALLOWED_NETWORKS="")  # loopback no longer allowed
    options = target_options_from_config(config, False)
    run_worker(app.extensions["db_engine"], secret_box(app), lambda: options, worker_id="strict", once=True)
    (row,) = rows(app)
    assert row.status == FAILED and row.last_category == "connection_refused"
    assert "loopback" in row.last_reply_text and not starttls_server.auth_attempts


# -- connections and rate limits ---------------------------------------------------------

def test_one_connection_is_reused_and_reopened_when_the_server_hangs_up(app, certs):
    # The server ends each connection with 421 after 3 messages (a per-connection limit).
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0], key=certs[1],
                           command_call_limit={"MAIL": 3}) as server:
        store_id = make_store(app, server)
        emails = [queue_email(app, store_id, f"reuse-{n}") for n in range(7)]
        stats = drain(app, batch=4)
    assert stats.sent == 7 and stats.retried == 0 and stats.connections_opened == 3
    assert received_ids(server) == Counter({e.message_id: 1 for e in emails})


def test_implicit_tls_servers_work_too(app, ssl_server):
    store_id = make_store(app, ssl_server)
    email = queue_email(app, store_id, "ssl-1")
    assert drain(app).sent == 1
    assert received_ids(ssl_server) == Counter({email.message_id: 1})


def test_per_minute_limit_holds_emails_back_without_failing_them(app, starttls_server):
    store_id = make_store(app, starttls_server, per_minute=2)
    for n in range(4):
        queue_email(app, store_id, f"limited-{n}")
    stats = drain(app)
    assert stats.sent == 2 and stats.rescheduled == 2 and stats.failed == 0
    held = [r for r in rows(app) if r.status == QUEUED]
    assert len(held) == 2 and all(r.attempts == 0 for r in held)
    # Room opens a minute after the first send.
    assert all(queue.as_utc(r.next_attempt_at) > utcnow() + timedelta(seconds=50) for r in held)
    assert len(starttls_server.messages) == 2


def test_daily_limit_comes_from_the_store_or_the_provider():
    catalogue = load_catalogue()
    workspace = SmtpSettings(store_id=1, provider="gmail", host="smtp.gmail.com", port=587, security="starttls",
                             sender_name="S", sender_email="help@bluefern.example.com", username="u",
                             password_encrypted="", fingerprint="")
    free = SmtpSettings(**{**workspace.model_dump(), "sender_email": "bluefern@gmail.com"})
    service = SmtpSettings(**{**workspace.model_dump(), "provider": "sendgrid"})
    store = Store(name="S", slug="s")
    assert daily_limit(store, workspace, catalogue) == 2000
    assert daily_limit(store, free, catalogue) == 500
    assert daily_limit(store, service, catalogue) == 0
    assert daily_limit(Store(name="S", slug="s", send_limit_per_day=40), free, catalogue) == 40
    assert catalogue.get("microsoft365").daily_limit == 10000


def test_server_stopped_mid_batch_and_restarted_loses_nothing(app, certs):
    server = start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                               key=certs[1])
    server.data_delay = 0.02
    restarted = None
    stop = threading.Event()
    try:
        store_id = make_store(app, server)
        emails = [queue_email(app, store_id, f"outage-{n}") for n in range(40)]
        options = target_options_from_config(app.config, False)
        worker = threading.Thread(target=run_worker, args=(app.extensions["db_engine"], secret_box(app),
                                                           lambda: options),
                                  kwargs=dict(worker_id="outage", batch=10, poll_seconds=0.05, stop_event=stop,
                                              retry_base_seconds=0.2, retry_cap_seconds=0.5))
        worker.start()
        assert wait_until(lambda: len(server.messages) >= 8)
        server.stop()  # mid-batch: the worker is connected and sending
        assert wait_until(lambda: any(r.status == QUEUED and r.attempts >= 1 for r in rows(app)))  # retries waiting
        restarted = start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD,
                                      cert=certs[0], key=certs[1], port=server.port)
        assert wait_until(lambda: all(r.status == SENT for r in rows(app)), timeout=30)
    finally:
        stop.set()
        worker.join(10)
        server.stop()
        if restarted is not None:
            restarted.stop()
    received = received_ids(server, restarted)
    assert set(received) == {e.message_id for e in emails}
    # At-least-once: a message in flight when the server died may come twice, no more.
    assert max(received.values()) <= 2


def test_embedded_worker_delivers_and_stops(app, starttls_server):
    store_id = make_store(app, starttls_server)
    handle = start_embedded_worker(app, poll_seconds=0.05)
    try:
        email = queue_email(app, store_id, "embedded-1")
        assert wait_until(lambda: rows(app)[0].status == SENT, timeout=10)
    finally:
        handle.stop()
    assert not handle.running
    assert received_ids(starttls_server) == Counter({email.message_id: 1})
    assert rows(app)[0].claimed_by.startswith("embedded:")


# -- claims and leases -------------------------------------------------------------------

def test_concurrent_claims_never_hand_out_the_same_email(app, starttls_server):
    store_id = make_store(app, starttls_server)
    for n in range(60):
        queue_email(app, store_id, f"claim-{n}")
    engine = app.extensions["db_engine"]
    barrier = threading.Barrier(4)
    claimed: list[int] = []
    errors = []

    def worker(name: str):
        try:
            barrier.wait()
            while True:
                with Session(engine, expire_on_commit=False) as session:
                    batch = queue.claim(session, name, 7, 60)
                if not batch:
                    return
                claimed.extend(email.id for email in batch)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(claimed) == sorted(r.id for r in rows(app))  # each exactly once
    assert all(r.status == "sending" and r.attempts == 1 for r in rows(app))


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_overwrite(app, starttls_server):
    store_id = make_store(app, starttls_server)
    queue_email(app, store_id, "lease-1")
    engine = app.extensions["db_engine"]
    with Session(engine, expire_on_commit=False) as session:
        (stale,) = queue.claim(session, "stalled", 10, lease_seconds=0.2)
        assert queue.claim(session, "other", 10, 60) == []  # still leased
    assert wait_until(lambda: queue.as_utc(stale.lease_until) < utcnow(), timeout=5)  # the lease runs out
    with Session(engine, expire_on_commit=False) as session:
        (taken,) = queue.claim(session, "other", 10, 60)
    assert taken.id == stale.id and taken.attempts == 2 and taken.claimed_by == "other"

    from wizard.outbox.sender import SendFailure

    failure = SendFailure("data", "temporary_failure", None, "timed out")
    with Session(engine, expire_on_commit=False) as session:
        # The stalled worker wakes up: its failure no longer counts…
        assert queue.mark_retry(session, stale, failure) is False
        assert queue.mark_failed(session, stale, failure) is False
        assert rows(app)[0].claimed_by == "other" and rows(app)[0].status == "sending"
        # …but a delivery it completed is still a delivery.
        assert queue.mark_sent(session, stale, None, "Q1") is True
    assert rows(app)[0].status == SENT


def test_a_slow_batch_keeps_its_lease(app, starttls_server):
    store_id = make_store(app, starttls_server)
    for n in range(8):
        queue_email(app, store_id, f"slow-{n}")
    # The batch (8 × 0.4 s) takes longer than the lease (2 s); renewing at half-lease leaves a
    # second of slack per message even on a loaded machine.
    starttls_server.data_delay = 0.4
    stop = threading.Event()
    options = target_options_from_config(app.config, False)
    worker = threading.Thread(target=run_worker, args=(app.extensions["db_engine"], secret_box(app), lambda: options),
                              kwargs=dict(worker_id="slow", batch=8, lease_seconds=2.0, poll_seconds=0.05,
                                          stop_event=stop))
    worker.start()
    stolen = []
    try:
        assert wait_until(lambda: all(r.claimed_by == "slow" for r in rows(app)))
        deadline = time.monotonic() + 20
        while not all(r.status == SENT for r in rows(app)) and time.monotonic() < deadline:
            with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
                stolen += queue.claim(session, "thief", 10, 60)
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
    assert not stolen
    assert all(r.status == SENT and r.attempts == 1 for r in rows(app))
    assert len(starttls_server.messages) == 8
