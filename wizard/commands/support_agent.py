"""``flask --app wizard create-support-agent EMAIL``: an account for HeiChat support staff.

Support agents belong to no store; they sign in on the same /signin page and
land on /support. The password is prompted for twice (hidden), or read from
the environment variable ``SUPPORT_AGENT_PASSWORD`` for scripts — never from
the command line, where it would land in shell history and the process list.

Exit status: 0 created, 2 bad arguments (invalid or taken email, short or guessable password).
"""
from __future__ import annotations

import os
import sys

import click
from email_validator import EmailNotValidError, validate_email
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from werkzeug.security import generate_password_hash

from wizard.accounts import create_member
from wizard.accounts.passwords import weakness

PASSWORD_VARIABLE = "SUPPORT_AGENT_PASSWORD"
MIN_PASSWORD = 8


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


@click.command("create-support-agent")
@click.argument("email")
@with_appcontext
def create_support_agent_command(email: str) -> None:
    """Create a HeiChat support agent who signs in with EMAIL."""
    from wizard.db import get_session
    from wizard.models import Member

    try:
        address = validate_email(email.strip(), check_deliverability=False, allow_smtputf8=False).normalized.lower()
    except EmailNotValidError as exc:
        _fail(f"{email!r} is not a valid email address: {exc}")
    db = get_session()
    if db.exec(select(Member).where(Member.email == address)).first() is not None:
        _fail(f"an account with the email {address} already exists.")
    password = os.environ.get(PASSWORD_VARIABLE) or click.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password")
    if not MIN_PASSWORD <= len(password) <= 200:
        _fail(f"use a password of {MIN_PASSWORD} to 200 characters.")
    reason = weakness(password, email=address)
    if reason:
        _fail(f"choose a stronger password. {reason}")
    try:
        create_member(db, address, generate_password_hash(password), role="support")
    except IntegrityError:  # taken meanwhile
        db.rollback()
        _fail(f"an account with the email {address} already exists.")
    click.echo(f"Support agent {address} created. They sign in at /signin and land on /support.")


def register(app: Flask) -> None:
    app.cli.add_command(create_support_agent_command)
