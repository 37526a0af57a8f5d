"""Administration ([6] item 2): accounts that can be disabled or expire on a date, and units with their
contacts and an active flag, kept by the system administrator's pages (/admin) and the CLI through
the same core functions (geoapp/core/administration.py).

- users.disabled_at: set, the account cannot sign in, and its sessions and API key stop working at
  the next request (geoapp/domain/accounts.py); cleared, it works again. Nothing is deleted: the
  account's reports and its audit rows keep their actor.
- users.expires_at: from then on the account is refused as if disabled. The administrator gives a
  day; the core stores the start of that day in the city's time zone, so the check needs no zone.
- units.contact_name / phone / email: whom the dispatcher calls; e-mail is where the unit's
  notifications go when no handler has one. units.active: an inactive unit is not offered for
  dispatch (its reports stay as they are). The city data loader (gis_data/units.csv) keeps names
  and kinds; these columns belong to the administrator and a reload leaves them alone.
- street_handovers: a street's representative changes on a date (the seat, representatives, stays;
  the person, a user, changes). The previous holder's account expires at the start of that day;
  their reports keep their reporter and still count for the street (coverage and quotas count every
  account that held the seat: geoapp/domain/coverage.py reads the seat's users).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("disabled_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.add_column("units", sa.Column("contact_name", sa.Text()))
    op.add_column("units", sa.Column("phone", sa.Text()))
    op.add_column("units", sa.Column("email", sa.Text()))
    op.add_column("units", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "street_handovers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("street_id", sa.Integer(), sa.ForeignKey("streets.id"), nullable=False),
        sa.Column("representative_id", sa.Integer(), sa.ForeignKey("representatives.id"), nullable=False),
        sa.Column("from_user_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("to_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("by_user_id", sa.Integer()),
        sa.Column("by", sa.Text(), nullable=False),
    )
    op.create_index("street_handovers_street", "street_handovers", ["street_id", "on_date"])


def downgrade() -> None:
    op.drop_table("street_handovers")
    for column in ("active", "email", "phone", "contact_name"):
        op.drop_column("units", column)
    op.drop_column("users", "expires_at")
    op.drop_column("users", "disabled_at")
