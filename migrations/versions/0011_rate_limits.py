"""Sign-in limits shared by every worker: the fixed-window counts of geoapp/ratelimit_store.py.

`rate_limits`: one row per limited key (a username's or a client address's failed sign-ins), its
count in the current window and when that window ends. Written with INSERT … ON CONFLICT … DO UPDATE
in autocommit, so several gunicorn workers count into the same row; rows of ended windows are
removed a few at a time by later writes (the index on expires_at finds them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE rate_limits (
      key text PRIMARY KEY,
      count integer NOT NULL CHECK (count >= 0),
      expires_at timestamptz NOT NULL
    )""")
    op.execute("CREATE INDEX rate_limits_expires_at ON rate_limits (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE rate_limits")
