"""Coverage per road at 1,000,000 reports and 10,000 walks over the 29 streets: the whole city for a
month and for a year, one street for a month and for a year — the domain's statement alone, and the
API answer (GET /api/v1/coverage, JSON and all). Figures are printed, never asserted:

    bench/run coverage [--reports 1000000] [--walks 10000] [--repeat 9]

Reports are generated in SQL as bench/console_map.py does (two years, each street's representative);
walks likewise: 85 % by the street's representative along a random stretch of it, the rest by another
representative, each one walk row, one chunk and one interval, spread over the same two years.
The triggers that keep report_cells and coverage_marks are off during the load; both are recounted
once at the end, as a bulk load does.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_db import fresh_city  # noqa: E402
from console_map import generate_reports  # noqa: E402


def generate_walks(conn, n: int) -> None:
    conn.execute(text("SELECT setseed(0.17)"))
    conn.execute(text("""
        CREATE TEMP TABLE _w ON COMMIT DROP AS
        SELECT g, gen_random_uuid() AS id, s.id AS street_id, s.length_m,
               CASE WHEN random() < 0.85 THEN own.user_id ELSE other.user_id END AS user_id,
               random() AS f0, 0.05 + random() * 0.6 AS span,
               now() - random() * interval '730 days' AS started
        FROM generate_series(1, :n) g
        JOIN LATERAL (SELECT id, length_m FROM streets ORDER BY id OFFSET (g % 29) LIMIT 1) s ON true
        JOIN LATERAL (SELECT u.id AS user_id FROM users u JOIN representatives r ON r.id = u.representative_id
                      WHERE r.street_id = s.id LIMIT 1) own ON true
        JOIN LATERAL (SELECT u.id AS user_id FROM users u JOIN representatives r ON r.id = u.representative_id
                      WHERE r.street_id <> s.id ORDER BY r.id OFFSET (g % 28) LIMIT 1) other ON true;
        INSERT INTO walks (id, user_id, representative_id, started_at, ended_at)
        SELECT w.id, w.user_id, u.representative_id, w.started, w.started + interval '40 minutes'
        FROM _w w JOIN users u ON u.id = w.user_id;
        INSERT INTO walk_chunks (walk_id, chunk_no, trace, n_points, n_kept, chunk_sha256)
        SELECT id, 0, NULL, 480, 480, md5(id::text) FROM _w;
        INSERT INTO walk_intervals (walk_id, chunk_no, street_id, user_id, representative_id, from_m, to_m,
                                    started_at, ended_at)
        SELECT w.id, 0, w.street_id, w.user_id, u.representative_id,
               least(w.f0, 1 - w.span) * w.length_m, (least(w.f0, 1 - w.span) + w.span) * w.length_m,
               w.started, w.started + interval '40 minutes'
        FROM _w w JOIN users u ON u.id = w.user_id;
    """), {"n": n})


def load(app, db, args) -> None:
    with fresh_city(app):
        pass
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE reports DISABLE TRIGGER coverage_marks_sync"))
        generate_reports(conn, args.reports)
        conn.execute(text("ALTER TABLE reports ENABLE TRIGGER coverage_marks_sync"))
        conn.execute(text("SELECT coverage_marks_rebuild()"))
        generate_walks(conn, args.walks)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("reports", "coverage_marks", "walk_intervals", "report_cells"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=1_000_000)
    ap.add_argument("--walks", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--reuse", action="store_true", help="measure the data a previous run left (no new load)")
    args = ap.parse_args()

    from geoapp import create_app
    from geoapp.config import Settings
    from geoapp.demo import DEMO_PASSWORD
    from geoapp.domain import coverage

    app = create_app(Settings())
    db = app.extensions["geoapp_db"]
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM reports")).scalar_one()
    t0 = time.perf_counter()
    if not (args.reuse and stored == args.reports):
        load(app, db, args)
    load_s = time.perf_counter() - t0
    with db.engine.connect() as conn:

        counts = conn.execute(text("SELECT (SELECT count(*) FROM reports), (SELECT count(*) FROM walks), "
                                   "(SELECT count(*) FROM walk_intervals), (SELECT count(*) FROM coverage_marks), "
                                   "(SELECT pg_size_pretty(pg_total_relation_size('coverage_marks')))")).one()
    print(f"loaded {counts[0]:,} reports, {counts[1]:,} walks ({counts[2]:,} intervals) in {load_s:.0f} s; "
          f"coverage_marks: {counts[3]:,} rows, {counts[4]}")

    today = dt.datetime.now(coverage.DAY_TZ).date()
    month = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    year = {"from": (today - dt.timedelta(days=365)).isoformat(), "to": today.isoformat()}
    cases = [("city, this month", month, None), ("city, last 366 days", year, None),
             ("one street (S03), this month", month, "S03"), ("one street (S03), last 366 days", year, "S03")]

    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    client.post("/login", data={"csrf_token": token, "username": "leader", "password": DEMO_PASSWORD})

    print(f"\nmedian of {args.repeat} runs (after one warm-up), bins of 50 m:")
    print(f"{'case':34} {'statement':>10} {'+ bins/map':>11} {'API':>9} {'API bytes':>10}")
    for label, period, street in cases:
        query = coverage.parse_query({**period, **({"street": street} if street else {})})
        per = coverage.period_of(query, 50)
        with db.sessionmaker() as s:
            ids = [coverage.street_id_of(s, street)] if street else coverage.readable_street_ids(
                s, coverage.Viewer(user_id=0, role="leader"))

            def run(bins):
                coverage.compute(s, ids, per, with_bins=bins)
                s.rollback()
            run(False)
            plain = _median_ms(lambda: run(False), args.repeat)
            run(True)
            drawn = _median_ms(lambda: run(True), args.repeat)
        url = "/api/v1/coverage?" + "&".join(f"{k}={v}" for k, v in {**period, **({"street": street} if street else {})}.items())
        r = client.get(url)
        assert r.status_code == 200, r.data[:300]
        api = _median_ms(lambda: client.get(url), args.repeat)
        print(f"{label:34} {plain:8.1f} ms {drawn:8.1f} ms {api:6.1f} ms {len(r.data):10,}")
    page = _median_ms(lambda: client.get("/coverage"), 3)
    print(f"\nGET /coverage (the page, 29 streets drawn bin by bin, this month): {page:.0f} ms")


if __name__ == "__main__":
    main()
