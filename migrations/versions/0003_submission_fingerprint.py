"""A report remembers a fingerprint of the submission that created it, so a replay of its client_id
with different content is refused (409 client_id_reused) while a true retry still gets the report.

Rows stored before this revision have no fingerprint; a replay of them is taken as a retry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("submission_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("reports", "submission_sha256")
