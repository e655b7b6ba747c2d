"""provider keys as contracted: outlook -> microsoft365, other -> custom

Every column that holds a provider key, the suggested values of share links
(JSON ``sharelink.prefill.provider``) and the audit log's record of a chosen
provider (JSON ``auditevent.detail.provider``). No schema change.

Revision ID: diag01
Revises: d2c8e39b1db4
"""
from alembic import op
import sqlalchemy as sa


revision = "diag01"
down_revision = "d2c8e39b1db4"
branch_labels = None
depends_on = None

RENAMES = {"outlook": "microsoft365", "other": "custom"}
COLUMNS = (("store", "provider"), ("smtpdraft", "provider"), ("smtpsettings", "provider"),
           ("connectiontest", "provider"))


def _rename(mapping: dict) -> None:
    bind = op.get_bind()
    for table, column in COLUMNS:
        for old, new in mapping.items():
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old"),
                         {"old": old, "new": new})
    # JSON documents: rewritten in Python, the same on SQLite and PostgreSQL.
    for table_name, column in (("sharelink", "prefill"), ("auditevent", "detail")):
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column, sa.JSON))
        for row_id, document in bind.execute(sa.select(table.c.id, table.c[column])).all():
            if isinstance(document, dict) and document.get("provider") in mapping:
                changed = dict(document, provider=mapping[document["provider"]])
                bind.execute(table.update().where(table.c.id == row_id).values({column: changed}))


def upgrade() -> None:
    _rename(RENAMES)


def downgrade() -> None:
    _rename({new: old for old, new in RENAMES.items()})
