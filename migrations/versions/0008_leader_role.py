"""The leader role (领导): reads every report and the programme's results, acts on none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BEFORE = ("representative", "dispatcher", "unit_handler", "admin")
AFTER = BEFORE + ("leader",)  # geoapp.domain.vocabulary.USER_ROLES as of this revision


def _roles(values) -> str:
    return "role IN (" + ", ".join(repr(v) for v in values) + ")"


def upgrade() -> None:
    op.drop_constraint("user_role", "users", type_="check")
    op.create_check_constraint("user_role", "users", _roles(AFTER))


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role = 'leader'")
    op.drop_constraint("user_role", "users", type_="check")
    op.create_check_constraint("user_role", "users", _roles(BEFORE))
