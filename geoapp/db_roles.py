"""Least privilege in the database: what the app's role may do to geoapp's tables, in one place.

Two roles (scripts/provision.sh for development and tests, scripts/install-production for a city):
the *owner* owns the schema and runs the migrations; the *app* role, which every web worker and CLI
command connects as, may only read and write rows. It cannot change the schema (no DDL, no CREATE on
the schema), is no superuser (so no `COPY … TO PROGRAM`, no functions in untrusted languages) and
cannot rewrite history: the append-only tables take INSERT and SELECT only.

`grant_app_role` runs as the owner at the end of every migration run (migrations/env.py), so a new
table gets its grants in the same transaction that creates it.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

# Rows that are written once and never changed or removed by the app: the reports' history (the
# evidence of who did what, when) and the audit trail (geoapp/domain/audit.py). Old audit months
# leave only through the owner (`geoapp audit export`), never through the app's role.
APPEND_ONLY = ("report_events", "audit_log")
# Read by /readyz, written only by migrations; audit_anchor is written by the owner's export.
READ_ONLY = ("alembic_version", "audit_anchor")


def role_of(database_url: str) -> str | None:
    """The role a URL logs in as (None when it names none: libpq then uses the OS user)."""
    return make_url(database_url).username if database_url else None


def app_role_for(owner_url: str, app_url: str) -> str | None:
    """The app's role when it is not the owner itself (then there is nothing to grant)."""
    app, owner = role_of(app_url), role_of(owner_url)
    return app if app and app != owner else None


def _quote(conn: Connection, name: str) -> str:
    return conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one()


def grant_app_role(conn: Connection, app_role: str) -> None:
    """Give `app_role` exactly what the app needs on every table the connecting owner owns in the
    schema public, and nothing more. Idempotent: privileges are first revoked, then granted."""
    role = _quote(conn, app_role)
    conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
    # `parent`: the partitioned table a partition belongs to (audit_log's monthly partitions). A
    # partition is a table of its own, its privileges checked only when it is named directly: the app
    # gets none on it (a partition made later by `geoapp audit partitions` has none either), so it can
    # neither UPDATE nor DELETE an append-only table's rows by naming the month.
    tables = conn.execute(text(
        "SELECT quote_ident(c.relname), c.relname, p.relname FROM pg_class c "
        "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition "
        "LEFT JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') "
        "AND pg_get_userbyid(c.relowner) = current_user ORDER BY c.relname")).all()
    for quoted, name, parent in tables:
        conn.execute(text(f"REVOKE ALL ON {quoted} FROM {role}"))
        if parent is not None:
            continue  # rows are read and written through the parent, whose privileges are what count
        if name in READ_ONLY:
            privileges = "SELECT"
        elif name in APPEND_ONLY:
            privileges = "SELECT, INSERT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        conn.execute(text(f"GRANT {privileges} ON {quoted} TO {role}"))
    sequences = conn.execute(text(
        "SELECT quote_ident(c.relname) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) = current_user")).scalars().all()
    for quoted in sequences:
        conn.execute(text(f"GRANT USAGE, SELECT ON SEQUENCE {quoted} TO {role}"))
