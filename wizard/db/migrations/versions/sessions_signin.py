"""server-side sign-in sessions and the sign-in throttle per (email, address) and per address

Revision ID: sessions01
Revises: secrets01
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "sessions01"
down_revision = "secrets01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signinsession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signinsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signinsession_key_hash"), ["key_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_signinsession_member_id"), ["member_id"], unique=False)

    op.create_table(
        "signinthrottle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    # The per-account counters are replaced by the table above (a stranger could lock an owner out).
    # A plain DROP COLUMN (SQLite 3.35+ has it): a batch copy of the table would trip the
    # foreign keys of every row that references a member.
    op.drop_column("member", "failed_sign_ins")
    op.drop_column("member", "sign_in_blocked_until")


def downgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sign_in_blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"))
    op.drop_table("signinthrottle")
    with op.batch_alter_table("signinsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signinsession_member_id"))
        batch_op.drop_index(batch_op.f("ix_signinsession_key_hash"))
    op.drop_table("signinsession")
