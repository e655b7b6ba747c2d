"""``flask --app wizard smtp-test``: the wizard's connection test from a terminal.

An operator's tool run on the server, so it does not apply the web app's
restrictions on target addresses. The secret comes from the environment —
never from the command line, where it would land in shell history and the
process list: ``SMTP_PASSWORD`` with ``--auth password`` (the default),
``SMTP_ACCESS_TOKEN`` (an OAuth 2.0 access token, sent with XOAUTH2) with
``--auth xoauth2``.

Exit status: 0 ok, 1 a diagnosed failure, 2 bad arguments. With ``--json``
exactly one JSON object is printed on stdout:
``{"ok", "category", "stage", "hint", "suggestion", "reply", "elapsed_ms", "transcript", "auth"}``.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask

from wizard.catalogue import load_catalogue
from wizard.commands import budget_left, command_config, resolve_provider
from wizard.smtp.diagnosis import explain, stage_label
from wizard.smtp.message import build_test_email
from wizard.smtp.probe import probe_smtp
from wizard.smtp.types import AUTH_METHODS, SmtpTarget
from wizard.smtp.validation import CONTROL_CHARACTERS

# Where each auth method's secret is read from, and what it is called in messages.
SECRET_VARIABLES = {"password": ("SMTP_PASSWORD", "password"), "xoauth2": ("SMTP_ACCESS_TOKEN", "access token")}
PASSWORD_VARIABLE = SECRET_VARIABLES["password"][0]
# An OAuth 2.0 bearer token (RFC 6750's b64token is narrower still).
ACCESS_TOKEN = re.compile(r"[\x21-\x7e]+")


def bad_argument(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def checked_address(value: str, option: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError as exc:
        bad_argument(f"{option} is not a valid email address: {exc}")


def result_object(result, provider_key: str | None, target: SmtpTarget) -> dict:
    """The JSON contract of ``smtp-test --json``."""
    _title, hint = explain(result.category, provider_key, {
        "host": target.host, "port": target.port, "username": target.username,
        "sender": target.sender_email, "greeting_timeout": f"{min(target.greeting_timeout, target.timeout / 2):g}",
    }, auth=target.auth)
    reply = result.reply
    return {
        "ok": result.ok,
        "category": result.category,
        "stage": result.stage,
        "hint": hint,
        "suggestion": result.suggestion,
        "reply": {"code": reply.code, "enhanced": reply.enhanced, "text": reply.text} if reply else None,
        "elapsed_ms": result.elapsed_ms,
        "transcript": result.transcript,
        "auth": target.auth,
    }


def print_report(data: dict, target: SmtpTarget) -> None:
    title = "Connection test passed" if data["ok"] else explain(data["category"], None, {}, auth=target.auth)[0]
    click.echo(f"{'OK' if data['ok'] else 'FAILED'}: {title} ({data['category']}, {data['elapsed_ms']} ms)")
    click.echo(f"Server: {target.host}:{target.port} ({target.security})")
    if not data["ok"]:
        click.echo(f"Stopped at: {stage_label(data['stage'])} [{data['stage']}]")
    if data["reply"]:
        click.echo(f"Server said: {data['reply']['code']} {data['reply']['text']}")
    if not data["ok"]:
        click.echo(f"What to check: {data['hint']}")
    if data["suggestion"]:
        click.echo(f"Try: port {data['suggestion']['port']} with {data['suggestion']['security']}")
    click.echo("Transcript (passwords and tokens removed):")
    for line in data["transcript"]:
        click.echo(f"  {line}")


@click.command("smtp-test")
@click.option("--host", required=True, help="SMTP server name.")
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="SMTP port (587, 465 …).")
@click.option("--security", required=True, type=click.Choice(["starttls", "ssl"]), help="STARTTLS or implicit SSL/TLS.")
@click.option("--username", required=True, help="SMTP login.")
@click.option("--auth", "auth", default="password", show_default=True, type=click.Choice(AUTH_METHODS),
              help="How to sign in: password (from SMTP_PASSWORD) or xoauth2 (an OAuth access token from "
                   "SMTP_ACCESS_TOKEN).")
@click.option("--sender-email", required=True, help="Sender address (used for MAIL FROM).")
@click.option("--sender-name", default="HeiChat test", show_default=True, help="Sender name for --send-to.")
@click.option("--provider", default=None, help="Provider key for provider-specific hints: gmail, microsoft365, zoho, "
                                                 "sendgrid, mailgun, ses, brevo or custom (outlook and other also work).")
@click.option("--ca-file", default=None, help="Extra PEM CA bundle to trust.")
@click.option("--timeout", default=15.0, show_default=True, type=float, help="Seconds for the whole test.")
@click.option("--send-to", default=None, help="Also send a real test email to this address.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def smtp_test_command(host, port, security, username, auth, sender_email, sender_name, provider, ca_file, timeout,
                      send_to, as_json):
    """Test SMTP settings stage by stage and explain any failure.

    The password is read from the SMTP_PASSWORD environment variable; with
    --auth xoauth2 the access token from SMTP_ACCESS_TOKEN instead.
    """
    variable, secret_name = SECRET_VARIABLES[auth]
    secret = os.environ.get(variable)
    if auth == "xoauth2" and secret:
        secret = secret.strip()  # a token read from a file often brings its line break
    if not secret:
        bad_argument(f"set the {secret_name} in the {variable} environment variable (never on the command line)")
    if auth == "xoauth2" and not ACCESS_TOKEN.fullmatch(secret):
        # The value itself is never echoed.
        bad_argument(f"{variable} is not an access token: it must be printable ASCII without spaces")
    for name, value in (("--host", host), ("--username", username), ("--sender-name", sender_name)):
        if CONTROL_CHARACTERS.search(value):
            bad_argument(f"{name} contains a line break or control character")
    if not host.strip() or " " in host.strip():
        bad_argument("--host must be a server name such as smtp.gmail.com")
    if not 0 < timeout <= 300:
        bad_argument("--timeout must be between 0 and 300 seconds")
    catalogue = load_catalogue()
    provider, problem = resolve_provider(provider, catalogue)
    if problem:
        bad_argument(problem)
    if ca_file is not None and not Path(ca_file).is_file():
        bad_argument(f"--ca-file {ca_file} does not exist")
    sender = checked_address(sender_email, "--sender-email")
    recipient = checked_address(send_to, "--send-to") if send_to else None
    if provider is None:
        guessed = catalogue.provider_for_host(host.strip().lower().rstrip("."))
        provider = guessed.key if guessed else None

    target = SmtpTarget(host=host.strip().lower().rstrip("."), port=port, security=security,
                        username=username.strip(), password=secret if auth == "password" else "",
                        auth=auth, access_token=secret if auth == "xoauth2" else "", sender_email=sender,
                        timeout=budget_left(timeout), greeting_timeout=float(command_config()["SMTP_GREETING_TIMEOUT"]),
                        ca_file=ca_file or command_config().get("SMTP_EXTRA_CA_FILE") or None,
                        nameserver=command_config().get("DNS_NAMESERVER") or None)
    message = None
    if recipient:
        message = build_test_email(sender_name=sender_name, sender_email=sender, recipient=recipient,
                                   store_name="HeiChat", provider_name=catalogue.get(provider).name if provider else "SMTP")
    result = probe_smtp(target, message=message, recipients=[recipient] if recipient else None)
    data = result_object(result, provider, target)
    if as_json:
        click.echo(json.dumps(data))
    else:
        print_report(data, target)
    sys.exit(0 if result.ok else 1)


def register(app: Flask) -> None:
    """Add the command to ``app``'s CLI (it is also a Flask CLI plugin)."""
    app.cli.add_command(smtp_test_command)
