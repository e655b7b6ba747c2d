"""Conversations keep the visitor's name and address; unsubscribe links become stored opaque tokens

Revision ID: chat01
Revises: sessions01

Backfills each conversation's name and address from its contact (the only
record there was), and maps every unsubscribe link already sent in a reminder
to a stored token row, so those links keep working through the table (the app
no longer decodes tokens) until they expire like new ones.
"""
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "chat01"
down_revision = "sessions01"
branch_labels = None
depends_on = None

# Keep in step with wizard.outbox.unsubscribe.TOKEN_LIFETIME.
TOKEN_LIFETIME = timedelta(days=365)


def upgrade() -> None:
    op.create_table(
        "unsubscribetoken",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("issued_for", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issued_for"),
    )
    with op.batch_alter_table("unsubscribetoken", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unsubscribetoken_store_id"), ["store_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unsubscribetoken_token"), ["token"], unique=True)

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("visitor_name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
        batch_op.add_column(sa.Column("visitor_email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.create_index("ix_conversation_store_visitor_email", ["store_id", "visitor_email"], unique=False)

    connection = op.get_bind()
    contact = sa.table("contact", sa.column("id"), sa.column("name"), sa.column("email"))
    conversation = sa.table("conversation", sa.column("contact_id"), sa.column("visitor_name"),
                            sa.column("visitor_email"))
    connection.execute(conversation.update().where(conversation.c.contact_id.is_not(None)).values(
        visitor_name=sa.select(contact.c.name).where(contact.c.id == conversation.c.contact_id).scalar_subquery(),
        visitor_email=sa.select(contact.c.email).where(contact.c.id == conversation.c.contact_id).scalar_subquery(),
    ))
    _map_sent_unsubscribe_links(connection)


def _map_sent_unsubscribe_links(connection) -> None:
    """One token row per distinct old link found in a queued or sent reminder."""
    moment = sa.DateTime(timezone=True)
    outbox = sa.table("outboxemail", sa.column("store_id", sa.Integer), sa.column("recipient", sa.String),
                      sa.column("unsubscribe_url", sa.Text), sa.column("created_at", moment))
    tokens = sa.table("unsubscribetoken", sa.column("token", sa.String), sa.column("store_id", sa.Integer),
                      sa.column("email", sa.String), sa.column("created_at", moment), sa.column("expires_at", moment))
    rows: dict[str, dict] = {}
    query = sa.select(outbox.c.store_id, outbox.c.recipient, outbox.c.unsubscribe_url, outbox.c.created_at).where(
        outbox.c.unsubscribe_url.is_not(None)).order_by(outbox.c.created_at)
    for store_id, recipient, url, created_at in connection.execute(query):
        parts = [unquote(part) for part in urlsplit(url).path.split("/") if part]
        if len(parts) < 2 or parts[-1] != "one-click" or len(parts[-2]) > 512:
            continue
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=timezone.utc)
        # The newest reminder carrying a link decides how long it lives.
        rows[parts[-2]] = {"token": parts[-2], "store_id": store_id, "email": recipient.strip().lower(),
                           "created_at": created, "expires_at": created + TOKEN_LIFETIME}
    now = datetime.now(timezone.utc)
    fresh = [row for row in rows.values() if row["expires_at"] > now]
    if fresh:
        connection.execute(tokens.insert(), fresh)


def downgrade() -> None:
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_store_visitor_email")
        batch_op.drop_column("visitor_email")
        batch_op.drop_column("visitor_name")

    with op.batch_alter_table("unsubscribetoken", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsubscribetoken_token"))
        batch_op.drop_index(batch_op.f("ix_unsubscribetoken_store_id"))

    op.drop_table("unsubscribetoken")
