"""The console map at 10k, 100k and 1,000,000 reports: the first view, one pan and filter changes,
in bytes and server time, side by side with folium's MarkerCluster and FastMarkerCluster for the
same reports. Figures are printed, never asserted. Run with bench/run (its own database):

    bench/run console_map [--sizes 10000,100000,1000000] [--folium-timeout 300] [--repeat 7]

folium is not a dependency of the app: `pip install folium` (pyproject's optional extra `bench`).
"""
from __future__ import annotations

import argparse
import multiprocessing
import re
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_db, when imported from the tests
from bench_db import fresh_city  # noqa: E402

# A realistic mix of the states a report is in (the closed loop: most are done after two years).
STATUS_MIX = (("closed", 0.40), ("verified", 0.08), ("handled", 0.05), ("in_progress", 0.06),
              ("unit_accepted", 0.04), ("dispatched", 0.06), ("submitted", 0.07), ("accepted", 0.03),
              ("rejected", 0.05), ("returned", 0.01), ("reopened", 0.02), ("ledger", 0.02), ("void", 0.01),
              ("merged", 0.10))
RUNNING = ("dispatched", "unit_accepted", "in_progress", "reopened")


def _status_case() -> str:
    """random() -> a status, by STATUS_MIX ('merged' is given after the insert: it needs a survivor)."""
    at, whens = 0.0, []
    for status, share in STATUS_MIX:
        at += share
        whens.append(f"WHEN r < {at:.4f} THEN '{'closed' if status == 'merged' else status}'")
    return "CASE " + " ".join(whens) + " ELSE 'closed' END"


def generate_reports(conn, n: int, *, seed: float = 0.42, trigger: bool = False) -> None:
    """n reports, set-based: points along the 29 streets (a few metres off them), random items,
    the unit the item's unit type has on that street (street override, else the zone of the
    street's middle), statuses by STATUS_MIX, created over two years (open ones in the last two
    weeks, running ones with a deadline 3-15 days on: some overdue), reported by the street's representative. Without
    `trigger` the map aggregates are recounted once at the end (as a bulk load does)."""
    conn.execute(text("SELECT setseed(:s)"), {"s": seed})
    conn.execute(text("""
        CREATE TEMP TABLE _st ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY s.id) - 1 AS idx, s.id, ST_GeometryN(s.geom_m, 1) AS line, s.length_m,
               coalesce(u.id, (SELECT min(id) FROM users)) AS reporter_id,
               (SELECT z.id FROM zones z WHERE ST_Intersects(z.geom_m, ST_LineInterpolatePoint(ST_GeometryN(s.geom_m, 1), 0.5))
                ORDER BY z.id LIMIT 1) AS zone_id
        FROM streets s LEFT JOIN representatives r ON r.street_id = s.id LEFT JOIN users u ON u.representative_id = r.id;
        CREATE TEMP TABLE _it ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY id) - 1 AS idx, id, unit_type FROM categories WHERE level = 'item';
        CREATE TEMP TABLE _unit ON COMMIT DROP AS
        SELECT st.id AS street_id, t.unit_type,
               coalesce((SELECT unit_id FROM street_units su WHERE su.street_id = st.id AND su.unit_type = t.unit_type),
                        (SELECT unit_id FROM zone_units zu WHERE zu.zone_id = st.zone_id AND zu.unit_type = t.unit_type),
                        (SELECT min(unit_id) FROM zone_units zu WHERE zu.unit_type = t.unit_type),
                        (SELECT min(id) FROM units)) AS unit_id
        FROM _st st, (SELECT DISTINCT unit_type FROM _it) t;
    """))
    if not trigger:
        conn.execute(text("ALTER TABLE reports DISABLE TRIGGER report_cells_sync"))
    running = ", ".join(f"'{s}'" for s in RUNNING)
    conn.execute(text(f"""
        INSERT INTO reports (client_id, reported_lon, reported_lat, reported_crs, geom, street_id, distance_m,
                             position_m, on_own_street, category_id, description, reporter_id, status, unit_id,
                             dispatch_reason, created_at, updated_at, deadline_at, dispatched_at, ledger_promised_on)
        SELECT gen_random_uuid(), ST_X(p), ST_Y(p), 'wgs84', p, st.id, abs(q.off), q.f * st.length_m, true, it.id,
               'synthetic report ' || q.g, st.reporter_id, q.status, un.unit_id, 'synthetic', q.created, q.created,
               CASE WHEN q.status IN ({running}) THEN q.created + (3 + q.r3 * 12) * interval '1 day' END,
               CASE WHEN q.status NOT IN ('submitted', 'accepted', 'rejected', 'void') THEN q.created END,
               CASE WHEN q.status = 'ledger' THEN (q.created + interval '120 days')::date END
        FROM (SELECT g, status, f, off, ii, r2, random() AS r3,
                     now() - CASE WHEN status IN ({running}, 'submitted', 'accepted') THEN r2 * interval '14 days'
                                  ELSE r2 * interval '730 days' END AS created
              FROM (SELECT g, {_status_case()} AS status, random() AS f, (random() - 0.5) * 30 AS off,
                           floor(random() * (SELECT count(*) FROM _it))::int AS ii, random() AS r2
                    FROM (SELECT g, random() AS r FROM generate_series(1, :n) g) r0) r1) q
        JOIN _st st ON st.idx = q.g % 29
        JOIN _it it ON it.idx = q.ii
        JOIN _unit un ON un.street_id = st.id AND un.unit_type = it.unit_type
        CROSS JOIN LATERAL (SELECT ST_Transform(ST_Translate(ST_LineInterpolatePoint(st.line, q.f),
                                                            q.off * 0.7, q.off * 0.7), 4326) AS p) pt
    """), {"n": n})
    # duplicates: a share of the closed ones were merged into the report before them
    share = dict(STATUS_MIX)["merged"] / dict(STATUS_MIX)["closed"]
    conn.execute(text("""
        UPDATE reports r SET status = 'merged', merged_into_id = r.id - 1
        WHERE r.status = 'closed' AND r.id > (SELECT min(id) FROM reports) AND r.description LIKE 'synthetic%'
          AND EXISTS (SELECT 1 FROM reports p WHERE p.id = r.id - 1) AND random() < :share"""), {"share": share})
    if not trigger:
        conn.execute(text("ALTER TABLE reports ENABLE TRIGGER report_cells_sync"))
        conn.execute(text("SELECT report_cells_rebuild()"))


# --- measuring ------------------------------------------------------------------------------------

def _timed(client, url, repeat):
    times, r = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(url)
        times.append(time.perf_counter() - t0)
    if r.status_code != 200:
        raise SystemExit(f"GET {url}: {r.status_code} {r.data[:300]!r}")
    return statistics.median(times), len(r.data), r


def _tiles_of(bounds, z):
    """The tile rectangle covering (west, south, east, north) at zoom z (as the page computes it)."""
    import math
    n = 2 ** z

    def tx(lon):
        return int((lon + 180) / 360 * n)

    def ty(lat):
        s = math.sin(math.radians(lat))
        return int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    west, south, east, north = bounds
    return tx(west), ty(north), tx(east), ty(south)


def _folium(points, kind, out, q):
    import folium
    from folium.plugins import FastMarkerCluster, MarkerCluster

    t0 = time.perf_counter()
    m = folium.Map(location=[41.12, 121.12], zoom_start=13, tiles=None)
    if kind == "MarkerCluster":
        cluster = MarkerCluster().add_to(m)
        for lat, lon, rid in points:
            folium.Marker([lat, lon], popup=str(rid)).add_to(cluster)
    else:
        FastMarkerCluster([[lat, lon] for lat, lon, _ in points]).add_to(m)
    m.save(out)
    q.put((time.perf_counter() - t0, Path(out).stat().st_size))


def folium_figure(points, kind, timeout):
    """(seconds, bytes) of folium building the page, or None when it did not finish in `timeout`."""
    q = multiprocessing.Queue()
    out = f"/tmp/console_map_{kind}.html"
    proc = multiprocessing.Process(target=_folium, args=(points, kind, out, q))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return q.get() if not q.empty() else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--folium-timeout", type=int, default=300)
    ap.add_argument("--no-folium", action="store_true")
    args = ap.parse_args()

    from geoapp import create_app
    from geoapp.config import Settings
    from geoapp.demo import DEMO_PASSWORD

    app = create_app(Settings())
    db = app.extensions["geoapp_db"]
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with fresh_city(app) as (s, users, key):
            bounds = s.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                    "FROM (SELECT ST_Extent(geom) e FROM streets) q")).one()
            mid = s.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint("
                                 "ST_GeometryN(geom, 1), 0.5) p FROM streets WHERE code = 'S03') q")).one()
        t0 = time.perf_counter()
        with db.engine.begin() as conn:
            generate_reports(conn, n)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE reports"))
            conn.execute(text("VACUUM ANALYZE report_cells"))
        load_s = time.perf_counter() - t0
        cells = db.engine.connect().execute(text("SELECT count(*) FROM report_cells")).scalar_one()

        client = app.test_client()
        form = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
        client.post("/login", data={"csrf_token": token, "username": "dispatcher", "password": DEMO_PASSWORD})
        page_s, page_b, _ = _timed(client, "/map", args.repeat)
        # the console's first view: the streets' extent on a 1600 x 900 desktop is zoom 13
        z = 13
        x0, y0, x1, y1 = _tiles_of(bounds, z)
        first = f"/api/v1/map/cells?z={z}&tiles={x0},{y0},{x1},{y1}"
        cells_s, cells_b, r = _timed(client, first, args.repeat)
        count_s, _, rc = _timed(client, "/api/v1/map/count", args.repeat)
        shown = sum(c[2] for t in r.json["cells"].values() for c in t["c"]) + sum(
            len(t["r"]) for t in r.json["cells"].values())
        # pans where the reports are: a 1600 x 900 screen (7 x 4 tiles) centred on the middle of S03,
        # moved two tiles so that the street's middle comes in: the 2 x 4 new tiles are all it asks for
        pans = {}
        for zp in (14, 16):
            px, py = _tiles_of((mid[0], mid[1], mid[0], mid[1]), zp)[:2]
            pans[zp] = _timed(client, f"/api/v1/map/cells?z={zp}&tiles={px - 1},{py - 2},{px},{py + 1}",
                              args.repeat)[:2]
        filters = {"status=submitted": "status=submitted", "category=A (class)": "category=A",
                   "street=S03": "street=S03", "from/to (partial months)": "from=2026-01-15&to=2026-03-10",
                   "category=0401 (item)": "category=0401", "unit=M01": "unit=M01", "overdue=1": "overdue=1"}
        f_rows = []
        for name, qs in filters.items():
            fs, fb, _ = _timed(client, f"{first}&{qs}", args.repeat)
            cs, _, c = _timed(client, f"/api/v1/map/count?{qs}", args.repeat)
            f_rows.append((name, fs, fb, cs, c.json["count"]))
        row = {"n": n, "load_s": load_s, "cells": cells, "page": (page_s, page_b), "first": (cells_s, cells_b),
               "count": (count_s, rc.json["count"]), "shown": shown, "pans": pans, "filters": f_rows}
        if not args.no_folium:
            with db.engine.connect() as conn:
                points = conn.execute(text("SELECT ST_Y(geom), ST_X(geom), id FROM reports")).all()
            row["folium"] = {k: folium_figure(points, k, args.folium_timeout)
                             for k in ("MarkerCluster", "FastMarkerCluster")}
        rows.append(row)
        _print(row, args)
    print("\ncommand: bench/run console_map " + " ".join(sys.argv[1:]))


def _print(row, args):
    kb = lambda b: f"{b / 1024:,.1f} KB"  # noqa: E731
    ms = lambda s: f"{s * 1000:,.0f} ms"  # noqa: E731
    print(f"\n== {row['n']:,} reports (generated + aggregated in {row['load_s']:.0f} s; "
          f"{row['cells']:,} report_cells rows); medians of {args.repeat} ==")
    print(f"  /map page (HTML, streets, filters)     {ms(row['page'][0]):>9}  {kb(row['page'][1]):>11}")
    print(f"  first view, z13 whole city (cells)     {ms(row['first'][0]):>9}  {kb(row['first'][1]):>11}"
          f"  ({row['shown']:,} reports in it)")
    print(f"  first view total (page + cells)        {ms(row['page'][0] + row['first'][0]):>9}  "
          f"{kb(row['page'][1] + row['first'][1]):>11}")
    print(f"  exact count (/api/v1/map/count)        {ms(row['count'][0]):>9}  = {row['count'][1]:,}")
    for zp, (ps, pb) in row["pans"].items():
        print(f"  pan z{zp} on S03 (2 x 4 new tiles)       {ms(ps):>9}  {kb(pb):>11}")
    for name, fs, fb, cs, c in row["filters"]:
        print(f"  filter {name:<31} {ms(fs):>9}  {kb(fb):>11}  count {ms(cs)} = {c:,}")
    for kind, fig in row.get("folium", {}).items():
        print(f"  folium {kind:<31} " + (f"{fig[0]:>7.1f} s  {fig[1] / 1e6:>8.1f} MB" if fig else
                                        f"did not finish in {args.folium_timeout} s"))


if __name__ == "__main__":
    main()
