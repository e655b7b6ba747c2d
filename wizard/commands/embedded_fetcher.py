"""The IMAP fetcher inside the web process (the ``serve`` command's).

Reads what the fetcher needs from the Flask app — the engine, the
encryption keys, the IMAP settings, the sign-in providers — and runs
``wizard.inbound.imap_fetcher.run_fetcher`` on one thread (which starts a
watcher thread per store), so the fetcher knows nothing of the app's shape.
"""
from __future__ import annotations

import threading

from flask import Flask

from wizard.inbound.imap_fetcher import run_fetcher
from wizard.inbound.imap_options import imap_options_from_config
from wizard.oauth.clients import sign_in_clients
from wizard.secrets import SecretBox

__all__ = ["EmbeddedFetcher", "start_embedded_fetcher"]


class EmbeddedFetcher:
    """The fetcher thread inside the web process; ``stop()`` ends it."""

    def __init__(self, thread: threading.Thread, stop_event: threading.Event):
        self.thread = thread
        self.stop_event = stop_event

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current message, leave IDLE, log out."""
        self.stop_event.set()
        self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()


def start_embedded_fetcher(app: Flask, **options) -> EmbeddedFetcher:
    """Start the IMAP fetcher thread for ``app``; ``options`` go to ``run_fetcher``."""
    config = app.config
    box = SecretBox(config["ENCRYPTION_KEYS"], config["SECRET_KEY"])
    imap_options = imap_options_from_config(config)
    stop_event = threading.Event()
    options.setdefault("sign_in_clients", sign_in_clients(config))
    thread = threading.Thread(
        target=run_fetcher, args=(app.extensions["db_engine"], box, lambda: imap_options),
        kwargs=dict(stop_event=stop_event, **options), name="inbox-fetcher", daemon=True,
    )
    thread.start()
    return EmbeddedFetcher(thread, stop_event)
