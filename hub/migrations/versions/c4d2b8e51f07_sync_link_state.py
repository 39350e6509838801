"""sync: per-(case, ticket) link state, what the hub last wrote (echo suppression)

Revision ID: c4d2b8e51f07
Revises: a7c3e1d90b42
Create Date: 2026-11-24 10:00:00
"""
from alembic import op
import sqlalchemy as sa
import hub.models.base


revision = 'c4d2b8e51f07'
down_revision = 'a7c3e1d90b42'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('system_key', sa.String(length=64), nullable=False),
    sa.Column('last_written_status', sa.String(length=32), nullable=False),
    sa.Column('last_written_action', sa.String(length=32), nullable=False),
    sa.Column('last_written_args', sa.JSON(), nullable=False),
    sa.Column('last_message_id', sa.Integer(), nullable=True),
    sa.Column('last_written_at', hub.models.base.UTCDateTime(), nullable=True),
    sa.Column('echo_seen_status', sa.String(length=32), nullable=False),
    sa.Column('updated_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_sync_link_case_id_case')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_sync_link_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_link')),
    sa.UniqueConstraint('case_id', 'ticket_id', name=op.f('uq_sync_link_case_id_ticket_id'))
    )
    with op.batch_alter_table('sync_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_link_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_link_ticket_id'), ['ticket_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sync_link_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_sync_link_case_id'))
    op.drop_table('sync_link')
