"""case: index (category, lat) for the grid worker's "already reported nearby?" check

``hub.services.reports.nearby_open_cases`` asks for open cases of a few categories in a 200 m
box. With only ``category`` indexed, a common category at 1 M cases means scanning its tens of
thousands of rows for every tap on the phone; with ``(category, lat)`` the box's latitude band
bounds the scan.

Revision ID: f3b8d2c6a915
Revises: e64abac001e8
Create Date: 2026-12-07 19:40:00
"""
from alembic import op


revision = 'f3b8d2c6a915'
down_revision = 'e64abac001e8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.create_index('ix_case_category_lat', ['category', 'lat'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case', schema=None) as batch_op:
        batch_op.drop_index('ix_case_category_lat')
