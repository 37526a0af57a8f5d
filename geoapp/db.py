"""Engine and session handling; the one place that knows the store is PostgreSQL."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    if not url.startswith("postgresql"):
        raise RuntimeError(
            "DATABASE_URL must point at a PostgreSQL/PostGIS server (got %r); "
            "scripts/serve provisions one" % (url.split("@")[-1] if url else "nothing")
        )
    if url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy 2.1 defaults to psycopg 3; the project uses psycopg2
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    engine = create_engine(
        url, pool_pre_ping=True,
        # a server that does not answer is reported (503) within seconds, not after the OS gives up
        connect_args={"connect_timeout": 5},
    )

    @event.listens_for(engine, "connect")
    def _utc(dbapi_conn, _record):  # timestamps are stored and compared in UTC
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")

    return engine


class Database:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back on any exception."""
        session = self.sessionmaker()
        try:
            with session.begin():
                yield session
        finally:
            close_quietly(session)

    def dispose(self) -> None:
        self.engine.dispose()


def close_quietly(session: Session) -> None:
    """Close a session whose connection may be dead (the server went away mid-request): the
    request's own answer (a 503, or the committed report) must not be replaced by this error."""
    try:
        session.close()
    except Exception as exc:  # noqa: BLE001 - closing is cleanup; the connection is discarded anyway
        log.warning("closing a database session failed: %s", exc)


def sibling_database(url: str, name: str) -> str:
    """The URL of database `name` on the same server as `url`, created if missing (for tests and
    benchmarks next to a server the operator chose, without touching the database in `url`)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def alembic_config(database_url: str, app_role: str | None = None):
    """Migrations run on `database_url` (the owner's); `app_role`, when given, is granted its rows'
    privileges afterwards (geoapp/db_roles.py)."""
    from alembic.config import Config

    cfg = Config()
    from .config import PROJECT_ROOT

    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["app_role"] = app_role
    return cfg
