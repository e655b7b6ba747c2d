"""Alembic environment: migrations run on the connection ``wizard.schema`` hands over."""
from __future__ import annotations

from alembic import context

from wizard.db.schema import all_metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=all_metadata(),
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
