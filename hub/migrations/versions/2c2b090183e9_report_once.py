"""report once: task list, working calendar, grid reports, attachments, notifications, case clock

Revision ID: 2c2b090183e9
Revises: e1a7c4f9b3d2
Create Date: 2026-11-23 23:10:07.098810
"""
from alembic import op
import sqlalchemy as sa
import hub.models.base


revision = '2c2b090183e9'
down_revision = 'e1a7c4f9b3d2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('updated_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_day'))
    )
    op.create_table('task_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('area', sa.String(length=32), nullable=False),
    sa.Column('handler', sa.String(length=64), nullable=False),
    sa.Column('department', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('onsite_limit', sa.String(length=16), nullable=False),
    sa.Column('handling_limit', sa.String(length=16), nullable=False),
    sa.Column('self_handling', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('updated_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_item')),
    sa.UniqueConstraint('category', name=op.f('uq_task_item_category'))
    )
    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.Column('read_at', hub.models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_notification_case_id_case')),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], name=op.f('fk_notification_user_id_app_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
    sa.UniqueConstraint('user_id', 'key', name='uq_notification_user_key')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_user_unread', ['user_id', 'read_at'], unique=False)

    op.create_table('grid_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lng', sa.Float(), nullable=False),
    sa.Column('location_source', sa.String(length=16), nullable=False),
    sa.Column('grid_code', sa.String(length=32), nullable=False),
    sa.Column('attach_to', sa.String(length=32), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_grid_report_case_id_case')),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_event.id'], name=op.f('fk_grid_report_inbound_id_inbound_event')),
    sa.ForeignKeyConstraint(['reporter_id'], ['app_user.id'], name=op.f('fk_grid_report_reporter_id_app_user')),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_grid_report_ticket_id_ticket')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_report')),
    sa.UniqueConstraint('reporter_id', 'client_id', name='uq_grid_report_client')
    )
    with op.batch_alter_table('grid_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_report_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grid_report_grid_code'), ['grid_code'], unique=False)
        batch_op.create_index('ix_grid_report_reporter_created', ['reporter_id', 'created_at'], unique=False)

    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('created_at', hub.models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['case.id'], name=op.f('fk_attachment_case_id_case')),
    sa.ForeignKeyConstraint(['report_id'], ['grid_report.id'], name=op.f('fk_attachment_report_id_grid_report')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachment'))
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_report_id'), ['report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_sha256'), ['sha256'], unique=False)

    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.add_column(sa.Column('task_category', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('handling_mode', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('level', sa.String(length=16), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('onsite_due_at', hub.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('due_at', hub.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('clock_started_at', hub.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('clock_paused_at', hub.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalations', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_case_due', ['due_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_due')
        batch_op.drop_column('escalations')
        batch_op.drop_column('clock_paused_at')
        batch_op.drop_column('clock_started_at')
        batch_op.drop_column('due_at')
        batch_op.drop_column('onsite_due_at')
        batch_op.drop_column('level')
        batch_op.drop_column('handling_mode')
        batch_op.drop_column('task_category')

    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_sha256'))
        batch_op.drop_index(batch_op.f('ix_attachment_report_id'))
        batch_op.drop_index(batch_op.f('ix_attachment_case_id'))

    op.drop_table('attachment')
    with op.batch_alter_table('grid_report', schema=None) as batch_op:
        batch_op.drop_index('ix_grid_report_reporter_created')
        batch_op.drop_index(batch_op.f('ix_grid_report_grid_code'))
        batch_op.drop_index(batch_op.f('ix_grid_report_case_id'))

    op.drop_table('grid_report')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_user_unread')

    op.drop_table('notification')
    op.drop_table('task_item')
    op.drop_table('calendar_day')
