"""``flask --app wizard inbox-fetcher``: bring replies from the merchants' mailboxes (IMAP) into HeiChat.

Runs the fetcher on its own (``serve`` embeds one): a watcher per store
with reading turned on, waiting in IDLE where the server offers it and
polling otherwise. ``--once`` reads every enabled store once and exits
(cron-friendly). SIGTERM or SIGINT stops it after the current message; one
killed outright loses nothing either (``last_uid`` advances only after a
message is stored).
"""
from __future__ import annotations

import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from wizard.inbound.imap_options import imap_options_from_config
from wizard.oauth.clients import sign_in_clients
from wizard.secrets import SecretBox


@click.command("inbox-fetcher")
@click.option("--once", is_flag=True, help="Read every enabled store's mailbox once, then exit.")
@click.option("--poll-seconds", type=click.FloatRange(0.05), default=None,
              help="Seconds between polls of a server without IDLE, and between looks at the store list "
                   "(default: IMAP_POLL_SECONDS, 60).")
@with_appcontext
def inbox_fetcher_command(once: bool, poll_seconds: float | None):
    """Bring email replies from the stores' own mailboxes (IMAP) into their conversations."""
    # Imported here: building the app (every command's registration) need not load the fetcher.
    from wizard.inbound.imap_fetcher import run_fetcher

    app = current_app._get_current_object()
    config = app.config
    box = SecretBox(config["ENCRYPTION_KEYS"], config["SECRET_KEY"])
    settings = dict(config)
    if poll_seconds is not None:
        settings["IMAP_POLL_SECONDS"] = poll_seconds
    options = imap_options_from_config(settings)
    stop_event = threading.Event()

    def request_stop(signum, _frame):
        stop_event.set()  # the current message finishes first

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(f"inbox fetcher: {'one pass' if once else f'polling every {options.poll_seconds:g} s, IDLE where offered'}",
               err=True)
    try:
        stats = run_fetcher(app.extensions["db_engine"], box, lambda: options, once=once, stop_event=stop_event,
                            sign_in_clients=sign_in_clients(config))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counted = ", ".join(f"{count} {outcome}" for outcome, count in sorted(stats.outcomes.items())) or "nothing new"
    click.echo(f"inbox fetcher stopped: {counted}; {stats.failures} store failures", err=True)


def register(app: Flask) -> None:
    app.cli.add_command(inbox_fetcher_command)
