"""Console accounts keep their language (id or en), so it follows the person to any phone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.add_column(sa.Column('lang', sa.String(length=8), nullable=False, server_default='id'))


def downgrade() -> None:
    with op.batch_alter_table('staff') as batch:
        batch.drop_column('lang')
