"""The migrations build exactly the schema the models describe, and start-up
migrates an existing database."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from wizard.db import make_engine, schema


def test_migrations_from_scratch_match_the_models(app, database_url):
    engine = make_engine(database_url)
    with engine.begin() as connection:
        # Start again from nothing and build the schema only from the migration scripts.
        for table in reversed(schema.all_metadata().sorted_tables):
            table.drop(connection, checkfirst=True)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        command.upgrade(schema.alembic_config(connection), "head")
        differences = compare_metadata(MigrationContext.configure(connection), schema.all_metadata())
    engine.dispose()
    assert differences == []


def test_start_up_stamps_a_new_database_and_is_repeatable(app, database_url):
    engine = make_engine(database_url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version
        assert "outboxemail" in inspect(connection).get_table_names()
    schema.upgrade(engine)  # a second start changes nothing
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == version
    engine.dispose()
