"""The bimonthly album: issued albums and their entries, stored as issued.

`albums`: one row per issued album (第N期), numbered in the order issued; its period is two whole
months and no two periods overlap (an EXCLUDE constraint, so two concurrent issues cannot both
win). `album_entries`: the problems as printed (a JSONB snapshot each); a report is in one album at
most. The PDF itself is a file under PHOTO_DIR/albums, named by its SHA-256 (stored here).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE albums (
      id serial PRIMARY KEY,
      number integer NOT NULL UNIQUE CONSTRAINT album_number CHECK (number >= 1),
      period_from date NOT NULL UNIQUE,
      period_to date NOT NULL,
      issued_at timestamptz NOT NULL DEFAULT now(),
      issued_by_id integer NOT NULL REFERENCES users(id),
      n_entries integer NOT NULL,
      summary jsonb NOT NULL,
      pdf_path text NOT NULL,
      pdf_sha256 varchar(64) NOT NULL,
      pdf_size integer NOT NULL,
      pdf_pages integer NOT NULL,
      CONSTRAINT album_period CHECK (period_from < period_to),
      CONSTRAINT album_periods_disjoint EXCLUDE USING gist (daterange(period_from, period_to, '[]') WITH &&)
    );
    CREATE TABLE album_entries (
      album_id integer NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
      no integer NOT NULL,
      report_id bigint NOT NULL UNIQUE REFERENCES reports(id),
      class_code varchar(32) NOT NULL,
      data jsonb NOT NULL,
      PRIMARY KEY (album_id, no)
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE album_entries; DROP TABLE albums;")
