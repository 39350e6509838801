"""outbound: the record a create effect made (external_ref); per-system circuit breaker

Revision ID: d5e9f3a1c2b8
Revises: c4d2b8e51f07
Create Date: 2026-11-23 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import hub.models.base


revision = 'd5e9f3a1c2b8'
down_revision = 'c4d2b8e51f07'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ref', sa.String(length=128), nullable=False, server_default=''))
    op.create_table('circuit_breaker',
    sa.Column('system_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('trips', sa.Integer(), nullable=False),
    sa.Column('opened_at', hub.models.base.UTCDateTime(), nullable=True),
    sa.Column('retry_at', hub.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('needs_reconcile', sa.Boolean(), nullable=False),
    sa.Column('updated_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('system_key', name=op.f('pk_circuit_breaker'))
    )


def downgrade() -> None:
    op.drop_table('circuit_breaker')
    with op.batch_alter_table('outbound_message', schema=None) as batch_op:
        batch_op.drop_column('external_ref')
