"""Reports keep the place within the kabupaten/kota that an SMS named (kec. Belitang)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reports') as batch:
        batch.add_column(sa.Column('place', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reports') as batch:
        batch.drop_column('place')
