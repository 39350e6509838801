"""dedup: index point_key with address_key (the shared-point check reads only the index)

The centroid check asks for the distinct addresses pinned on one point. With ``point_key``
alone PostgreSQL visits every ticket ever pinned on a street centroid, so the check slows as the
store grows; with ``(point_key, address_key)`` it is an index-only scan that stops after five.

Revision ID: a7c3e1d90b42
Revises: 955db5afa0ce
Create Date: 2026-11-23 19:40:00
"""
from alembic import op


revision = 'a7c3e1d90b42'
down_revision = '955db5afa0ce'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('dedup_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dedup_entry_point_key'))
        batch_op.create_index('ix_dedup_entry_point_address', ['point_key', 'address_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dedup_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_dedup_entry_point_address')
        batch_op.create_index(batch_op.f('ix_dedup_entry_point_key'), ['point_key'], unique=False)
