"""ticket: index (system_type, external_id) for explicit cross-references; case: index merged_into_id

A reference names another system by its *type* (a 数字城管 ``externalNo`` is a 12345 order
number, a police ``YJDW`` hand-over names the receiving department's record), so ingestion and
the matchers ask "which case holds the <type> record <id>?" for every referenced ticket
(``hub.services.cases.StoreFinder.case_of_external``). Only ``(system_key, external_id)`` was
indexed: each such question scanned the whole ticket table (1.4 ms at 12,000 tickets, linear in
the store).

A case's photos include those of the cases merged into it (``hub.services.reports.case_photos``,
on every case page): ``merged_into_id`` was not indexed, so that look-up scanned every case.

Revision ID: a7d3e9c1f204
Revises: f3b8d2c6a915
Create Date: 2026-12-08 00:40:00
"""
from alembic import op


revision = 'a7d3e9c1f204'
down_revision = 'f3b8d2c6a915'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_type_external', ['system_type', 'external_id'], unique=False)
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.create_index('ix_case_merged_into', ['merged_into_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_merged_into')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_type_external')
