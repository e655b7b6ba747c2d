"""``flask --app wizard …`` commands."""
from __future__ import annotations

import threading
from pathlib import Path

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple


def start_dev_mailbox(app: Flask):
    """Start the local test mailbox (STARTTLS + AUTH on loopback) for ``app``."""
    from wizard.devmailbox.certs import ensure_self_signed_cert
    from wizard.devmailbox.server import DevMailbox

    cert, key = ensure_self_signed_cert(Path(app.instance_path), "dev-mailbox")
    mailbox = DevMailbox(
        Path(app.config["DEV_MAILBOX_DIR"]),
        cert,
        key,
        host=app.config["DEV_MAILBOX_HOST"],
        port=int(app.config["DEV_MAILBOX_PORT"]),
    )
    mailbox.start()
    return mailbox


def init_app(app: Flask) -> None:
    from wizard.commands import dns_check, outbox_worker, rotate_key, smtp_detect, smtp_test, support_agent

    for command in (smtp_test, smtp_detect, dns_check, rotate_key, support_agent, outbox_worker):
        command.register(app)

    @app.cli.command("dev-mailbox")
    def dev_mailbox_command():
        """Run the local test mailbox on its own (Ctrl+C stops it)."""
        mailbox = start_dev_mailbox(current_app)
        click.echo(f"Local test mailbox listening on {current_app.config['DEV_MAILBOX_HOST']}:{mailbox.port} "
                   f"(STARTTLS + AUTH; any login except the password wrong-password).")
        click.echo(f"Messages are kept in {current_app.config['DEV_MAILBOX_DIR']}.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            mailbox.stop()

    @app.cli.command("serve")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=5000, show_default=True, help="Port for the web app.")
    @click.option("--no-mailbox", is_flag=True, help="Do not start the local test mailbox.")
    def serve_command(host: str, port: int, no_mailbox: bool):
        """Run the wizard on embedded defaults: web app plus local test mailbox."""
        app = current_app._get_current_object()
        # Development mode: shows the local test mailbox and trusts its certificate.
        app.debug = True
        app.config["SESSION_COOKIE_SECURE"] = False
        from wizard.commands.embedded_worker import start_embedded_worker

        worker = start_embedded_worker(app)
        click.echo(" * Outbox worker running alongside (on SQLite, run no other worker)")
        mailbox = None
        if not no_mailbox:
            mailbox = start_dev_mailbox(app)
            click.echo(f" * Local test mailbox on {app.config['DEV_MAILBOX_HOST']}:{mailbox.port}; "
                       f"inbox at http://{host}:{port}/dev/mailbox")
        click.echo(f" * HeiChat email wizard on http://{host}:{port}/")
        try:
            # werkzeug directly: Flask ignores app.run() inside a flask command.
            run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
        finally:
            worker.stop()
            if mailbox is not None:
                mailbox.stop()
