"""Accounts: revocable sessions and forced password changes.

- users.session_version: stored in every signed-in session (web/auth.py); sign-out and a password
  change raise it, so every session signed in before (and any copy of its cookie) stops working.
- users.must_change_password: set for an account whose password someone else chose (the first
  admin's one-time password); every page sends that user to /account/password until it is changed.
- users.password_changed_at: when the password was last set (NULL: never, or before this revision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("users", sa.Column("session_version", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(),
                                     nullable=False))
    op.add_column("users", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "password_changed_at")
    op.drop_column("users", "must_change_password")
    op.drop_column("users", "session_version")
