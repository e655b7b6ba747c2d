"""Replies come back: inbound emails, reply tokens per conversation and per store, IMAP fetching per store

Revision ID: inbound01
Revises: oauth01
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "inbound01"
down_revision = "oauth01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("store", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_store_reply_token"), ["reply_token"], unique=True)
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversation_reply_token"), ["reply_token"], unique=True)

    op.create_table(
        "inboundemail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("outbox_email_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
        sa.Column("matched_by", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("bounce_recipient", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("bounce_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("bounce_action", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("bounce_permanent", sa.Boolean(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.ForeignKeyConstraint(["outbox_email_id"], ["outboxemail.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("store_id", "message_id"),
    )
    with op.batch_alter_table("inboundemail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inboundemail_store_id"), ["store_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inboundemail_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inboundemail_outbox_email_id"), ["outbox_email_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inboundemail_received_at"), ["received_at"], unique=False)

    with op.batch_alter_table("chatmessage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inbound_email_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_chatmessage_inbound_email_id"), ["inbound_email_id"], unique=False)
        batch_op.create_foreign_key("fk_chatmessage_inbound_email_id", "inboundemail", ["inbound_email_id"], ["id"])

    op.create_table(
        "imapfetching",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("auth_method", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("password_binding", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("oauth_grant_id", sa.Integer(), nullable=True),
        sa.Column("folder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["oauth_grant_id"], ["oauthgrant.id"]),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("imapfetching", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_imapfetching_store_id"), ["store_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("imapfetching", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_imapfetching_store_id"))
    op.drop_table("imapfetching")
    with op.batch_alter_table("chatmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chatmessage_inbound_email_id"))
        batch_op.drop_column("inbound_email_id")
    with op.batch_alter_table("inboundemail", schema=None) as batch_op:
        for column in ("received_at", "outbox_email_id", "conversation_id", "store_id"):
            batch_op.drop_index(batch_op.f(f"ix_inboundemail_{column}"))
    op.drop_table("inboundemail")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_reply_token"))
        batch_op.drop_column("reply_token")
    with op.batch_alter_table("store", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_store_reply_token"))
        batch_op.drop_column("reply_token")
