"""The database glue of the web app: one engine per app, a session per request.

The schema is created or migrated on start (``wizard.db.schema``), so there is
no manual initialisation step. The engine itself is built by
``wizard.db.engine`` (no Flask)."""
from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlmodel import Session

from wizard.db.engine import make_engine

__all__ = ["close_session", "get_engine", "get_session", "init_app", "make_engine"]


def init_app(app: Flask) -> None:
    from wizard.db import schema

    engine = make_engine(app.config["DATABASE_URL"])
    schema.upgrade(engine)
    app.extensions["db_engine"] = engine
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    return current_app.extensions["db_engine"]


def get_session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = Session(get_engine(), expire_on_commit=False)
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
