"""Drop ix_reports_status_created: the same index as reports_status_created (status, created_at),
made twice (0001 and 0006), so every report insert and status change paid for it twice. Found by
tests/test_schema_agreement.py, which compares models.py with the migrated database.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_reports_status_created")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_reports_status_created ON reports (status, created_at)")
