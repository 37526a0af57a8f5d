"""The programme's statistics (geoapp/domain/stats.py): how long one GET /api/v1/stats takes, overall
and per grouping, on the demo's reports taken through the lifecycle, then with the same reports
copied N times (report_events and reports duplicated set-based: the figures' cost is the size of those
two tables). Prints figures; never passes or fails.

    bench/run stats [--copies 100]      (GEOAPP_BENCH_DB_NAME picks the database; default geoapp_bench)
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from zoneinfo import ZoneInfo

from sqlalchemy import text

from geoapp import create_app
from geoapp.config import Settings
from geoapp.demo import load_demo
from geoapp.domain import stats
from geoapp.domain.working_time import OfficeHours

from bench_db import fresh_city

BYS = (None, "unit", "street", "month", "class", "category", "item")


def _time(app, period, by, repeat=5) -> float:
    db, hours = app.extensions["geoapp_db"], OfficeHours.from_settings(app.config["GEOAPP"])
    runs = []
    for _ in range(repeat):
        with db.sessionmaker() as s:
            t0 = time.perf_counter()
            stats.compute(s, period, by, hours)
            runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1000


def _copy(app, copies: int) -> int:
    """Each report (and its events) copied `copies - 1` more times, with new ids and client ids."""
    db = app.extensions["geoapp_db"]
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE k AS SELECT generate_series(1, :n) AS k"), {"n": copies - 1})
        cols = [r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'reports' AND is_generated = 'NEVER' "
            "AND column_name NOT IN ('id', 'client_id', 'merged_into_id') ORDER BY ordinal_position"))]
        offset = conn.execute(text("SELECT max(id) FROM reports")).scalar_one()
        conn.execute(text(f"""
            INSERT INTO reports (id, client_id, {', '.join(cols)})
            SELECT r.id + k.k * :off, gen_random_uuid(), {', '.join('r.' + c for c in cols)}
            FROM reports r CROSS JOIN k WHERE r.status <> 'merged'"""), {"off": offset})
        ecols = [r[0] for r in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'report_events' "
            "AND column_name NOT IN ('id', 'report_id') ORDER BY ordinal_position"))]
        conn.execute(text(f"""
            INSERT INTO report_events (report_id, {', '.join(ecols)})
            SELECT e.report_id + k.k * :off, {', '.join('e.' + c for c in ecols)}
            FROM report_events e JOIN reports r ON r.id = e.report_id AND r.status <> 'merged' CROSS JOIN k"""),
                     {"off": offset})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE reports"))
        conn.execute(text("ANALYZE report_events"))
        return conn.execute(text("SELECT count(*) FROM reports")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=100)
    args = parser.parse_args()
    settings = Settings(database_url=os.environ["DATABASE_URL"])
    app = create_app(settings)
    with app.app_context():
        with fresh_city(app) as (session, users, _key):
            pass
        with app.extensions["geoapp_db"].transaction() as session:
            print(load_demo(session, settings))
    today = dt.datetime.now(ZoneInfo(settings.display_tz)).date()
    whole = stats.Period(today - dt.timedelta(days=200), today)
    month = stats.Period(today.replace(day=1), today)
    for label in ("demo (300 reports)",):
        print(label)
        for by in BYS:
            print(f"  by={by or '-':9s} programme {_time(app, whole, by):7.1f} ms   this month {_time(app, month, by):7.1f} ms")
    n = _copy(app, args.copies)
    events = app.extensions["geoapp_db"].engine.connect().execute(text("SELECT count(*) FROM report_events")).scalar_one()
    print(f"copied x{args.copies}: {n} reports, {events} events")
    for by in BYS:
        print(f"  by={by or '-':9s} programme {_time(app, whole, by, 3):7.1f} ms   this month {_time(app, month, by, 3):7.1f} ms")


if __name__ == "__main__":
    main()
