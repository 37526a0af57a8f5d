"""POST /api/v1/walks through the real app (Flask's test client: validation, cleaning, the PostGIS
match, storing, the answer) with 2,000-point chunks — the largest a phone sends — walking a street
up and back. Figures, printed, never asserted.

    bench/run walk_match [--runs 20]

Run by bench/run in its own database (GEOAPP_BENCH_DB_NAME, default geoapp_bench), which it empties.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_db import fresh_city  # noqa: E402
from post_report import line  # noqa: E402  (the same p50/p95 line)

from geoapp import create_app  # noqa: E402
from geoapp.config import Settings  # noqa: E402

POINTS = 2000
STEP_M, STEP_S = 5.0, 2  # 2.5 m/s: a brisk walk, kept by the speed filter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    settings = Settings()
    if "bench" not in (make_url(settings.database_url).database or ""):
        sys.exit(f"refusing to empty {make_url(settings.database_url).database!r}: run me with bench/run walk_match")
    app = create_app(settings)
    db = app.extensions["geoapp_db"]
    with fresh_city(app) as (s, users, key):
        street = users["rep01"].representative.street_id
        # up the street and back, a point every STEP_M metres, POINTS in all
        half = POINTS // 2
        up = s.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT ST_Transform(ST_LineInterpolatePoint(g, least(1.0, k * :step / ST_Length(g))), 4326) p, k
              FROM (SELECT ST_GeometryN(geom_m, 1) g FROM streets WHERE id = :street) s,
                   generate_series(0, :n - 1) k) q ORDER BY k"""),
            {"street": street, "step": STEP_M, "n": half}).all()
    points = [list(p) for p in up] + [list(p) for p in reversed(up)]
    headers = {"Authorization": f"Bearer {key}"}
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)

    def post() -> float:
        body = {"walk_id": str(uuid.uuid4()), "chunk": 0, "crs": "wgs84",
                "trace": {"type": "LineString", "coordinates": points},
                "times": [(start + dt.timedelta(seconds=k * STEP_S)).isoformat() for k in range(len(points))],
                "accuracies": [8.0] * len(points)}
        t0 = time.perf_counter()
        r = app.test_client().post("/api/v1/walks", json=body, headers=headers)
        elapsed = time.perf_counter() - t0
        if r.status_code != 201:
            raise SystemExit(f"POST failed: {r.status_code} {r.get_data(as_text=True)[:300]}")
        return elapsed

    post()  # warm-up
    times = [post() for _ in range(args.runs)]
    print(f"{len(points)} points a chunk, up and back along one street ({STEP_M:.0f} m apart)")
    print(line("POST /api/v1/walks, one 2,000-point chunk", times))
    db.dispose()


if __name__ == "__main__":
    main()
