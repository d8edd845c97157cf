"""WhatsApp: a duty number's alert channel, each message's channel, an inbound's kind, and
provider message ids long enough for a wamid

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('responders') as batch:
        batch.add_column(sa.Column('alert_channel', sa.String(length=8), nullable=False, server_default='sms'))
    with op.batch_alter_table('messages') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=8), nullable=True))
        batch.alter_column('provider_message_id', existing_type=sa.String(length=64), type_=sa.String(length=128))
    with op.batch_alter_table('inbound_messages') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages') as batch:
        batch.drop_column('kind')
    with op.batch_alter_table('messages') as batch:
        batch.alter_column('provider_message_id', existing_type=sa.String(length=128), type_=sa.String(length=64))
        batch.drop_column('channel')
    with op.batch_alter_table('responders') as batch:
        batch.drop_column('alert_channel')
