"""Photos as their own table: each report's photos, the original kept as evidence and a published,
watermarked copy.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("report_id", sa.BigInteger, sa.ForeignKey("reports.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), server_default="before", nullable=False),
        sa.Column("seq", sa.Integer, server_default="0", nullable=False),
        sa.Column("original_path", sa.Text),
        sa.Column("published_path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size_bytes", sa.Integer),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("taken_at", sa.DateTime(timezone=True)),
        sa.Column("taken_at_source", sa.String(16)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("kind IN ('before', 'progress', 'after')", name="photo_kind"),
        sa.CheckConstraint("taken_at_source IS NULL OR taken_at_source IN ('exif', 'received')",
                           name="photo_taken_at_source"),
        sa.UniqueConstraint("report_id", "kind", "seq", name="photo_report_kind_seq"),
    )
    # A report's one photo of before (already resized, metadata-free, no watermark) becomes its
    # published copy; there is no original to keep. The file stays where it is.
    op.execute("""
        INSERT INTO photos (report_id, kind, seq, original_path, published_path, created_at)
        SELECT id, 'before', 0, NULL, photo_path, created_at FROM reports WHERE photo_path IS NOT NULL
    """)
    op.drop_column("reports", "photo_path")


def downgrade() -> None:
    # Back to one photo a report: the first photo of before, by its published copy (an original is
    # not something the old schema knew); any others are forgotten (their files stay for the sweep).
    op.add_column("reports", sa.Column("photo_path", sa.Text))
    op.execute("""
        UPDATE reports r SET photo_path = p.published_path
        FROM photos p WHERE p.report_id = r.id AND p.kind = 'before' AND p.seq = 0
    """)
    op.drop_table("photos")
