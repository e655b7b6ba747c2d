"""The outbox worker inside the web process (the ``serve`` command's).

Reads what the worker needs from the Flask app — the engine
(``app.extensions["db_engine"]``), the encryption keys, the SMTP settings —
and runs ``wizard.outbox.worker.run_worker`` on one thread, so the outbox
itself knows nothing of the app's shape.
"""
from __future__ import annotations

from flask import Flask

from wizard.commands.background import BackgroundLoop, start_background_loop
from wizard.oauth.clients import sign_in_clients
from wizard.outbox.worker import default_worker_id, run_worker
from wizard.secrets import SecretBox
from wizard.smtp.target_options import dev_mailbox_enabled, target_options_from_config

__all__ = ["EmbeddedWorker", "start_embedded_worker"]


# The thread and its stop event (``stop()`` ends the loop after what it is doing).
EmbeddedWorker = BackgroundLoop


def start_embedded_worker(app: Flask, **options) -> EmbeddedWorker:
    """Start one outbox worker thread for ``app`` (the ``serve`` command's).

    Reads the engine (``app.extensions["db_engine"]``), the encryption keys,
    the SMTP settings and the sign-in providers from the app; ``options`` go to ``run_worker``.
    """
    config = app.config
    box = SecretBox(config["ENCRYPTION_KEYS"], config["SECRET_KEY"])
    target_options = target_options_from_config(config, dev_mailbox_enabled(config, app.debug),
                                                instance_path=app.instance_path)
    engine = app.extensions["db_engine"]
    options.setdefault("worker_id", f"embedded:{default_worker_id()}")
    options.setdefault("sign_in_clients", sign_in_clients(config))
    return start_background_loop("outbox-worker", run_worker, engine, box, lambda: target_options, **options)
