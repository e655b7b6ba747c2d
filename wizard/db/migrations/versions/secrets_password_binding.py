"""stored passwords are bound to the server identity they were typed for

Revision ID: secrets01
Revises: diag01

Passwords stored before this revision have no binding, so they are never
sent: the wizard asks the merchant to type the password again (then test and
save), and the outbox holds the store's mail until then. A binding cannot be
made here: it is keyed with the app's secret, which migrations do not see.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'secrets01'
down_revision = "diag01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('smtpdraft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_binding', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('password_notice', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    with op.batch_alter_table('smtpsettings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_binding', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('smtpsettings', schema=None) as batch_op:
        batch_op.drop_column('password_binding')
    with op.batch_alter_table('smtpdraft', schema=None) as batch_op:
        batch_op.drop_column('password_notice')
        batch_op.drop_column('password_binding')
