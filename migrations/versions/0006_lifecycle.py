"""The handling lifecycle ([3]): the report's states, optimistic locking, deadlines, cooperating units,
merging, the ledger, verification, the album flag, and the in-app inbox (with its e-mail outbox).

The state list is written out here, not imported: a migration is a fixed point in time, and the
vocabulary will grow again with a later migration.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUSES = ("submitted", "accepted", "rejected", "merged", "dispatched", "unit_accepted", "in_progress",
            "handled", "verified", "closed", "returned", "reopened", "ledger", "void")
RUNNING = ("dispatched", "unit_accepted", "in_progress", "reopened")


def _in(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.drop_constraint("report_status", "reports", type_="check")
    op.create_check_constraint("report_status", "reports", f"status IN ({_in(STATUSES)})")
    add = lambda *cols: [op.add_column("reports", c) for c in cols]  # noqa: E731
    add(
        # optimistic locking: every change names the version it saw and raises it by one
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("handled_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("merged_into_id", sa.BigInteger, sa.ForeignKey("reports.id")),
        sa.Column("album", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("ledger_promised_on", sa.Date),
        sa.Column("extension_requested_until", sa.DateTime(timezone=True)),
        sa.Column("extension_reason", sa.Text),
        sa.Column("reply_rating", sa.SmallInteger),
        sa.Column("result_rating", sa.SmallInteger),
        sa.Column("verify_comment", sa.Text),
    )
    op.create_check_constraint("report_ratings", "reports",
                               "(reply_rating IS NULL OR reply_rating BETWEEN 1 AND 5) AND "
                               "(result_rating IS NULL OR result_rating BETWEEN 1 AND 5)")
    op.create_check_constraint("report_merged", "reports",
                               "(status = 'merged') = (merged_into_id IS NOT NULL) AND merged_into_id <> id")
    op.create_check_constraint("report_ledger", "reports",
                               "status <> 'ledger' OR ledger_promised_on IS NOT NULL")
    op.create_index("reports_merged_into", "reports", ["merged_into_id"],
                    postgresql_where=sa.text("merged_into_id IS NOT NULL"))
    # the work queues and the overdue list read reports by status (and by unit)
    op.create_index("reports_status_created", "reports", ["status", "created_at"])
    op.create_index("reports_unit_status", "reports", ["unit_id", "status"])
    op.create_index("reports_running_deadline", "reports", ["deadline_at"],
                    postgresql_where=sa.text(f"status IN ({_in(RUNNING)})"))

    op.create_table(
        "report_units",  # cooperating units (协办单位); the lead unit is reports.unit_id
        sa.Column("report_id", sa.BigInteger, sa.ForeignKey("reports.id"), primary_key=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("units.id"), primary_key=True),
    )
    op.create_index("report_units_unit", "report_units", ["unit_id"])

    # a feedback's photos belong to the event that brought them (progress, after)
    op.add_column("photos", sa.Column("event_id", sa.BigInteger, sa.ForeignKey("report_events.id")))

    op.add_column("users", sa.Column("email", sa.Text))

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("report_id", sa.BigInteger, sa.ForeignKey("reports.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", JSONB, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        # the outbox: a sender (SMTP, later a WeChat Work webhook) marks what it delivered
        sa.Column("emailed_at", sa.DateTime(timezone=True)),
        sa.Column("email_error", sa.Text),
        # "once per occasion" (e.g. overdue: once per report, user and deadline)
        sa.Column("dedupe_key", sa.Text, unique=True),
    )
    op.create_index("notifications_user_unread", "notifications", ["user_id", "created_at"],
                    postgresql_where=sa.text("read_at IS NULL"))
    op.create_index("notifications_user_time", "notifications", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_column("users", "email")
    op.drop_column("photos", "event_id")
    op.drop_table("report_units")
    for name in ("reports_running_deadline", "reports_unit_status", "reports_status_created", "reports_merged_into"):
        op.drop_index(name, "reports")
    for name in ("report_ledger", "report_merged", "report_ratings"):
        op.drop_constraint(name, "reports", type_="check")
    for col in ("verify_comment", "result_rating", "reply_rating", "extension_reason", "extension_requested_until",
                "ledger_promised_on", "album", "merged_into_id", "closed_at", "handled_at", "dispatched_at",
                "deadline_at", "version"):
        op.drop_column("reports", col)
    # a report further along than "submitted" cannot be described by the old schema
    op.execute("UPDATE reports SET status = 'submitted' WHERE status <> 'submitted'")
    op.drop_constraint("report_status", "reports", type_="check")
    op.create_check_constraint("report_status", "reports", "status IN ('submitted')")
