"""The sign-in limits' counts in PostgreSQL (table rate_limits, migration 0011): one store that every
gunicorn worker (and every app host) shares, replicated to the standby with everything else, with no
extra service to install, secure and back up. A `limits` storage, registered as the scheme
`database://` ("the app's own database"), so Flask-Limiter uses it like memory:// or redis://.

Fixed windows, as the sign-in throttle counts them (geoapp/web/auth.py): a key's count and the end of
its window; one `INSERT … ON CONFLICT … DO UPDATE` adds to it atomically, starting a new window when
the old one has ended. The database's clock decides, so every worker agrees. Each call takes its own
short autocommit connection from the app's pool: a failed sign-in stays counted even when the
request's own transaction rolls back, and no counter row stays locked beyond its one statement.
Rows of ended windows are removed a few at a time by the writes (at most CLEANUP_BATCH per write),
so the table holds roughly the keys that failed within one window.
"""
from __future__ import annotations

import time

from limits.storage import Storage
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

SCHEME = "database"
CLEANUP_BATCH = 100

_INCR = text("""
    INSERT INTO rate_limits AS r (key, count, expires_at)
    VALUES (:key, :amount, clock_timestamp() + make_interval(secs => :expiry))
    ON CONFLICT (key) DO UPDATE SET
      count = CASE WHEN r.expires_at <= clock_timestamp() THEN EXCLUDED.count ELSE r.count + EXCLUDED.count END,
      expires_at = CASE WHEN r.expires_at <= clock_timestamp() THEN EXCLUDED.expires_at ELSE r.expires_at END
    RETURNING count""")
_CLEANUP = text("""
    DELETE FROM rate_limits WHERE key IN (
      SELECT key FROM rate_limits WHERE expires_at <= clock_timestamp()
      ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED)""")


class DatabaseStorage(Storage):
    """`limits` storage on the app's PostgreSQL (fixed-window strategy only). Built by
    Flask-Limiter from `storage_uri="database://"` with `storage_options={"engine": engine}`."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine, **options):
        self.engine = engine
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    def _run(self, statement, **params):
        """The statement's first value (or its row count), read before the connection goes back."""
        # autocommit: each statement is its own transaction, apart from the request's
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            result = conn.execute(statement, params)
            return result.scalar() if result.returns_rows else result.rowcount

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            count = conn.execute(_INCR, {"key": key, "amount": amount, "expiry": float(expiry)}).scalar_one()
            conn.execute(_CLEANUP, {"n": CLEANUP_BATCH})
        return count

    def get(self, key: str) -> int:
        return self._run(text("SELECT count FROM rate_limits WHERE key = :key AND expires_at > clock_timestamp()"),
                         key=key) or 0

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (epoch seconds); now if it has none (as memory:// answers)."""
        at = self._run(text("SELECT extract(epoch FROM expires_at)::float8 FROM rate_limits "
                            "WHERE key = :key AND expires_at > clock_timestamp()"), key=key)
        return at if at is not None else time.time()

    def check(self) -> bool:
        try:
            self._run(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        return self._run(text("DELETE FROM rate_limits"))

    def clear(self, key: str) -> None:
        self._run(text("DELETE FROM rate_limits WHERE key = :key"), key=key)


def limiter_storage(uri: str, engine: Engine) -> tuple[str, dict]:
    """Flask-Limiter's (storage_uri, storage_options) for RATELIMIT_STORAGE_URI: `database` (the
    default) or `database://` is this store on `engine`; anything else (memory://, redis://…) is
    passed to `limits` as it is."""
    if uri.rstrip(":/") == SCHEME:
        return f"{SCHEME}://", {"engine": engine}
    return uri, {}
