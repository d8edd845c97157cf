"""Duty numbers encrypted, with a blind index: responders.phone becomes phone_enc and phone_index

Existing rows are converted with DATA_KEY (its first key encrypts and indexes), which
`flask --app gateway db-upgrade` passes in; a database with responders cannot be migrated
without it. The downgrade writes the numbers back in clear, with the same key.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""
import os

import sqlalchemy as sa
from alembic import context, op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

responders = sa.table('responders', sa.column('id', sa.Integer), sa.column('phone', sa.String),
                      sa.column('phone_enc', sa.Text), sa.column('phone_index', sa.String))


def _vault():
    """The Vault of the key the operator command passes in (or DATA_KEY): the migration refuses
    to guess, since a number encrypted under another key could never be read again."""
    from gateway.crypto import Vault

    key = context.config.attributes.get("data_key") or os.environ.get("DATA_KEY")
    if not key:
        raise RuntimeError("responders hold duty numbers to encrypt: run `flask --app gateway db-upgrade`, "
                           "which passes DATA_KEY (or the development key) to the migration")
    return Vault(key)


def upgrade() -> None:
    bind = op.get_bind()
    # Read, and find the key, before changing anything: SQLite's DDL is not undone by a rollback.
    rows = bind.execute(sa.select(responders.c.id, responders.c.phone)).all()
    vault = _vault() if rows else None
    with op.batch_alter_table('responders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
    for row_id, phone in rows:
        bind.execute(responders.update().where(responders.c.id == row_id)
                     .values(phone_enc=vault.encrypt(phone), phone_index=vault.blind_index(phone)))
    with op.batch_alter_table('responders', schema=None) as batch_op:
        if bind.dialect.name != 'sqlite':  # SQLite's copy of the table leaves out a constraint on a dropped column
            batch_op.drop_constraint('responders_agency_id_phone_key', type_='unique')
        batch_op.drop_column('phone')
        batch_op.alter_column('phone_enc', existing_type=sa.Text(), nullable=False)
        batch_op.alter_column('phone_index', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f('ix_responders_phone_index'), ['phone_index'], unique=False)
        batch_op.create_unique_constraint('uq_responders_agency_phone', ['agency_id', 'phone_index'])


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(responders.c.id, responders.c.phone_enc)).all()
    vault = _vault() if rows else None
    with op.batch_alter_table('responders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=20), nullable=True))
    for row_id, token in rows:
        bind.execute(responders.update().where(responders.c.id == row_id).values(phone=vault.decrypt(token)))
    with op.batch_alter_table('responders', schema=None) as batch_op:
        batch_op.drop_constraint('uq_responders_agency_phone', type_='unique')
        batch_op.drop_index(batch_op.f('ix_responders_phone_index'))
        batch_op.drop_column('phone_index')
        batch_op.drop_column('phone_enc')
        batch_op.alter_column('phone', existing_type=sa.String(length=20), nullable=False)
        batch_op.create_unique_constraint('responders_agency_id_phone_key', ['agency_id', 'phone'])
