"""The database schema and its migrations (Alembic).

``upgrade(engine)`` brings any database to the current schema: a new, empty
one is created from the models in one step and stamped with the latest
revision (fast first start, and tests get a fresh database cheaply); an
existing one runs the migrations it has not seen. Several processes starting
at once take turns: through an advisory lock on PostgreSQL, through a lock on
a file beside the database on SQLite (``gunicorn -w 2`` on a fresh database:
both workers start at once, and SQLite's DDL is not transactional). New schema
changes: edit the models, then
``python -m wizard.schema revision "what changed"`` and review the file.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: the advisory lock that serialises migrations on PostgreSQL.
MIGRATION_LOCK = 720_511


def all_metadata():
    """The metadata of every table (importing the modules registers them)."""
    from wizard import models  # noqa: F401
    from wizard.models import inbound as inbound_models  # noqa: F401
    from wizard.models import outbox as outbox_models  # noqa: F401

    return SQLModel.metadata


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def sqlite_file_lock(engine: Engine):
    """Hold an exclusive lock on ``<database>.schema-lock`` (SQLite files only; elsewhere a no-op)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock (run one process for the first start)
        yield
        return
    fd = os.open(f"{database}.schema-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed, even if the process dies
        yield
    finally:
        os.close(fd)


def upgrade(engine: Engine) -> None:
    """Create or migrate the database behind ``engine`` to the current schema."""
    metadata = all_metadata()
    with sqlite_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        existing = set(inspect(connection).get_table_names())
        config = alembic_config(connection)
        if not existing - {"alembic_version"}:
            metadata.create_all(connection)
            command.stamp(config, "head")
        else:
            command.upgrade(config, "head")


def main(argv: list[str]) -> int:
    """``python -m wizard.schema revision "message"``: autogenerate a migration
    against a scratch SQLite database brought to the latest revision."""
    import tempfile

    from sqlmodel import create_engine

    if len(argv) != 2 or argv[0] != "revision":
        print('usage: python -m wizard.schema revision "message"', file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/schema.sqlite")
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.upgrade(config, "head")
            command.revision(config, message=argv[1], autogenerate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
