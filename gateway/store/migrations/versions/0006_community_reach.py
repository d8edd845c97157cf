"""Community reach: volunteers, trusted reports, opt-in areas, awareness broadcasts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 18:51:06.970869
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('broadcasts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_code', sa.String(length=8), nullable=False),
    sa.Column('body', sa.String(length=160), nullable=False),
    sa.Column('send_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('recipients', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('volunteers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('region_code', sa.String(length=8), nullable=False),
    sa.Column('phone_index', sa.String(length=64), nullable=False),
    sa.Column('phone_enc', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('phone_index')
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subscribed_region', sa.String(length=8), nullable=True))
        batch_op.create_index(batch_op.f('ix_contacts_subscribed_region'), ['subscribed_region'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('broadcast_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_broadcast_id'), ['broadcast_id'], unique=False)
        batch_op.create_unique_constraint('uq_messages_broadcast_to', ['broadcast_id', 'to_index'])
        batch_op.create_foreign_key('fk_messages_broadcast_id', 'broadcasts', ['broadcast_id'], ['id'])

    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_column('trusted')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint('fk_messages_broadcast_id', type_='foreignkey')
        batch_op.drop_constraint('uq_messages_broadcast_to', type_='unique')
        batch_op.drop_index(batch_op.f('ix_messages_broadcast_id'))
        batch_op.drop_column('broadcast_id')

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_subscribed_region'))
        batch_op.drop_column('subscribed_region')

    op.drop_table('volunteers')
    op.drop_table('broadcasts')
