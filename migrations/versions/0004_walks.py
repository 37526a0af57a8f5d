"""Walks: the phone's GPS traces in chunks, and the stretches of street each one passed along
(walk_intervals, from_m..to_m along the street, the measure reports' position_m uses).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "walks",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("representative_id", sa.Integer, sa.ForeignKey("representatives.id")),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "walk_chunks",
        sa.Column("walk_id", UUID(as_uuid=True), sa.ForeignKey("walks.id"), primary_key=True),
        sa.Column("chunk_no", sa.Integer, primary_key=True),
        sa.Column("trace", Geometry("LINESTRING", srid=4326, spatial_index=False)),
        sa.Column("n_points", sa.Integer, nullable=False),
        sa.Column("n_kept", sa.Integer, nullable=False),
        sa.Column("dropped", JSONB, server_default="{}", nullable=False),
        sa.Column("chunk_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("chunk_no >= 0", name="walk_chunk_no"),
    )
    op.create_table(
        "walk_intervals",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("walk_id", UUID(as_uuid=True), nullable=False),
        sa.Column("chunk_no", sa.Integer, nullable=False),
        sa.Column("street_id", sa.Integer, sa.ForeignKey("streets.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("representative_id", sa.Integer, sa.ForeignKey("representatives.id")),
        sa.Column("from_m", sa.Double, nullable=False),
        sa.Column("to_m", sa.Double, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("0 <= from_m AND from_m <= to_m", name="walk_interval_measures"),
        sa.CheckConstraint("started_at <= ended_at", name="walk_interval_times"),
        sa.ForeignKeyConstraint(["walk_id", "chunk_no"], ["walk_chunks.walk_id", "walk_chunks.chunk_no"]),
    )
    op.create_index("walk_intervals_street_time", "walk_intervals", ["street_id", "started_at"])
    op.create_index("walk_intervals_user_time", "walk_intervals", ["user_id", "started_at"])


def downgrade() -> None:
    op.drop_table("walk_intervals")
    op.drop_table("walk_chunks")
    op.drop_table("walks")
