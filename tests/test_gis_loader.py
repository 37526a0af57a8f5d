"""The city-data loader: gis_data/ is validated whole, then stored by code in the caller's transaction.

Refusals: each test copies gis_data/ to tmp_path, breaks ONE thing, and checks that the loader names
the file, the feature/row and the problem, and that the database is exactly as before.
Replacements: a changed data set is stored in one go (and the original is always restored), and a
data set whose storing fails leaves every table as it was.

The database is shared by the whole test session (the `migrated` fixture loads gis_data/ once),
so every test that changes the city data restores the original files in a `finally` block.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable

import pytest
from pyproj import Transformer
from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from geoapp.domain.intake import IntakeRules, Reporter, Submission, submit_report
from geoapp.gis.loader import LoadCounts, load_city_data
from geoapp.gis.validate import GisDataError
from geoapp.models import METRIC_SRID

GIS_DATA = PROJECT_ROOT / "gis_data"
Mutation = Callable[[Path], None]

# ---------------------------------------------------------------------------------------------
# the original files, read independently of the loader (to name expected features and rows)


def _features(name: str) -> list[dict]:
    return json.loads((GIS_DATA / name).read_text(encoding="utf-8"))["features"]


STREET_NAMES = {f["properties"]["id"]: f["properties"]["name"] for f in _features("streets.geojson")}
ZONE_NAMES = {f["properties"]["id"]: f["properties"]["name"] for f in _features("zones.geojson")}


def _csv_rows(name: str) -> list[dict]:
    with (GIS_DATA / name).open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _first_row_line(name: str, column: str, value: str) -> int:
    """The file line (header = line 1) of the first row whose `column` is `value`."""
    return next(line for line, row in enumerate(_csv_rows(name), start=2) if row[column] == value)


# ---------------------------------------------------------------------------------------------
# mutations: each changes ONE thing in a copy of gis_data/


def copy_gis_data(tmp_path: Path, *mutations: Mutation) -> Path:
    """A copy of gis_data/ in tmp_path with `mutations` applied in order."""
    target = tmp_path / "gis_data"
    shutil.copytree(GIS_DATA, target)
    for mutate in mutations:
        mutate(target)
    return target


def edit_geojson(name: str, change: Callable[[dict], None]) -> Mutation:
    def mutate(directory: Path) -> None:
        path = directory / name
        doc = json.loads(path.read_text(encoding="utf-8"))
        change(doc)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return mutate


def feature(doc: dict, fid: str) -> dict:
    return next(f for f in doc["features"] if f["properties"]["id"] == fid)


def set_geometry(name: str, fid: str, geometry) -> Mutation:
    def change(doc):
        feature(doc, fid)["geometry"] = geometry
    return edit_geojson(name, change)


def map_coords(name: str, fid: str, fn: Callable[[float, float], tuple[float, float]]) -> Mutation:
    """Apply fn(x, y) -> (x, y) to every coordinate of one feature."""
    def walk(coords):
        if coords and isinstance(coords[0], (int, float)):
            return list(fn(coords[0], coords[1]))
        return [walk(c) for c in coords]

    def change(doc):
        geom = feature(doc, fid)["geometry"]
        geom["coordinates"] = walk(geom["coordinates"])
    return edit_geojson(name, change)


def set_property(name: str, fid: str, key: str, value) -> Mutation:
    def change(doc):
        feature(doc, fid)["properties"][key] = value
    return edit_geojson(name, change)


def drop_feature(name: str, fid: str) -> Mutation:
    def change(doc):
        doc["features"] = [f for f in doc["features"] if f["properties"]["id"] != fid]
    return edit_geojson(name, change)


def edit_csv(name: str, change: Callable[[list[dict], list[str]], tuple[list[dict], list[str]] | None]) -> Mutation:
    """change(rows, fieldnames) edits in place, or returns new (rows, fieldnames)."""
    def mutate(directory: Path) -> None:
        path = directory / name
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows, fields = list(reader), list(reader.fieldnames)
        result = change(rows, fields)
        if result is not None:
            rows, fields = result
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return mutate


def set_cell(name: str, key_column: str, key: str, column: str, value: str) -> Mutation:
    def change(rows, _fields):
        next(r for r in rows if r[key_column] == key)[column] = value
    return edit_csv(name, change)


def drop_row(name: str, key_column: str, key: str) -> Mutation:
    return edit_csv(name, lambda rows, fields: ([r for r in rows if r[key_column] != key], fields))


def add_row(name: str, row: dict) -> Mutation:
    return edit_csv(name, lambda rows, _fields: rows.append(row))


def drop_column(name: str, column: str) -> Mutation:
    return edit_csv(name, lambda rows, fields: (rows, [f for f in fields if f != column]))


def delete_file(name: str) -> Mutation:
    return lambda directory: (directory / name).unlink()


def edit_text(name: str, old: str, new: str) -> Mutation:
    def mutate(directory: Path) -> None:
        path = directory / name
        content = path.read_text(encoding="utf-8")
        assert content.count(old) == 1, f"{old!r} must occur once in {name}"
        path.write_text(content.replace(old, new), encoding="utf-8")
    return mutate


_to_metric = Transformer.from_crs(4326, METRIC_SRID, always_xy=True).transform

# ---------------------------------------------------------------------------------------------
# database helpers

CITY_TABLES = ("units", "streets", "representatives", "street_units", "zones", "zone_units", "categories")


def snapshot(db) -> dict:
    """Everything the loader (or a failed load) could touch: per table its row count and a digest of
    every row (ids included), plus the streets spelled out for readable assertion diffs."""
    session = db.sessionmaker()
    try:
        snap = {"streets": session.execute(text(
            "SELECT id, code, name, ST_AsText(geom) FROM streets ORDER BY code")).all()}
        for table in CITY_TABLES + ("users", "reports", "report_events"):
            snap[table] = tuple(session.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
            )).one())
        return snap
    finally:
        session.close()


def query(db, sql: str, **params):
    session = db.sessionmaker()
    try:
        return session.execute(text(sql), params).all()
    finally:
        session.close()


def load(db, directory: Path, bbox) -> LoadCounts:
    with db.transaction() as session:
        return load_city_data(session, directory, bbox)


def restore(db, bbox) -> None:
    load(db, GIS_DATA, bbox)


def assert_refused(db, settings, directory: Path, file: str, where: str, *problem: str) -> GisDataError:
    """Loading `directory` raises GisDataError(file, where, …problem…) and changes nothing."""
    before = snapshot(db)
    with pytest.raises(GisDataError) as err:
        load(db, directory, settings.city_bbox)
    e = err.value
    assert (e.file, e.where) == (file, where), str(e)
    for fragment in problem:
        assert fragment in e.problem, str(e)
    assert str(e) == f"{e.file}: {e.where}: {e.problem}"
    assert snapshot(db) == before
    return e


def where_feature(n: int, fid: str, names: dict = STREET_NAMES) -> str:
    return f"feature {n} ({fid} {names[fid]})"


# ---------------------------------------------------------------------------------------------
# the loaded data


def test_loaded_counts_match_the_programme_facts(migrated):
    db = migrated
    assert query(db, "SELECT count(*) FROM streets") == [(29,)]
    assert dict(query(db, "SELECT kind, count(*) FROM units GROUP BY kind")) == {
        "municipal_department": 8, "construction_management": 11}
    assert dict(query(db, "SELECT level, count(*) FROM categories GROUP BY level")) == {
        "class": 3, "category": 7, "item": 59}
    assert query(db, "SELECT count(*) FROM zones") == [(4,)]
    # every item hangs under a category, every category under a class
    assert query(db, """SELECT count(*) FROM categories c JOIN categories p ON p.id = c.parent_id
                        WHERE (c.level, p.level) NOT IN (('item', 'category'), ('category', 'class'))""") == [(0,)]


def test_each_street_has_exactly_one_representative(migrated):
    per_street = query(migrated, """SELECT s.code, count(r.id) FROM streets s
                                    LEFT JOIN representatives r ON r.street_id = s.id GROUP BY s.code""")
    assert len(per_street) == 29
    assert {code: n for code, n in per_street if n != 1} == {}
    assert query(migrated, "SELECT count(*) FROM representatives") == [(29,)]


def test_streets_have_length_and_are_covered_by_zones(migrated):
    rows = query(migrated, """SELECT s.code, s.length_m,
                                     ST_Covers((SELECT ST_Union(geom_m) FROM zones), s.geom_m)
                              FROM streets s ORDER BY s.code""")
    assert len(rows) == 29
    assert [code for code, length, _ in rows if not length > 0] == []
    assert [code for code, _, covered in rows if not covered] == []
    # lengths are metres, not degrees: the README gives 26 of 29 between 0.8 and 4 km, the rest < 5.1 km
    assert all(700 < length < 5200 for _, length, _ in rows)


def test_stored_streets_and_routing_match_the_files(migrated):
    stored = {code: (name, json.loads(gj)) for code, name, gj in query(
        migrated, "SELECT code, name, ST_AsGeoJSON(ST_GeometryN(geom, 1), 6) FROM streets")}
    for f in _features("streets.geojson"):
        name, geom = stored[f["properties"]["id"]]
        assert name == f["properties"]["name"]
        assert geom["coordinates"] == f["geometry"]["coordinates"]
    overrides = query(migrated, """SELECT s.code, su.unit_type, u.code FROM street_units su
                                   JOIN streets s ON s.id = su.street_id JOIN units u ON u.id = su.unit_id
                                   ORDER BY s.code""")
    assert overrides == [(c, "area_construction", "M01") for c in ("S01", "S02", "S03", "S04", "S05")]
    zone_units = query(migrated, """SELECT z.code, u.code FROM zone_units zu JOIN zones z ON z.id = zu.zone_id
                                    JOIN units u ON u.id = zu.unit_id WHERE zu.unit_type = 'area_construction'""")
    assert dict(zone_units) == {"Z-GT": "C01", "Z-LH": "C02", "Z-TH": "C03", "Z-SS": "C05"}
    assert query(migrated, "SELECT count(*) FROM zone_units") == [(4 * 9,)]


# ---------------------------------------------------------------------------------------------
# idempotency and replacement


def test_loading_the_same_files_again_changes_nothing(db, settings):
    before = snapshot(db)
    ids = dict(query(db, "SELECT code, id FROM streets"))
    counts = load(db, GIS_DATA, settings.city_bbox)
    assert counts.changed == 0, counts.summary()
    assert set(counts.inserted.values()) | set(counts.updated.values()) | set(counts.deleted.values()) == {0}
    assert dict(query(db, "SELECT code, id FROM streets")) == ids
    assert snapshot(db) == before


def test_a_replacement_set_is_stored_and_reported(db, settings, tmp_path):
    original = snapshot(db)
    ids = dict(query(db, "SELECT code, id FROM streets"))
    north = 0.0005  # about 55 m
    changed = copy_gis_data(
        tmp_path,
        set_property("streets.geojson", "S05", "name", "渤海大道东段"),
        map_coords("streets.geojson", "S05", lambda x, y: (x, round(y + north, 6))),
        set_cell("categories.csv", "item_code", "0103", "deadline_days", "0.5"),
        set_cell("representatives.csv", "code", "R01", "street_id", "S02"),  # R01 and R02 swap streets
        set_cell("representatives.csv", "code", "R02", "street_id", "S01"),
    )
    old_y = query(db, "SELECT ST_Y(ST_StartPoint(ST_GeometryN(geom_m, 1))) FROM streets WHERE code = 'S05'")[0][0]
    try:
        counts = load(db, changed, settings.city_bbox)
        assert {t: n for t, n in counts.updated.items() if n} == {
            "streets": 1, "categories": 1, "representatives": 2}, counts.summary()
        assert sum(counts.inserted.values()) == sum(counts.deleted.values()) == 0, counts.summary()
        assert counts.changed == 4

        assert query(db, "SELECT name FROM streets WHERE code = 'S05'") == [("渤海大道东段",)]
        assert dict(query(db, "SELECT code, id FROM streets")) == ids  # updated in place, not re-inserted
        new_y = query(db, "SELECT ST_Y(ST_StartPoint(ST_GeometryN(geom_m, 1))) FROM streets WHERE code = 'S05'")[0][0]
        assert new_y - old_y == pytest.approx(55.6, abs=1.0)  # the metric copy follows the new geometry
        assert query(db, "SELECT deadline_days FROM categories WHERE code = '0103'")[0][0] == pytest.approx(0.5)
        assert dict(query(db, """SELECT r.code, s.code FROM representatives r JOIN streets s ON s.id = r.street_id
                                 WHERE r.code IN ('R01', 'R02')""")) == {"R01": "S02", "R02": "S01"}
    finally:
        restore(db, settings.city_bbox)
    assert snapshot(db) == original


# Valid replacement sets whose storing currently fails because rows are deleted before the rows
# that refer to them are re-pointed (see the report: _store should upsert everything, then delete).
RETIRE_UNIT = (
    drop_row("units.csv", "code", "C05"),
    edit_geojson("zones.geojson", lambda doc: feature(doc, "Z-SS")["properties"]["units"].update(
        area_construction="C03")),
)
RENAME_STREET_CODE = (
    set_property("streets.geojson", "S29", "id", "S30"),
    set_cell("representatives.csv", "code", "R29", "street_id", "S30"),
)


@pytest.mark.parametrize("mutations, check", [
    pytest.param(RETIRE_UNIT, ("SELECT u.code FROM zone_units zu JOIN zones z ON z.id = zu.zone_id "
                               "JOIN units u ON u.id = zu.unit_id "
                               "WHERE z.code = 'Z-SS' AND zu.unit_type = 'area_construction'", [("C03",)]),
                 id="retire-a-unit-and-reroute-its-zone"),
    pytest.param(RENAME_STREET_CODE, ("SELECT s.code FROM representatives r JOIN streets s ON s.id = r.street_id "
                                      "WHERE r.code = 'R29'", [("S30",)]),
                 id="renumber-a-street-keeping-its-representative"),
])
def test_a_replacement_that_retires_a_referenced_code_is_stored(db, settings, tmp_path, mutations, check):
    try:
        counts = load(db, copy_gis_data(tmp_path, *mutations), settings.city_bbox)
        assert query(db, check[0]) == check[1]
        assert counts.inserted.get("streets", 0) + counts.deleted.get("units", 0) == 1, counts.summary()
    finally:
        restore(db, settings.city_bbox)
    # the retired row comes back under a new id, so compare content: the files load as a no-op
    assert load(db, GIS_DATA, settings.city_bbox).changed == 0


# ---------------------------------------------------------------------------------------------
# all-or-nothing at the database level


def _user_id(db, username: str) -> int:
    return query(db, "SELECT id FROM users WHERE username = :u", u=username)[0][0]


def _file_report(db, settings, streets, street: str, category: str) -> None:
    lon, lat = streets.point(street, 0.5, 5.0)
    rules = IntakeRules(city_bbox=settings.city_bbox, snap_tolerance_m=settings.snap_tolerance_m,
                        photo_dir=settings.photo_dir, photo_max_bytes=10_000_000, photo_max_px=2048)
    with db.transaction() as session:
        report, created = submit_report(
            session, Reporter(user_id=_user_id(db, "dispatcher"), role="dispatcher", street_id=None),
            Submission(client_id=str(uuid.uuid4()), lat=lat, lon=lon, category=category,
                       description="路边垃圾堆积"), rules)
    assert created
    assert query(db, "SELECT s.code, c.code FROM reports r JOIN streets s ON s.id = r.street_id "
                     "JOIN categories c ON c.id = r.category_id") == [(street, category)]


DROP_S29 = (drop_feature("streets.geojson", "S29"), drop_row("representatives.csv", "code", "R29"))
# A change that is stored before the failing step, so the rollback is really exercised.
RENAME_S05 = set_property("streets.geojson", "S05", "name", "渤海大道东段")


@pytest.mark.parametrize("case", ["report-on-dropped-street", "report-in-dropped-category",
                                  "user-of-dropped-representative"])
def test_a_set_that_cannot_be_stored_changes_nothing(db, settings, users, streets, tmp_path, case):
    if case == "report-on-dropped-street":
        # rep29's account would block dropping R29 first; remove it so the report is what conflicts
        with db.transaction() as session:
            session.execute(text("DELETE FROM users WHERE username = 'rep29'"))
        _file_report(db, settings, streets, "S29", "0401")
        mutations, table = (RENAME_S05, *DROP_S29), "reports"
    elif case == "report-in-dropped-category":
        _file_report(db, settings, streets, "S12", "0401")
        mutations, table = (RENAME_S05, drop_row("categories.csv", "item_code", "0401")), "reports"
    else:
        mutations, table = (RENAME_S05, *DROP_S29), "users"
    directory = copy_gis_data(tmp_path, *mutations)
    assert_refused(db, settings, directory, str(directory), "database", "conflicts with stored data",
                       f'on table "{table}"')
    assert query(db, "SELECT name FROM streets WHERE code = 'S05'") == [(STREET_NAMES["S05"],)]


def test_a_caller_that_swallows_the_error_and_commits_stores_nothing(db, settings, users, streets, tmp_path):
    """The loader's own savepoint undoes its partial writes, whatever the caller does next."""
    _file_report(db, settings, streets, "S12", "0401")
    directory = copy_gis_data(tmp_path, RENAME_S05, drop_row("categories.csv", "item_code", "0401"))
    before = snapshot(db)
    with db.transaction() as session:
        with pytest.raises(GisDataError):
            load_city_data(session, directory, settings.city_bbox)
    assert snapshot(db) == before


# ---------------------------------------------------------------------------------------------
# refusals: geometry


@pytest.mark.parametrize("file, fid, geometry, problem", [
    pytest.param("streets.geojson", "S05", {"type": "LineString", "coordinates": [[121.1, 41.07], [121.1, 41.07]]},
                 "geometry is invalid (Too few points", id="street-single-repeated-coordinate"),
    pytest.param("zones.geojson", "Z-SS", {"type": "Polygon", "coordinates": [
        [[121.05, 41.05], [121.12, 41.09], [121.12, 41.05], [121.05, 41.09], [121.05, 41.05]]]},
                 "geometry is invalid (Self-intersection", id="zone-self-intersecting"),
    pytest.param("streets.geojson", "S05", {"type": "LineString", "coordinates": []},
                 "geometry is empty", id="street-empty-geometry"),
    pytest.param("zones.geojson", "Z-SS", {"type": "Polygon", "coordinates": []},
                 "geometry is empty", id="zone-empty-geometry"),
    pytest.param("streets.geojson", "S05", None, "has no geometry", id="street-null-geometry"),
    pytest.param("streets.geojson", "S05", {"type": "Point", "coordinates": [121.1, 41.07]},
                 "geometry is Point; expected LineString or MultiLineString", id="street-point"),
    pytest.param("zones.geojson", "Z-SS", {"type": "LineString", "coordinates": [[121.05, 41.05], [121.12, 41.05]]},
                 "geometry is LineString; expected Polygon or MultiPolygon", id="zone-linestring"),
])
def test_bad_geometry_is_refused(db, settings, tmp_path, file, fid, geometry, problem):
    n = {"S05": 5, "Z-SS": 4}[fid]
    names = STREET_NAMES if file == "streets.geojson" else ZONE_NAMES
    directory = copy_gis_data(tmp_path, set_geometry(file, fid, geometry))
    assert_refused(db, settings, directory, file, where_feature(n, fid, names), problem)


@pytest.mark.parametrize("crs_name", ["EPSG:3857", "urn:ogc:def:crs:EPSG::3857"])
def test_a_crs_member_naming_a_projected_crs_is_refused(db, settings, tmp_path, crs_name):
    def add_crs(doc):
        doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    directory = copy_gis_data(tmp_path, edit_geojson("streets.geojson", add_crs))
    assert_refused(db, settings, directory, "streets.geojson", "crs", f"is {crs_name}",
                   "must be WGS-84 (or CGCS2000) longitude/latitude")


def test_a_crs_member_naming_wgs84_is_accepted(db, settings, tmp_path):
    def add_crs(doc):
        doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    directory = copy_gis_data(tmp_path, edit_geojson("zones.geojson", add_crs))
    assert load(db, directory, settings.city_bbox).changed == 0


def test_projected_coordinates_without_a_crs_member_are_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, map_coords("streets.geojson", "S05", _to_metric))
    e = assert_refused(db, settings, directory, "streets.geojson", where_feature(5, "S05"),
                       "are not longitude/latitude", "wrong CRS?")
    assert re.search(r"\(\d{6}\.\d, \d{7}\.\d\)", e.problem), e.problem  # shows the metre values it saw


def test_coordinates_outside_the_city_extent_are_refused(db, settings, tmp_path):
    # half a degree east: still plausible longitude/latitude, but beyond the city (max 121.45 E)
    directory = copy_gis_data(tmp_path, map_coords("streets.geojson", "S05", lambda x, y: (x + 0.5, y)))
    assert_refused(db, settings, directory, "streets.geojson", where_feature(5, "S05"),
                   "lie outside the city extent", str(tuple(settings.city_bbox)))


@pytest.mark.parametrize("file, fid, n", [("streets.geojson", "S05", 5), ("zones.geojson", "Z-SS", 4)])
def test_coordinates_in_lat_lon_order_are_refused_as_such(db, settings, tmp_path, file, fid, n):
    names = STREET_NAMES if file == "streets.geojson" else ZONE_NAMES
    directory = copy_gis_data(tmp_path, map_coords(file, fid, lambda x, y: (y, x)))
    assert_refused(db, settings, directory, file, where_feature(n, fid, names),
                   "coordinates are in latitude, longitude order; GeoJSON is [lon, lat]")


# ---------------------------------------------------------------------------------------------
# refusals: zones


def _gap_m(db, street: str, dropped_zone: str) -> float:
    """Metres of `street` outside every zone but `dropped_zone`, computed by PostGIS."""
    return query(db, """SELECT ST_Length(ST_Difference(s.geom_m,
                              (SELECT ST_Union(geom_m) FROM zones WHERE code <> :z)))
                        FROM streets s WHERE s.code = :s""", s=street, z=dropped_zone)[0][0]


@pytest.mark.parametrize("zone", ["Z-SS", "Z-LH"])
def test_a_zone_gap_under_a_street_names_the_street_and_the_metres(db, settings, tmp_path, zone):
    # the first street (in file order) that would leave the zones by more than 1 m
    gaps = [(code, _gap_m(db, code, zone)) for code in sorted(STREET_NAMES)]
    street, gap = next((c, g) for c, g in gaps if g > 1.0)
    assert gap > 100  # a real gap, not rounding
    directory = copy_gis_data(tmp_path, drop_feature("zones.geojson", zone))
    e = assert_refused(db, settings, directory, "zones.geojson", "coverage",
                       f"of street {street} {STREET_NAMES[street]} lie in no zone")
    metres = re.match(r"([\d,]+) m of street ", e.problem)
    assert metres, e.problem
    assert float(metres.group(1).replace(",", "")) == pytest.approx(gap, abs=1.0)


def test_a_small_notch_in_a_zone_under_a_street_is_refused(db, settings, tmp_path):
    """Shrink Z-SS's western edge 121.05 -> 121.07 between 41.0600 and 41.0700 N: 凌西南街 (S21,
    121.062 E, 41.062-41.078 N) then crosses ~0.9 km of no zone; no other street comes near."""
    def notch(doc):
        ring = feature(doc, "Z-SS")["geometry"]["coordinates"][0]
        i = ring.index([121.05, 41.05])  # the south-west corner; the ring runs north -> south here
        ring[i:i] = [[121.05, 41.07], [121.07, 41.07], [121.07, 41.06], [121.05, 41.06]]
    directory = copy_gis_data(tmp_path, edit_geojson("zones.geojson", notch))
    expected = query(db, """SELECT ST_Length(ST_Intersection(geom_m, ST_Transform(ST_MakeEnvelope(
                                121.05, 41.06, 121.07, 41.07, 4326), :srid))) FROM streets WHERE code = 'S21'""",
                     srid=METRIC_SRID)[0][0]
    e = assert_refused(db, settings, directory, "zones.geojson", "coverage",
                       f"of street S21 {STREET_NAMES['S21']} lie in no zone")
    assert float(e.problem.split(" m of")[0].replace(",", "")) == pytest.approx(expected, abs=1.0)
    assert 800 < expected < 1000


def test_overlapping_zones_are_refused_with_the_overlap_area(db, settings, tmp_path):
    square = [[121.10, 41.12], [121.11, 41.12], [121.11, 41.13], [121.10, 41.13], [121.10, 41.12]]

    def add_zone(doc):
        new = json.loads(json.dumps(feature(doc, "Z-GT")))
        new["id"] = "Z-NEW"
        new["properties"].update(id="Z-NEW", name="新区")
        new["geometry"] = {"type": "Polygon", "coordinates": [square]}
        doc["features"].append(new)
    overlap = query(db, """SELECT ST_Area(ST_Intersection(geom_m, ST_Transform(ST_SetSRID(
                               ST_GeomFromGeoJSON(:g), 4326), :srid))) FROM zones WHERE code = 'Z-GT'""",
                    g=json.dumps({"type": "Polygon", "coordinates": [square]}), srid=METRIC_SRID)[0][0]
    assert overlap > 500_000  # the square lies inside 古塔区
    directory = copy_gis_data(tmp_path, edit_geojson("zones.geojson", add_zone))
    e = assert_refused(db, settings, directory, "zones.geojson", where_feature(1, "Z-GT", ZONE_NAMES),
                       "overlaps Z-NEW 新区 by ", "m²; zones must not overlap")
    area = re.search(r"by ([\d,]+) m²", e.problem)
    assert float(area.group(1).replace(",", "")) == pytest.approx(overlap, rel=1e-4)


# ---------------------------------------------------------------------------------------------
# refusals: references between files


def test_a_street_without_a_representative_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, drop_row("representatives.csv", "code", "R10"))
    assert_refused(db, settings, directory, "representatives.csv", f"street S10 {STREET_NAMES['S10']}",
                   "has no representative; every street needs exactly one")


def test_a_street_with_two_representatives_is_refused(db, settings, tmp_path):
    extra = {"code": "R30", "name": "代表23", "kind": "representative", "monthly_quota": "2", "street_id": "S10"}
    directory = copy_gis_data(tmp_path, add_row("representatives.csv", extra))
    assert_refused(db, settings, directory, "representatives.csv", f"street S10 {STREET_NAMES['S10']}",
                   "has 2 representatives (R10, R30); every street needs exactly one")


def test_a_representative_of_an_unknown_street_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, set_cell("representatives.csv", "code", "R05", "street_id", "S99"))
    assert_refused(db, settings, directory, "representatives.csv", "row 6",
                   "street S99 is not in streets.geojson")


def test_an_item_whose_unit_type_no_unit_has_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, set_cell("categories.csv", "item_code", "0103", "unit_type", "snow_removal"))
    assert_refused(db, settings, directory, "categories.csv", "row 4",
                   "item 0103 井盖缺失 has no handling unit", "no unit in units.csv has unit_type 'snow_removal'")


def test_an_item_whose_unit_type_a_zone_does_not_map_is_refused(db, settings, tmp_path):
    line = _first_row_line("categories.csv", "unit_type", "drainage")
    item = _csv_rows("categories.csv")[line - 2]
    directory = copy_gis_data(tmp_path, edit_geojson(
        "zones.geojson", lambda doc: feature(doc, "Z-LH")["properties"]["units"].pop("drainage")))
    assert_refused(db, settings, directory, "categories.csv", f"row {line}",
                   f"item {item['item_code']} {item['item_name']} has no handling unit in zone Z-LH 凌河区",
                   "maps no 'drainage' unit there")


def test_a_zone_naming_an_unknown_unit_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, edit_geojson(
        "zones.geojson", lambda doc: feature(doc, "Z-GT")["properties"]["units"].update(area_construction="C99")))
    assert_refused(db, settings, directory, "zones.geojson", where_feature(1, "Z-GT", ZONE_NAMES),
                   "maps area_construction to unit C99, which is not in units.csv")


def test_a_street_override_naming_an_unknown_unit_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, set_property("streets.geojson", "S03", "overrides",
                                                     {"area_construction": "M99"}))
    assert_refused(db, settings, directory, "streets.geojson", where_feature(3, "S03"),
                   "override names unit M99, which is not in units.csv")


def test_a_duplicate_street_id_is_refused(db, settings, tmp_path):
    directory = copy_gis_data(tmp_path, set_property("streets.geojson", "S02", "id", "S01"))
    assert_refused(db, settings, directory, "streets.geojson", f"feature 2 (S01 {STREET_NAMES['S02']})",
                   "street id S01 appears twice")


# ---------------------------------------------------------------------------------------------
# refusals: unreadable files


def test_malformed_json_names_the_line(db, settings, tmp_path):
    # streets.geojson holds one feature per line: S05 is on line 6
    lines = (GIS_DATA / "streets.geojson").read_text(encoding="utf-8").splitlines()
    assert '"id":"S05"' in lines[5]
    directory = copy_gis_data(tmp_path, edit_text("streets.geojson", '"name":"渤海大道"', 'name:"渤海大道"'))
    assert_refused(db, settings, directory, "streets.geojson", "line 6", "is not valid JSON")


@pytest.mark.parametrize("name", ["units.csv", "streets.geojson", "zones.geojson", "representatives.csv",
                                  "categories.csv"])
def test_a_missing_file_is_refused(db, settings, tmp_path, name):
    directory = copy_gis_data(tmp_path, delete_file(name))
    assert_refused(db, settings, directory, name, "file", "is missing")


@pytest.mark.parametrize("name, column", [("categories.csv", "deadline_days"), ("units.csv", "unit_type"),
                                          ("representatives.csv", "street_id")])
def test_a_csv_missing_a_column_is_refused(db, settings, tmp_path, name, column):
    directory = copy_gis_data(tmp_path, drop_column(name, column))
    assert_refused(db, settings, directory, name, "header", f"missing column(s) {column}")
