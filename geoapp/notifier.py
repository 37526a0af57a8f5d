"""One notification sender, however many processes run one: each round of the background work
(domain/notifications.run: the overdue sweep, then the e-mail outbox) is taken under a PostgreSQL
advisory lock, so a round that finds another runner's round in progress skips instead of sending.

The lock saves the duplicate work; it is not what keeps a message from going out twice. That is the
outbox's own locking: deliver_pending takes its rows FOR UPDATE SKIP LOCKED and marks each sent one
in the same transaction, so a second runner (the lock lost with a dropped connection, or `geoapp
notify run` from cron beside the loop) skips the rows in flight and, once they are committed, no
longer selects them. What remains is the mail server's own at-least-once: a message handed to SMTP
whose mark then fails to commit (the database gone at that moment) is sent again next round.

`geoapp notify loop` (the production install supervises it as its own process) and `geoapp serve`'s
thread both run `run_rounds`; `geoapp notify run` runs one guarded round.
"""
from __future__ import annotations

import logging
import threading

from sqlalchemy import text

log = logging.getLogger("geoapp.notify")

# pg_try_advisory_lock's key for "a notification round is running" (any bigint unique to this use
# within the database; these are the bytes of "geonotif")
ROUND_LOCK = 0x67656F6E6F746966


def run_round(db, settings) -> dict[str, int] | None:
    """One round under the advisory lock: its counts, or None if another runner's round holds it.
    The lock lives on a connection of its own, held for the round (which commits twice) and dropped
    with it: a runner that dies mid-round leaves no lock behind."""
    from .domain.notifications import run

    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ROUND_LOCK}).scalar_one():
            return None
        try:
            return run(db, settings)
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ROUND_LOCK})
            except Exception:  # noqa: BLE001 - the connection is gone, and the lock with it
                conn.invalidate()


def run_rounds(app, interval_s: float, stop: threading.Event, *, first_at_once: bool) -> None:
    """Rounds every `interval_s` seconds until `stop` is set (checked between rounds: a round in
    progress finishes). A failing round is logged and the next one tries again."""
    db = app.extensions["geoapp_db"]
    if not first_at_once and stop.wait(interval_s):
        return
    while True:
        try:
            with app.app_context():
                counts = run_round(db, app.config["GEOAPP"])
            if counts is None:
                log.info("notify: another sender's round is running; skipped")
            elif any(counts.values()):
                log.info("notify: %s", counts)
        except Exception:  # the database restarting, say: the next round tries again
            log.exception("notify: round failed")
        if stop.wait(interval_s):
            return
