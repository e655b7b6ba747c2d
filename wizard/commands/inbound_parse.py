"""``flask --app wizard inbound-parse FILE``: what the wizard reads in one received email.

For operators checking why a reply did (not) reach a conversation: the kind
(message, auto_reply, bounce), the sender, the ids it answers, the reply
token, the new text without the quoted history, and a bounce's status.
FILE is a raw message (an ``.eml`` file, or ``-`` for stdin).

Exit status: 0 when the input was an email, 2 when it was not (the reason on
stderr) or FILE cannot be read. With ``--json`` exactly one JSON object is
printed on one line of stdout: ``ParsedEmail.as_contract()``, that is
``{"kind", "from", "subject", "in_reply_to", "reply_token", "text", "bounce"}``.
"""
from __future__ import annotations

import json
import sys

import click
from flask import Flask

from wizard.inbound.parse import NotAnEmail, parse_message

# A raw message larger than this is not a reply to a chat (providers cap mail near 25-50 MB).
MAX_BYTES = 64 * 1024 * 1024


def print_summary(data: dict) -> None:
    click.echo(f"Kind: {data['kind']}")
    click.echo(f"From: {data['from'] or '(none)'}")
    click.echo(f"Subject: {data['subject'] if data['subject'] is not None else '(none)'}")
    click.echo(f"Answers: {', '.join(data['in_reply_to']) or '(no In-Reply-To or References)'}")
    click.echo(f"Reply token: {data['reply_token'] or '(none)'}")
    bounce = data["bounce"]
    if bounce:
        click.echo(f"Bounce: {bounce['action']} {bounce['status']} for {bounce['recipient'] or '(unknown recipient)'} "
                   f"({'permanent' if bounce['permanent'] else 'temporary'}); "
                   f"our message: {bounce['original_message_id'] or '(not returned)'}")
    click.echo("Text:")
    for line in (data["text"] or "(empty)").split("\n"):
        click.echo(f"  {line}")


@click.command("inbound-parse")
@click.argument("source", metavar="FILE", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the contract).")
def inbound_parse_command(source, as_json):
    """Parse a raw email (FILE, or - for stdin) as an inbound reply, auto-reply or bounce."""
    try:
        raw = source.read(MAX_BYTES + 1)
    except OSError as exc:
        click.echo(f"Error: cannot read {source.name}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    if len(raw) > MAX_BYTES:
        click.echo(f"Error: {source.name} is larger than {MAX_BYTES // (1024 * 1024)} MB", err=True)
        sys.exit(2)
    try:
        parsed = parse_message(raw)
    except NotAnEmail as exc:
        click.echo(f"Error: not an email: {exc}", err=True)
        sys.exit(2)
    data = parsed.as_contract()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        print_summary(data)


def register(app: Flask) -> None:
    """Add the command to ``app``'s CLI (it is also a Flask CLI plugin)."""
    app.cli.add_command(inbound_parse_command)
