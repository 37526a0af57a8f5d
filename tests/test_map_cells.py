"""The console map's aggregates (report_cells, migration 0007) and its API (/api/v1/map/cells,
/api/v1/map/count): always equal to a direct count, for every filter, and never counting what the
viewer may not see."""
import math
import sys

import pytest
from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from geoapp.domain.map_cells import tile_corner
from geoapp.domain.vocabulary import REPORT_STATUSES

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from console_map import generate_reports  # noqa: E402  (one generator for the bench and the tests)

# the aggregates as they must be: recounted from reports with the trigger's own formulas
DIRECT = """
    SELECT l AS level, m AS month, map_cell_x(ST_X(r.geom), l) AS cx, map_cell_y(ST_Y(r.geom), l) AS cy,
           r.street_id, r.unit_id, r.status, g.parent_id AS class_id, count(*)::int AS n
    FROM reports r JOIN categories i ON i.id = r.category_id JOIN categories g ON g.id = i.parent_id,
         unnest(ARRAY[10, 12, 14, 16]) l, unnest(ARRAY['-infinity'::date, report_cells_month(r.created_at)]) m
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"""
STORED = "SELECT level, month, cx, cy, street_id, unit_id, status, class_id, n FROM report_cells WHERE n <> 0"


def assert_cells_match(db):
    with db.engine.connect() as conn:
        missing = conn.execute(text(f"({DIRECT}) EXCEPT ({STORED})")).all()
        extra = conn.execute(text(f"({STORED}) EXCEPT ({DIRECT})")).all()
    assert missing == [] and extra == []


def tiles_around(lon_lat_points, z):
    def tile(lon, lat):
        n = 2 ** z
        s = math.sin(math.radians(lat))
        return int((lon + 180) / 360 * n), int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    xs, ys = zip(*(tile(lon, lat) for lon, lat in lon_lat_points))
    return min(xs), min(ys), max(xs), max(ys)


@pytest.fixture
def city(db, users):
    """600 synthetic reports over the 29 streets (trigger on, as the app writes them)."""
    with db.engine.begin() as conn:
        generate_reports(conn, 600, trigger=True)
        extent = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                   "FROM (SELECT ST_Extent(geom) e FROM reports) q")).one()
    return extent


def whole_city(extent, z):
    x0, y0, x1, y1 = tiles_around([(extent[0], extent[1]), (extent[2], extent[3])], z)
    return f"z={z}&tiles={x0},{y0},{x1},{y1}"


def shown(body) -> int:
    """How many reports the map would show: clusters' counts plus single reports."""
    return sum(c[2] for t in body["cells"].values() for c in t["c"]) + sum(len(t["r"]) for t in body["cells"].values())


def test_the_aggregates_follow_inserts_updates_and_deletes(db, owner_db, city):
    assert_cells_match(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE reports SET status = 'accepted' WHERE status = 'submitted' AND id % 3 = 0"))
        conn.execute(text("UPDATE reports SET created_at = created_at - interval '40 days' WHERE id % 7 = 0"))
        conn.execute(text("UPDATE reports SET geom = ST_Translate(geom, 0.001, 0.0005) WHERE id % 11 = 0"))
        conn.execute(text("UPDATE reports SET unit_id = (SELECT min(id) FROM units) WHERE id % 9 = 0"))
        conn.execute(text("UPDATE reports SET description = 'only words' WHERE id % 5 = 0"))  # counts unchanged
        conn.execute(text("DELETE FROM reports WHERE id % 13 = 0 AND id NOT IN "
                          "(SELECT merged_into_id FROM reports WHERE merged_into_id IS NOT NULL)"))
    assert_cells_match(db)
    with owner_db.engine.begin() as conn:  # rebuilding truncates: the schema owner's (geoapp map rebuild-cells)
        conn.execute(text("SELECT report_cells_rebuild()"))
    assert_cells_match(db)
    with owner_db.engine.begin() as conn:
        conn.execute(text("TRUNCATE reports CASCADE"))
        assert conn.execute(text("SELECT count(*) FROM report_cells")).scalar_one() == 0


def test_a_report_posted_through_the_api_is_counted_at_once(client, auth, streets, db):
    body = {"client_id": "2b4f0c8e-1c1e-4c55-9d0e-5f5b6a8e9a01", "lat": None, "lon": None, "crs": "wgs84",
            "category": "0401", "description": "路边垃圾堆积"}
    lon, lat = streets.point("S03", 0.5)
    r = client.post("/api/v1/reports", json=body | {"lat": lat, "lon": lon}, headers=auth("rep03"))
    assert r.status_code == 201
    assert_cells_match(db)
    got = client.get("/api/v1/map/count", headers=auth("dispatcher")).json
    assert got == {"count": 1}


@pytest.mark.parametrize("z", [10, 11, 13, 16, 17])
def test_clusters_of_a_tile_rectangle_sum_to_the_matching_reports(client, auth, city, z):
    if z >= 16:  # a close view: the city's middle street only
        r = client.get("/api/v1/reports?street=S03&limit=1", headers=auth("dispatcher")).json
        lon, lat = r["features"][0]["geometry"]["coordinates"]
        x0, y0, x1, y1 = tiles_around([(lon, lat)], z)
        query = f"z={z}&tiles={x0 - 1},{y0 - 1},{x1 + 1},{y1 + 1}"
        west, north = tile_corner(z, x0 - 1, y0 - 1)
        east, south = tile_corner(z, x1 + 2, y1 + 2)
        expected = client.get(f"/api/v1/reports?bbox={west},{south},{east},{north}&limit=1",
                              headers=auth("dispatcher")).json["numberMatched"]
    else:
        query, expected = whole_city(city, z), 600
    body = client.get(f"/api/v1/map/cells?{query}", headers=auth("dispatcher")).json
    assert shown(body) == expected
    for tile in body["cells"].values():
        for lat, lon, n, by_status in tile["c"]:
            assert n == sum(by_status) and len(by_status) == len(REPORT_STATUSES)
        for rid, lat, lon, status, klass in tile["r"]:
            assert isinstance(rid, int) and 0 <= status < len(REPORT_STATUSES) and klass in ("A", "B", "C")


FILTERS = ["status=submitted", "status=closed,merged", "category=A", "category=B&status=closed", "category=01",
           "category=0401", "street=S03", "street=S03&status=closed", "unit=M01", "overdue=1",
           "from=2025-12-15&to=2026-05-03", "from=2026-01-01&to=2026-03-31", "from=2026-11-03&to=2026-11-20",
           "to=2026-06-10", "from=2025-06-10", "category=C&from=2025-12-15&to=2026-05-03&status=closed",
           "street=NOPE", "category=NOPE"]


@pytest.mark.parametrize("qs", FILTERS)
def test_each_filter_shows_and_counts_what_the_list_finds(client, auth, city, qs):
    expected = client.get(f"/api/v1/reports?{qs}&limit=1", headers=auth("dispatcher")).json["numberMatched"]
    assert client.get(f"/api/v1/map/count?{qs}", headers=auth("dispatcher")).json["count"] == expected
    body = client.get(f"/api/v1/map/cells?{whole_city(city, 12)}&{qs}", headers=auth("dispatcher")).json
    assert shown(body) == expected
    if qs == "status=submitted":
        statuses = {REPORT_STATUSES[r[3]] for t in body["cells"].values() for r in t["r"]}
        assert statuses <= {"submitted"}


def test_a_date_range_is_exact_to_the_day_across_month_edges(client, auth, city, db):
    with db.engine.begin() as conn:  # two reports on either side of a local midnight at a month's end
        ids = conn.execute(text("SELECT id FROM reports ORDER BY id LIMIT 2")).scalars().all()
        conn.execute(text("UPDATE reports SET created_at = '2026-01-31 23:59:00+08' WHERE id = :i"), {"i": ids[0]})
        conn.execute(text("UPDATE reports SET created_at = '2026-02-01 00:00:00+08' WHERE id = :i"), {"i": ids[1]})
    for qs in ("from=2026-01-31&to=2026-01-31", "from=2026-02-01&to=2026-02-28", "from=2026-01-20&to=2026-02-01"):
        expected = client.get(f"/api/v1/reports?{qs}&limit=1", headers=auth("dispatcher")).json["numberMatched"]
        assert client.get(f"/api/v1/map/count?{qs}", headers=auth("dispatcher")).json["count"] == expected
        assert shown(client.get(f"/api/v1/map/cells?{whole_city(city, 11)}&{qs}",
                                headers=auth("dispatcher")).json) == expected


def test_a_representative_counts_only_what_they_may_see(client, auth, city, db):
    with db.engine.connect() as conn:
        rep03 = conn.execute(text("SELECT id FROM users WHERE username = 'rep03'")).scalar_one()
        s03 = conn.execute(text("SELECT id FROM streets WHERE code = 'S03'")).scalar_one()
        mine_or_street = conn.execute(text(
            "SELECT count(*) FROM reports WHERE reporter_id = :u OR street_id = :s "
            "OR id IN (SELECT merged_into_id FROM reports WHERE reporter_id = :u)"), {"u": rep03, "s": s03}).scalar_one()
    assert 0 < mine_or_street < 600
    assert client.get("/api/v1/map/count", headers=auth("rep03")).json["count"] == mine_or_street
    body = client.get(f"/api/v1/map/cells?{whole_city(city, 12)}", headers=auth("rep03")).json
    assert shown(body) == mine_or_street
    # the other streets' reports are not even counted in a cluster
    ids = {r[0] for t in body["cells"].values() for r in t["r"]}
    with db.engine.connect() as conn:
        others = set(conn.execute(text(
            "SELECT id FROM reports WHERE street_id <> :s AND reporter_id <> :u AND id NOT IN "
            "(SELECT merged_into_id FROM reports WHERE reporter_id = :u AND merged_into_id IS NOT NULL)"),
            {"s": s03, "u": rep03}).scalars())
    assert not ids & others


def test_the_streets_carry_their_open_problems(client, city, signin, db):
    from geoapp.domain.vocabulary import FINISHED_STATUSES

    signin.login("dispatcher")
    import json
    import re
    html = client.get("/map").get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S).group(1))
    with db.engine.connect() as conn:
        direct = dict(conn.execute(text(
            "SELECT s.code, count(*) FROM reports r JOIN streets s ON s.id = r.street_id "
            "WHERE NOT r.status = ANY(:f) GROUP BY s.code"), {"f": list(FINISHED_STATUSES)}).all())
    assert {f["properties"]["code"]: f["properties"]["open"] for f in data["streets"]["features"]
            if f["properties"]["open"]} == direct
    assert {s["code"] for s in data["statuses"]} == set(REPORT_STATUSES)
    assert len({s["colour"] for s in data["statuses"]}) == len(REPORT_STATUSES)


@pytest.mark.parametrize("query, field", [
    ("tiles=1,1,2,2", "z"), ("z=x&tiles=1,1,2,2", "z"), ("z=21&tiles=1,1,2,2", "z"), ("z=-1&tiles=0,0,0,0", "z"),
    ("z=13", "tiles"), ("z=13&tiles=1,2,3", "tiles"), ("z=13&tiles=5,5,4,5", "tiles"), ("z=2&tiles=0,0,4,0", "tiles"),
    ("z=13&tiles=a,b,c,d", "tiles"), ("z=13&tiles=0,0,99,99", "tiles"), ("z=13&tiles=1,1,2,2&from=2026-13-01", "from"),
    ("z=13&tiles=1,1,2,2&status=nope", "status"),
])
def test_a_bad_view_is_refused_with_a_message(client, auth, users, query, field):
    r = client.get(f"/api/v1/map/cells?{query}", headers=auth("dispatcher"))
    assert r.status_code == 400, r.json
    assert r.json["error"] and r.json["message"]
    en = client.get(f"/api/v1/map/cells?{query}&lang=en", headers=auth("dispatcher") | {"Accept-Language": "en"})
    assert en.status_code == 400


def test_the_map_api_needs_a_user(client, users):
    assert client.get("/api/v1/map/cells?z=12&tiles=0,0,0,0").status_code == 401
    assert client.get("/api/v1/map/count").status_code == 401


def test_a_unit_counts_the_reports_it_leads_and_those_it_cooperates_on(client, auth, city, db):
    with db.engine.begin() as conn:
        m01 = conn.execute(text("SELECT id FROM units WHERE code = 'M01'")).scalar_one()
        conn.execute(text("INSERT INTO report_units (report_id, unit_id) SELECT id, :u FROM reports "
                          "WHERE unit_id <> :u AND id % 10 = 0"), {"u": m01})
    for qs in ("unit=M01", "unit=M01&status=closed", "unit=M01&from=2025-12-15&to=2026-05-03", "unit=M01&to=2026-06-10"):
        expected = client.get(f"/api/v1/reports?{qs}&limit=1", headers=auth("dispatcher")).json["numberMatched"]
        assert client.get(f"/api/v1/map/count?{qs}", headers=auth("dispatcher")).json["count"] == expected
        assert shown(client.get(f"/api/v1/map/cells?{whole_city(city, 13)}&{qs}",
                                headers=auth("dispatcher")).json) == expected


def test_the_aggregates_can_be_rebuilt_from_the_command_line(app, db, owner_db, city):
    with owner_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE reports DISABLE TRIGGER report_cells_sync"))
        conn.execute(text("UPDATE reports SET status = 'void' WHERE id % 4 = 0 AND status <> 'merged'"))
        conn.execute(text("ALTER TABLE reports ENABLE TRIGGER report_cells_sync"))
    with app.app_context():  # as the `geoapp` command runs it (FlaskGroup)
        result = app.test_cli_runner().invoke(args=["map", "rebuild-cells"])
    assert result.exit_code == 0 and "report_cells rebuilt" in result.output
    assert_cells_match(db)
