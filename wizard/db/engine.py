"""The database engine: SQLite in ``instance/`` by default, any SQLAlchemy URL
(PostgreSQL through psycopg) via ``DATABASE_URL``. No Flask: the commands, the
workers and the tests open engines with it too."""
from __future__ import annotations

import os

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlmodel import create_engine


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets foreign keys and a busy wait."""
    if url.startswith("postgresql://"):
        # Plain postgresql:// would pick psycopg2, which we do not ship.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        create_private_file(sqlite_path(url))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL's recommended setting: a commit waits for no fsync (checkpoints do), so every
            # small write (a draft as typed, a chat message) stops costing a disk flush; the
            # database stays consistent, and only the last commits can be lost on power loss.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def sqlite_path(url: str) -> str | None:
    """The database file of a SQLite URL (None for an in-memory database)."""
    database = make_url(url).database
    return None if not database or database == ":memory:" or database.startswith("file:") else database


def create_private_file(path: str | None) -> None:
    """Create ``path`` empty with mode 0600 unless it exists: SQLite would create it
    world-readable, and its -wal and -shm files take the database file's mode."""
    if path is None:
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass  # already there, or no such folder (SQLite then reports it clearly)
