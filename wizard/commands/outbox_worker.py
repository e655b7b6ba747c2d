"""``flask --app wizard outbox-worker``: deliver queued follow-up emails.

Runs one outbox worker on its own (the ``serve`` command embeds one). On
PostgreSQL start as many as needed, on as many machines as needed: they
claim emails with ``SELECT … FOR UPDATE SKIP LOCKED`` and never share one.
On SQLite run a single worker.

SIGTERM or SIGINT (Ctrl+C) stops it after the current message; the rest of
its batch goes back to the queue at once. A worker killed outright loses
nothing either: its emails are claimed again when their lease runs out
(``--lease``), so keep the lease above the longest SMTP exchange.
"""
from __future__ import annotations

import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from wizard.oauth.clients import sign_in_clients
from wizard.outbox.worker import default_worker_id, run_worker
from wizard.secrets import SecretBox
from wizard.smtp.target_options import dev_mailbox_enabled, target_options_from_config


@click.command("outbox-worker")
@click.option("--worker-id", default=None, help="Name in the claimed_by column (default: host:pid).")
@click.option("--batch", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Emails claimed at a time.")
@click.option("--lease", "lease_seconds", default=60.0, show_default=True, type=click.FloatRange(0.5),
              help="Seconds a claimed email stays this worker's before another may take it.")
@click.option("--poll", "poll_seconds", default=1.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds to wait when nothing is due.")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@with_appcontext
def outbox_worker_command(worker_id: str | None, batch: int, lease_seconds: float, poll_seconds: float, once: bool):
    """Deliver queued follow-up emails until stopped (SIGTERM / Ctrl+C)."""
    app = current_app._get_current_object()
    config = app.config
    box = SecretBox(config["ENCRYPTION_KEYS"], config["SECRET_KEY"])
    options = target_options_from_config(config, dev_mailbox_enabled(config, app.debug),
                                         instance_path=app.instance_path)
    worker_id = worker_id or default_worker_id()
    stop_event = threading.Event()

    def request_stop(signum, _frame):
        # Only set a flag: the worker finishes the message it is sending.
        stop_event.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"outbox worker {worker_id}: batch {batch}, lease {lease_seconds:g} s", err=True)
    try:
        stats = run_worker(app.extensions["db_engine"], box, lambda: options, worker_id=worker_id, batch=batch,
                           lease_seconds=lease_seconds, poll_seconds=poll_seconds, stop_event=stop_event,
                           once=once, sign_in_clients=sign_in_clients(config))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"outbox worker {worker_id} stopped: {stats.sent} sent, {stats.retried} to retry, "
               f"{stats.failed} failed, {stats.rescheduled} held back by rate limits, "
               f"{stats.released} handed back", err=True)


def register(app: Flask) -> None:
    app.cli.add_command(outbox_worker_command)
