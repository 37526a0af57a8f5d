"""等保 2.0's password and session policy, kept by the security administrator, and a TOTP second factor.

- `security_policy`: exactly one row (id = 1), read by sign-in, password changes and every staff
  request (geoapp/domain/security_policy.py); written only through update_policy, which audits
  before/after. The row made here is a real deployment's starting point — passwords expire after
  90 days (GB/T 22239 asks for periodic change) — and `geoapp demo load` turns expiry off (0), so
  the published demo accounts are not sent to "change password" three months after a demo began.
  `updated_by` names the user (no foreign key: removing a user, or a test's TRUNCATE … CASCADE of
  users, must neither touch nor be blocked by the policy; the audit trail has the whole story).
- `password_history`: a user's earlier password hashes, newest first by set_at; a new password may
  not match the last N (the policy's password_history, counting the current one). Removed with the user.
- users.totp_secret: the base32 secret of the authenticator app; set while enrolling (pending)
  and after. users.totp_enabled_at: set once a code confirmed the enrolment; from then on sign-in
  asks for a code. users.totp_last_step: the 30-s time step of the last accepted code, so the same
  code (or an older one) is never accepted twice.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_policy",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False, server_default="1"),
        sa.Column("password_max_age_days", sa.Integer(), nullable=False, server_default="90"),
        sa.Column("password_history", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("lockout_failures", sa.Integer(), nullable=False, server_default="5"),
        sa.Column("lockout_minutes", sa.Integer(), nullable=False, server_default="30"),
        sa.Column("idle_timeout_minutes", sa.Integer(), nullable=False, server_default="30"),
        sa.Column("totp_required_for_administrators", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_by", sa.Integer()),
        # the ranges update_policy enforces, kept by the database too (one row, sane values)
        sa.CheckConstraint("id = 1", name="security_policy_one_row"),
        sa.CheckConstraint("password_max_age_days BETWEEN 0 AND 365", name="security_policy_max_age"),
        sa.CheckConstraint("password_history BETWEEN 0 AND 24", name="security_policy_history"),
        sa.CheckConstraint("lockout_failures BETWEEN 3 AND 20", name="security_policy_lockout_failures"),
        sa.CheckConstraint("lockout_minutes BETWEEN 1 AND 1440", name="security_policy_lockout_minutes"),
        sa.CheckConstraint("idle_timeout_minutes BETWEEN 5 AND 480", name="security_policy_idle_timeout"),
    )
    op.execute("INSERT INTO security_policy (id) VALUES (1)")
    op.create_table(
        "password_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("password_history_user_time", "password_history", ["user_id", "set_at"])
    op.add_column("users", sa.Column("totp_secret", sa.Text()))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger()))
    # a second factor in use has a secret; a code accepted belongs to one in use
    op.create_check_constraint("user_totp_enabled", "users", "totp_enabled_at IS NULL OR totp_secret IS NOT NULL")
    op.create_check_constraint("user_totp_step", "users", "totp_last_step IS NULL OR totp_enabled_at IS NOT NULL")


def downgrade() -> None:
    op.drop_constraint("user_totp_step", "users")
    op.drop_constraint("user_totp_enabled", "users")
    for column in ("totp_last_step", "totp_enabled_at", "totp_secret"):
        op.drop_column("users", column)
    op.drop_index("password_history_user_time", "password_history")
    op.drop_table("password_history")
    op.drop_table("security_policy")
