"""The app's database role may read and write rows, and nothing else (geoapp/db_roles.py).

Run as the app runs: connected with TEST_DATABASE_URL (scripts/test: geoapp_app), against the schema the
owner migrated. Each statement is tried in a transaction of its own and must be refused by PostgreSQL.
"""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from geoapp.db_roles import APPEND_ONLY, app_role_for


@pytest.fixture
def app_role(database_url, owner_database_url):
    role = app_role_for(owner_database_url, database_url)
    if role is None:
        pytest.skip("TEST_DATABASE_URL and TEST_OWNER_DATABASE_URL are one role here (scripts/test makes two)")
    return role


@pytest.fixture
def one_user(db):
    with db.engine.begin() as conn:
        user = conn.execute(text("INSERT INTO users (username, display_name, role, password_hash) "
                                 "VALUES ('lp_dispatcher', 'lp', 'dispatcher', 'x') RETURNING id")).scalar_one()
    return user


REFUSED = {
    "DROP TABLE": "DROP TABLE reports CASCADE",
    "ALTER TABLE": "ALTER TABLE users ADD COLUMN sneaky text",
    "TRUNCATE": "TRUNCATE report_events",
    "CREATE TABLE": "CREATE TABLE public.mine (x int)",
    "CREATE FUNCTION": "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "COPY TO PROGRAM": "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY FROM FILE": "COPY users (username) FROM '/etc/passwd'",
    "CREATE ROLE": "CREATE ROLE intruder SUPERUSER",
    "ALTER own role": "ALTER ROLE CURRENT_USER SUPERUSER",
    "UPDATE an event": "UPDATE report_events SET data = '{}'::jsonb",
    "DELETE an event": "DELETE FROM report_events",
    "UPDATE the schema version": "UPDATE alembic_version SET version_num = 'x'",
    "CREATE EXTENSION": "CREATE EXTENSION IF NOT EXISTS dblink",
}


@pytest.mark.parametrize("what", sorted(REFUSED))
def test_the_app_role_is_refused(db, app_role, what):
    with db.engine.connect() as conn:
        with pytest.raises(DBAPIError) as refused:
            with conn.begin():
                conn.execute(text(REFUSED[what]))
    # refused for lack of privilege (42501), or for not being a superuser/owner, never "no such thing"
    assert refused.value.orig.pgcode in ("42501",), (what, refused.value.orig.pgerror)


def test_the_app_role_reads_and_writes_rows_and_appends_events(db, app_role, one_user):
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == app_role
        flags = conn.execute(text("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                                  "FROM pg_roles WHERE rolname = current_user")).one()
        assert not any(flags)
        conn.execute(text("UPDATE users SET display_name = 'changed' WHERE id = :u"), {"u": one_user})
        # INSERT and SELECT on the append-only tables, nothing else
        for table in APPEND_ONLY:
            privileges = {p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
                          if conn.execute(text("SELECT has_table_privilege(:t, :p)"), {"t": table, "p": p}).scalar()}
            assert privileges == {"SELECT", "INSERT"}, table
        assert not conn.execute(text("SELECT has_schema_privilege('public', 'CREATE')")).scalar()
        assert not conn.execute(text("SELECT has_database_privilege(current_database(), 'CREATE')")).scalar()


def test_a_grant_by_the_app_role_gives_nothing(db, app_role):
    """The app holds no grant option: GRANT is only a warning, and PUBLIC still cannot read users."""
    with db.engine.begin() as conn:
        conn.execute(text("GRANT ALL ON users TO PUBLIC"))
        public = conn.execute(text("SELECT count(*) FROM pg_class, aclexplode(relacl) a "
                                   "WHERE relname = 'users' AND a.grantee = 0")).scalar_one()
    assert public == 0


def test_every_table_of_the_owner_is_granted_to_the_app(db, app_role, owner_db):
    """A table a migration adds gets its grants from the same run: none is left unreadable. (The
    partitions of a partitioned table are reached through it: they get nothing of their own.)"""
    with owner_db.engine.connect() as conn:
        tables = conn.execute(text("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                   "AND relkind IN ('r', 'p') AND NOT relispartition "
                                   "AND pg_get_userbyid(relowner) = current_user")).scalars().all()
    assert len(tables) > 10
    with db.engine.connect() as conn:
        unreadable = [t for t in tables
                      if not conn.execute(text("SELECT has_table_privilege(:t, 'SELECT')"), {"t": t}).scalar()]
    assert unreadable == []


def test_no_login_without_the_password(database_url, app_role):
    """No `trust`: the socket and loopback both ask for the role's password (scram-sha-256)."""
    url = make_url(database_url)
    for host in filter(None, (url.query.get("host"), "127.0.0.1")):
        params = dict(dbname=url.database, user="geoapp_app", host=host, port=url.query.get("port") or url.port,
                      connect_timeout=5)
        with pytest.raises(psycopg2.OperationalError) as refused:
            psycopg2.connect(**params).close()
        assert "password" in str(refused.value), (host, str(refused.value))
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(**params, password="wrong").close()
    for superuser in ("postgres", "geoapp"):  # the superuser is for the cluster's own OS user, by peer only
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(dbname=url.database, user=superuser, host="127.0.0.1",
                             port=url.query.get("port") or url.port, connect_timeout=5).close()
