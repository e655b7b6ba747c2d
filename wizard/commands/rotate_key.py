"""``flask --app wizard rotate-key``: re-encrypt every stored secret under a new key.

Keys in ``instance/encryption.key`` (the default): a new key is generated
and written first, with the old ones kept after it, so every secret stays
readable while the command runs; all secrets are re-encrypted in one
transaction; only then is the file shortened to the new key. If the command
is interrupted, both keys are still in the file and running it again
finishes the job.

Keys in ``WIZARD_ENCRYPTION_KEY``: the environment cannot be rewritten, so
put the new key first yourself (``WIZARD_ENCRYPTION_KEY=new,old``; get one
with ``rotate-key --generate``), run ``rotate-key``, then drop the old key.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from cryptography.fernet import Fernet
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlmodel import Session, select

from wizard.db import get_engine
from wizard.secrets import SecretBox, split_keys
from wizard.secrets.stored import ENCRYPTED


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically, mode 0600."""
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(",".join(keys) + "\n")
    os.replace(temporary, path)


def reencrypt_all(engine, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the box's first key; returns how many."""
    count = 0
    with Session(engine) as session:
        for model, column in ENCRYPTED:
            for row in session.exec(select(model)).all():
                token = getattr(row, column)
                if token:
                    setattr(row, column, box.rotate(token))
                    session.add(row)
                    count += 1
        session.commit()
    return count


@click.command("rotate-key")
@click.option("--generate", is_flag=True, help="Only print a new key (for WIZARD_ENCRYPTION_KEY) and exit.")
@with_appcontext
def rotate_key_command(generate: bool):
    """Re-encrypt every stored SMTP password under a new encryption key."""
    if generate:
        click.echo(Fernet.generate_key().decode())
        return
    config = current_app.config
    key_file = Path(current_app.instance_path) / "encryption.key"
    from_environment = bool(os.environ.get("WIZARD_ENCRYPTION_KEY"))
    keys = split_keys(config["ENCRYPTION_KEYS"])
    if from_environment:
        if len(keys) < 2:
            click.echo("Error: the keys come from WIZARD_ENCRYPTION_KEY, which this command cannot rewrite. "
                       "Generate a key with `rotate-key --generate`, set WIZARD_ENCRYPTION_KEY=NEW,OLD and run "
                       "rotate-key again.", err=True)
            sys.exit(2)
        count = reencrypt_all(get_engine(), SecretBox(",".join(keys), config["SECRET_KEY"]))
        click.echo(f"Re-encrypted {count} secrets under the first key. Now set WIZARD_ENCRYPTION_KEY to that key alone.")
        return
    new_key = Fernet.generate_key().decode()
    # Old keys stay readable until every secret is re-encrypted.
    write_key_file(key_file, [new_key, *keys])
    count = reencrypt_all(get_engine(), SecretBox(",".join([new_key, *keys]), config["SECRET_KEY"]))
    write_key_file(key_file, [new_key])
    config["ENCRYPTION_KEYS"] = new_key
    current_app.extensions.pop("secret_box", None)
    click.echo(f"Re-encrypted {count} secrets under a new key; {key_file} now holds only the new key.")


def register(app: Flask) -> None:
    app.cli.add_command(rotate_key_command)
