"""Outbox workers as real processes (``flask --app wizard outbox-worker``):
killed with SIGKILL mid-batch and replaced, nothing is lost; stopped with
SIGTERM, the current message finishes and the rest goes back to the queue."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from test_outbox import make_store, queue_email, received_ids, rows, wait_until

from wizard import PROJECT_ROOT
from wizard.models import utcnow
from wizard.models.outbox import QUEUED, SENDING, SENT

from conftest import SMTP_PASSWORD, SMTP_USERNAME
from smtp_servers import start_test_server

TESTS = Path(__file__).resolve().parent


def app_with_worker_command():
    """The app with the outbox-worker command, for a checkout where wizard/cli.py
    does not register it yet (``--app test_outbox_crash:app_with_worker_command()``)."""
    from wizard import create_app
    from wizard.commands import outbox_worker

    app = create_app()
    if "outbox-worker" not in app.cli.commands:
        outbox_worker.register(app)
    return app


def start_worker(app, certs, server, log: Path, *options: str) -> subprocess.Popen:
    """A worker process on the test's database, keys and SMTP trust settings."""
    target = "wizard" if "outbox-worker" in app.cli.commands else "test_outbox_crash:app_with_worker_command()"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        DATABASE_URL=app.config["DATABASE_URL"],
        WIZARD_INSTANCE_PATH=app.instance_path,
        WIZARD_ENCRYPTION_KEY=app.config["ENCRYPTION_KEYS"],
        SECRET_KEY=app.config["SECRET_KEY"],
        WIZARD_SMTP_CA_FILE=str(certs[0]),
        WIZARD_SMTP_ALLOWED_NETWORKS="127.0.0.0/8",
        # An empty value means "the default list" to the configuration, so
        # the test server's port is allowed by name.
        WIZARD_SMTP_ALLOWED_PORTS=str(server.port),
        WIZARD_SMTP_TIMEOUT="5",
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")])),
    )
    command = [sys.executable, "-m", "flask", "--app", target, "outbox-worker", *options]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_worker_killed_mid_batch_and_replaced_loses_nothing(app, certs, tmp_path):
    log = tmp_path / "workers.log"
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        server.data_delay = 0.05  # slow enough to kill the worker in the middle of a batch
        store_id = make_store(app, server)
        emails = [queue_email(app, store_id, f"crash-{n}") for n in range(30)]
        doomed = start_worker(app, certs, server, log, "--worker-id", "doomed", "--batch", "10", "--lease", "3",
                              "--poll", "0.1")
        heir = None
        try:
            assert wait_until(lambda: len(server.messages) >= 4, timeout=30), log.read_text()
            doomed.send_signal(signal.SIGKILL)
            assert doomed.wait(10) == -signal.SIGKILL
            held = {r.id for r in rows(app) if r.status == SENDING and r.claimed_by == "doomed"}
            assert held, "the worker should have died holding part of a batch"

            heir = start_worker(app, certs, server, log, "--worker-id", "heir", "--batch", "10", "--lease", "3",
                                "--poll", "0.1")
            assert wait_until(lambda: all(r.status == SENT for r in rows(app)), timeout=60), log.read_text()
            heir.send_signal(signal.SIGTERM)
            assert heir.wait(15) == 0, log.read_text()
        finally:
            stop_process(doomed)
            if heir is not None:
                stop_process(heir)
        received = received_ids(server)
    final = {r.id: r for r in rows(app)}
    # The dead worker's batch was taken over once its lease ran out.
    assert all(final[i].claimed_by == "heir" and final[i].attempts >= 2 for i in held)
    # Every email arrived; the ones in flight at the kill may have come twice
    # (at-least-once), with the same Message-ID, so they are recognisable.
    assert set(received) == {e.message_id for e in emails}
    assert sum(received.values()) - len(emails) <= 10


def test_sigterm_finishes_the_current_message_and_hands_back_the_rest(app, certs, tmp_path):
    log = tmp_path / "worker.log"
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        server.data_delay = 0.1
        store_id = make_store(app, server)
        for n in range(20):
            queue_email(app, store_id, f"term-{n}")
        worker = start_worker(app, certs, server, log, "--batch", "20", "--lease", "60", "--poll", "0.1")
        try:
            assert wait_until(lambda: len(server.messages) >= 3, timeout=30), log.read_text()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(10) == 0, log.read_text()
        finally:
            stop_process(worker)
        delivered = len(server.messages)
    final = rows(app)
    sent = [r for r in final if r.status == SENT]
    waiting = [r for r in final if r.status == QUEUED]
    assert len(sent) == delivered and len(sent) + len(waiting) == 20
    assert waiting, "the stop came mid-batch"
    # Handed back at once, no attempt counted, no lease to wait for.
    now = utcnow()
    assert all(r.attempts == 0 and r.lease_until is None and r.next_attempt_at is not None for r in waiting)
    from wizard.outbox.queue import as_utc

    assert all(as_utc(r.next_attempt_at) <= now for r in waiting)
    assert "stopped" in log.read_text()


def test_once_delivers_what_is_due_and_exits(app, certs, tmp_path):
    log = tmp_path / "worker.log"
    with start_test_server("starttls", username=SMTP_USERNAME, password=SMTP_PASSWORD, cert=certs[0],
                           key=certs[1]) as server:
        store_id = make_store(app, server)
        emails = [queue_email(app, store_id, f"once-{n}") for n in range(3)]
        worker = start_worker(app, certs, server, log, "--once")
        try:
            assert worker.wait(30) == 0, log.read_text()
        finally:
            stop_process(worker)
        assert set(received_ids(server)) == {e.message_id for e in emails}
    assert "3 sent" in log.read_text()
