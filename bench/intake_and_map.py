"""Figures for the foundation, printed, never asserted: snapping latency, intake throughput,
GeoJSON listing and /map render times. Run with bench/run (it provisions its own database).

    bench/run [--reports N]
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import time
import uuid

from sqlalchemy import text

from bench_db import fresh_city  # bench/ is on the path: these run as scripts
from geoapp import create_app
from geoapp.config import Settings
from geoapp.demo import DEMO_PASSWORD
from geoapp.domain.intake import IntakeRules, Reporter, Submission, submit_report
from geoapp.domain.snapping import nearest_street


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=2000)
    ap.add_argument("--snaps", type=int, default=2000)
    args = ap.parse_args()

    settings = Settings()
    app = create_app(settings)
    db = app.extensions["geoapp_db"]
    with fresh_city(app) as (s, users, key):
        rep = users["rep01"]
        reporter = Reporter(rep.id, "representative", rep.representative.street_id)
        points = s.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT ST_Transform(ST_Translate(ST_LineInterpolatePoint(ST_GeometryN(geom_m, 1), random()),
                                               (random() - 0.5) * 40, (random() - 0.5) * 40), 4326) AS p
              FROM streets, generate_series(1, :n / 29 + 1)) q"""), {"n": max(args.reports, args.snaps)}).all()
    rng = random.Random(1)
    rng.shuffle(points)

    # 1. snapping: one KNN query per point
    times = []
    with db.transaction() as s:
        for lon, lat in points[: args.snaps]:
            t0 = time.perf_counter()
            nearest_street(s, lon, lat)
            times.append(time.perf_counter() - t0)
    print(f"snap (KNN + position), {len(times)} points: median {ms(statistics.median(times))}, "
          f"p95 {ms(pct(times, 95))}, max {ms(max(times))}")

    # 2. intake: validate -> snap -> dispatch -> store, one transaction per report (as over HTTP)
    rules = IntakeRules.from_settings(settings)
    times, refused = [], 0
    t_all = time.perf_counter()
    for lon, lat in points[: args.reports]:
        t0 = time.perf_counter()
        try:
            with db.transaction() as s:
                submit_report(s, reporter, Submission(client_id=uuid.uuid4(), lon=lon, lat=lat, crs="wgs84", category="0401", description="bench"), rules)
        except Exception:  # points near a street's end can fall beyond the tolerance
            refused += 1
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    print(f"submit_report, {len(times)} reports ({refused} refused): {len(times) / total:.0f}/s on one connection, "
          f"median {ms(statistics.median(times))}, p95 {ms(pct(times, 95))}")

    # 3. HTTP: the same through the API, and reading back
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    for lon, lat in points[:200]:
        body = {"client_id": str(uuid.uuid4()), "lat": lat, "lon": lon, "category": "0401", "description": "b"}
        t0 = time.perf_counter()
        client.post("/api/v1/reports", json=body, headers=headers)
        times.append(time.perf_counter() - t0)
    print(f"POST /api/v1/reports (in-process), 200 requests: median {ms(statistics.median(times))}, "
          f"p95 {ms(pct(times, 95))}")
    for query in ("limit=100", "limit=1000", "bbox=121.10,41.10,121.14,41.12&limit=1000"):
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            r = client.get(f"/api/v1/reports?{query}", headers=headers)
            times.append(time.perf_counter() - t0)
        print(f"GET /api/v1/reports?{query}: median {ms(statistics.median(times))} "
              f"({r.json['numberReturned']} of {r.json['numberMatched']})")

    # 4. the map page, as the dispatcher sees it (newest 5,000 reports at most)
    # signed in through the real form, as a browser does (the session is Flask-Login's since [1.1])
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    signed_in = client.post("/login", data={"csrf_token": token, "username": "dispatcher",
                                            "password": DEMO_PASSWORD})
    if signed_in.status_code != 302:
        raise SystemExit(f"sign-in failed: {signed_in.status_code}")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = client.get("/map")
        times.append(time.perf_counter() - t0)
    if r.status_code != 200:
        raise SystemExit(f"GET /map: {r.status_code}")
    print(f"GET /map with {min(args.reports + 200, 5000)} reports: median {ms(statistics.median(times))}, "
          f"{len(r.data) / 1e6:.1f} MB of HTML")


if __name__ == "__main__":
    main()
