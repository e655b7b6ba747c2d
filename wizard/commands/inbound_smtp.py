"""``flask --app wizard inbound-smtp``: receive the visitors' email replies.

Runs the inbound SMTP server (``wizard.inbound.smtp_server``) for the
inbound domain (``WIZARD_INBOUND_DOMAIN``) until SIGTERM or Ctrl+C. Point the
domain's MX record at this host; in production listen on port 25 (as root,
or with CAP_NET_BIND_SERVICE, or behind a port forward). With
``WIZARD_INBOUND_TLS_CERT`` and ``WIZARD_INBOUND_TLS_KEY`` it offers STARTTLS.
"""
from __future__ import annotations

import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def inbound_server_for(app: Flask, host: str | None = None, port: int | None = None):
    """An ``InboundServer`` for ``app`` (imported here: the other commands start without it)."""
    from wizard.inbound.smtp_server import InboundServer

    config = app.config
    return InboundServer(app.extensions["db_engine"], config["INBOUND_DOMAIN"],
                         host or config["INBOUND_SMTP_HOST"], int(config["INBOUND_SMTP_PORT"] if port is None else port),
                         max_bytes=int(config["INBOUND_MAX_BYTES"]),
                         cert=config.get("INBOUND_TLS_CERT") or None, key=config.get("INBOUND_TLS_KEY") or None)


@click.command("inbound-smtp")
@click.option("--host", default=None, help="Address to listen on (default WIZARD_INBOUND_SMTP_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Port to listen on (default WIZARD_INBOUND_SMTP_PORT, 2526; 25 for a real MX).")
@with_appcontext
def inbound_smtp_command(host: str | None, port: int | None):
    """Receive replies to reply+TOKEN@ the inbound domain until stopped."""
    app = current_app._get_current_object()
    if not app.config.get("INBOUND_DOMAIN"):
        raise click.UsageError("set WIZARD_INBOUND_DOMAIN to the domain whose MX points at this server "
                               "(for example replies.yourshop.com)")
    server = inbound_server_for(app, host, port)
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {server.host}:{server.requested_port}: {exc}") from exc
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    tls = "STARTTLS offered" if server.tls_context else "no STARTTLS (set WIZARD_INBOUND_TLS_CERT and _KEY)"
    click.echo(f"inbound SMTP for reply+…@{server.domain} on {server.host}:{server.port} ({tls})", err=True)
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
        click.echo("inbound SMTP stopped", err=True)


def register(app: Flask) -> None:
    app.cli.add_command(inbound_smtp_command)
