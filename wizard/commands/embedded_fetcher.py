"""The IMAP fetcher inside the web process (the ``serve`` command's).

Reads what the fetcher needs from the Flask app — the engine, the
encryption keys, the IMAP settings, the sign-in providers — and runs
``wizard.inbound.imap_fetcher.run_fetcher`` on one thread (which starts a
watcher thread per store), so the fetcher knows nothing of the app's shape.
"""
from __future__ import annotations

from flask import Flask

from wizard.commands.background import BackgroundLoop, start_background_loop
from wizard.inbound.imap_fetcher import run_fetcher
from wizard.inbound.imap_options import imap_options_from_config
from wizard.oauth.clients import sign_in_clients
from wizard.secrets import SecretBox

__all__ = ["EmbeddedFetcher", "start_embedded_fetcher"]


# The thread and its stop event (``stop()`` ends the loop after what it is doing).
EmbeddedFetcher = BackgroundLoop


def start_embedded_fetcher(app: Flask, **options) -> EmbeddedFetcher:
    """Start the IMAP fetcher thread for ``app``; ``options`` go to ``run_fetcher``."""
    config = app.config
    box = SecretBox(config["ENCRYPTION_KEYS"], config["SECRET_KEY"])
    imap_options = imap_options_from_config(config)
    options.setdefault("sign_in_clients", sign_in_clients(config))
    return start_background_loop("inbox-fetcher", run_fetcher, app.extensions["db_engine"], box,
                                 lambda: imap_options, **options)
