"""SMS channel: incoming messages, contacts (language, STOP), replies, acknowledgements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:56:52.901106
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone_index', sa.String(length=64), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=True),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('help_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('phone_index')
    )
    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('provider_id', sa.String(length=100), nullable=False),
    sa.Column('sender_enc', sa.Text(), nullable=False),
    sa.Column('sender_index', sa.String(length=64), nullable=False),
    sa.Column('text_enc', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider_id')
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_sender_index'), ['sender_index'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inbound_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('delivery_status', sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint('uq_messages_inbound_id', ['inbound_id'])
        batch_op.create_foreign_key('fk_messages_inbound_id', 'inbound_messages', ['inbound_id'], ['id'])

    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('follow_ups', sa.Integer(), nullable=False, server_default='0'))
        batch_op.alter_column('category',
               existing_type=sa.VARCHAR(length=32),
               nullable=True)
        batch_op.alter_column('region_code',
               existing_type=sa.VARCHAR(length=8),
               nullable=True)
        batch_op.create_foreign_key('fk_reports_acknowledged_by', 'responders', ['acknowledged_by'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_constraint('fk_reports_acknowledged_by', type_='foreignkey')
        batch_op.alter_column('region_code',
               existing_type=sa.VARCHAR(length=8),
               nullable=False)
        batch_op.alter_column('category',
               existing_type=sa.VARCHAR(length=32),
               nullable=False)
        batch_op.drop_column('follow_ups')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('acknowledged_by')
        batch_op.drop_column('acknowledged_at')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint('fk_messages_inbound_id', type_='foreignkey')
        batch_op.drop_constraint('uq_messages_inbound_id', type_='unique')
        batch_op.drop_column('delivery_status')
        batch_op.drop_column('inbound_id')

    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_sender_index'))

    op.drop_table('inbound_messages')
    op.drop_table('contacts')
