"""``flask --app wizard …`` commands."""
from __future__ import annotations

import threading
from pathlib import Path

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple


def start_dev_mailbox(app: Flask, token_checker=None):
    """Start the local test mailbox (STARTTLS + AUTH on loopback) for ``app``;
    with ``token_checker`` (the local sign-in server's) it also takes XOAUTH2."""
    from wizard.devmailbox.certs import ensure_self_signed_cert
    from wizard.devmailbox.server import DevMailbox

    cert, key = ensure_self_signed_cert(Path(app.instance_path), "dev-mailbox")
    mailbox = DevMailbox(
        Path(app.config["DEV_MAILBOX_DIR"]),
        cert,
        key,
        host=app.config["DEV_MAILBOX_HOST"],
        port=int(app.config["DEV_MAILBOX_PORT"]),
        token_checker=token_checker,
    )
    mailbox.start()
    return mailbox


# Where reply addresses point in development mode (.test never resolves anywhere real).
DEV_INBOUND_DOMAIN = "replies.heichat.test"


def start_dev_inbound(app: Flask):
    """Start the inbound SMTP server on loopback, with the local inbound domain
    unless one is configured, so follow-ups carry a reply address that works."""
    from wizard.commands.inbound_smtp import inbound_server_for

    if not app.config.get("INBOUND_DOMAIN"):
        app.config["INBOUND_DOMAIN"] = DEV_INBOUND_DOMAIN
    server = inbound_server_for(app).start()
    app.config["INBOUND_SMTP_PORT"] = server.port  # "Reply as the visitor" sends here
    return server


# The wizard's registration at the local test sign-in server.
DEV_SIGNIN_CLIENT_ID = "heichat-email-wizard-dev"


def start_dev_signin(app: Flask, web_origins: list[str], **options):
    """Start the local test sign-in server and point the "local" sign-in of
    ``app`` at it (a fresh client secret each start; nothing outlives the process)."""
    import secrets

    from wizard.devsignin import start_signin_server

    secret = secrets.token_urlsafe(32)
    server = start_signin_server(app.config["DEV_SIGNIN_HOST"], int(app.config["DEV_SIGNIN_PORT"]), clients=[{
        "client_id": DEV_SIGNIN_CLIENT_ID, "client_secret": secret,
        "redirect_uris": [origin.rstrip("/") + "/oauth/local/callback" for origin in web_origins],
        "name": "HeiChat email wizard (development)",
    }], **options)
    app.config.update(OAUTH_LOCAL_CLIENT_ID=DEV_SIGNIN_CLIENT_ID, OAUTH_LOCAL_CLIENT_SECRET=secret,
                      OAUTH_LOCAL_METADATA_URL=server.metadata_url("local"))
    app.extensions.pop("sign_in_clients", None)  # rebuilt with the local provider
    return server


def init_app(app: Flask) -> None:
    from wizard.commands import (
        dns_check,
        inbound_parse,
        inbound_smtp,
        inbox_fetcher,
        outbox_worker,
        rotate_key,
        smtp_detect,
        smtp_test,
        support_agent,
    )

    for command in (smtp_test, smtp_detect, dns_check, inbound_parse, rotate_key, support_agent, outbox_worker,
                    inbound_smtp, inbox_fetcher):
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
    @click.option("--no-signin", is_flag=True, help="Do not start the local test sign-in server.")
    @click.option("--no-inbound", is_flag=True, help="Do not start the inbound SMTP server for replies.")
    def serve_command(host: str, port: int, no_mailbox: bool, no_signin: bool, no_inbound: bool):
        """Run the wizard on embedded defaults: web app, local test mailbox, local test sign-in server,
        inbound SMTP server for replies."""
        app = current_app._get_current_object()
        # Development mode: shows the local test mailbox and trusts its certificate.
        app.debug = True
        app.config["SESSION_COOKIE_SECURE"] = False
        from wizard.commands.embedded_worker import start_embedded_worker

        signin = None
        if not no_signin:
            origins = {f"http://{host}:{port}", f"http://127.0.0.1:{port}", f"http://localhost:{port}"}
            signin = start_dev_signin(app, sorted(origins))
            click.echo(f" * Local test sign-in server on {signin.url}/ (\"Sign in\" on the Local test mailbox card)")
        inbound = None
        if not no_inbound:
            inbound = start_dev_inbound(app)
            click.echo(f" * Inbound SMTP for replies (reply+…@{app.config['INBOUND_DOMAIN']}) on "
                       f"{inbound.host}:{inbound.port}")
        worker = start_embedded_worker(app)
        click.echo(" * Outbox worker running alongside (on SQLite, run no other worker)")
        from wizard.commands.embedded_fetcher import start_embedded_fetcher

        fetcher = start_embedded_fetcher(app)
        click.echo(" * IMAP fetcher running alongside (for stores that turned on \"Bring replies into HeiChat\")")
        mailbox = None
        if not no_mailbox:
            mailbox = start_dev_mailbox(app, token_checker=signin.store.check_access_token if signin else None)
            click.echo(f" * Local test mailbox on {app.config['DEV_MAILBOX_HOST']}:{mailbox.port}; "
                       f"inbox at http://{host}:{port}/dev/mailbox")
        click.echo(f" * HeiChat email wizard on http://{host}:{port}/")
        try:
            # werkzeug directly: Flask ignores app.run() inside a flask command.
            run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
        finally:
            fetcher.stop()
            worker.stop()
            if mailbox is not None:
                mailbox.stop()
            if signin is not None:
                signin.stop()
            if inbound is not None:
                inbound.stop()
