"""Sign in with Google / Microsoft: OAuth grants, and how the draft and the saved settings log in

Revision ID: oauth01
Revises: chat01

Every existing draft and saved setting keeps logging in with its password
(auth_method "password").
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "oauth01"
down_revision = "chat01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauthgrant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("account_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("access_token_encrypted", sa.Text(), nullable=False),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("token_binding", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("problem", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oauthgrant", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauthgrant_store_id"), ["store_id"], unique=False)

    # How each test and test email logged in (the diagnosis words a failure by it).
    for table in ("connectiontest", "sendlog"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("auth_method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                          server_default="password"))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("auth_method", server_default=None)

    for table in ("smtpdraft", "smtpsettings"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("auth_method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                          server_default="password"))
            batch_op.add_column(sa.Column("oauth_grant_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_oauth_grant_id"), ["oauth_grant_id"], unique=False)
            batch_op.create_foreign_key(f"fk_{table}_oauth_grant_id", "oauthgrant", ["oauth_grant_id"], ["id"])
        # The default was only for the rows already there; the models set it from now on.
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("auth_method", server_default=None)


def downgrade() -> None:
    for table in ("smtpsettings", "smtpdraft"):
        # Dropping the column drops its foreign key too (PostgreSQL; SQLite's batch copy).
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_oauth_grant_id"))
            batch_op.drop_column("oauth_grant_id")
            batch_op.drop_column("auth_method")
    for table in ("sendlog", "connectiontest"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("auth_method")
    with op.batch_alter_table("oauthgrant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauthgrant_store_id"))
    op.drop_table("oauthgrant")
