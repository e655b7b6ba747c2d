"""The inbox at scale: each conversation's summary row (latest activity, newest message and its author, newest email) and the indexes the chat and the inbox read through

Revision ID: scale01
Revises: inbound01

Backfills the summary from the messages and emails already stored, so the
inbox of an existing database sorts exactly as it did (latest of the start,
the newest message and the newest email).
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "scale01"
down_revision = "inbound01"
branch_labels = None
depends_on = None

BACKFILL = [
    "UPDATE conversation SET last_activity_at = started_at",
    "UPDATE conversation SET last_message_id = (SELECT max(m.id) FROM chatmessage m WHERE m.conversation_id = conversation.id)",
    "UPDATE conversation SET last_email_id = (SELECT max(e.id) FROM outboxemail e"
    " WHERE e.conversation_id = conversation.id AND e.store_id = conversation.store_id)",
    "UPDATE conversation SET last_author = (SELECT m.author FROM chatmessage m WHERE m.id = conversation.last_message_id)",
    "UPDATE conversation SET last_activity_at = (SELECT m.created_at FROM chatmessage m WHERE m.id = conversation.last_message_id)"
    " WHERE (SELECT m.created_at FROM chatmessage m WHERE m.id = conversation.last_message_id) > last_activity_at",
    "UPDATE conversation SET last_activity_at = (SELECT e.created_at FROM outboxemail e WHERE e.id = conversation.last_email_id)"
    " WHERE (SELECT e.created_at FROM outboxemail e WHERE e.id = conversation.last_email_id) > last_activity_at",
]


def upgrade() -> None:
    with op.batch_alter_table("chatmessage", schema=None) as batch_op:
        batch_op.create_index("ix_chatmessage_conversation_created", ["conversation_id", "created_at", "id"], unique=False)

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        # NOT NULL with a constant default: SQLite adds it in place (no table rebuild, which the
        # foreign keys pointing at conversation forbid); every row is backfilled just below.
        batch_op.add_column(sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False,
                                      server_default="1970-01-01 00:00:00"))
        batch_op.add_column(sa.Column("last_message_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_author", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True))
        batch_op.add_column(sa.Column("last_email_id", sa.Integer(), nullable=True))
    for statement in BACKFILL:
        op.execute(statement)
    if op.get_bind().dialect.name != "sqlite":
        # The models have no server default (the app always writes the column); SQLite keeps it.
        op.alter_column("conversation", "last_activity_at", server_default=None)
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_store_activity", ["store_id", "last_activity_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_store_activity")
        batch_op.drop_column("last_email_id")
        batch_op.drop_column("last_author")
        batch_op.drop_column("last_message_id")
        batch_op.drop_column("last_activity_at")

    with op.batch_alter_table("chatmessage", schema=None) as batch_op:
        batch_op.drop_index("ix_chatmessage_conversation_created")
