"""Open data exports (geoapp/web/exports.py): GeoJSON, CSV, XLSX and GeoPackage of the reports with
the console's filters, and the streets as GeoJSON — the same reports and numbers as the API, user text
kept as text (no formula runs in a spreadsheet), and only for the programme's readers."""
from __future__ import annotations

import csv
import io
import sqlite3

import pytest
from openpyxl import load_workbook

from tests.conftest import report_body

HOSTILE = "=HYPERLINK(\"http://evil.example\",\"点我\")"


@pytest.fixture
def three(client, auth, streets):
    """Three reports: two on S03 (one with a formula-like description), one on S07."""
    ids = []
    for code, frac, desc, rep in (("S03", 0.2, "井盖缺失", "rep03"), ("S03", 0.7, HOSTILE, "rep03"),
                                  ("S07", 0.5, "-1+2 路灯不亮", "rep07")):
        lon, lat = streets.point(code, frac, 2)
        r = client.post("/api/v1/reports", json=report_body(lon, lat, description=desc), headers=auth(rep))
        assert r.status_code == 201, r.get_json()
        ids.append(r.get_json()["id"])
    return ids


def test_geojson_is_the_api_s_features_with_filters(client, auth, three):
    r = client.get("/api/v1/exports/reports.geojson?street=S03", headers=auth("leader"))
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    assert "attachment" in r.headers["Content-Disposition"]
    body = r.get_json(force=True)
    assert body["type"] == "FeatureCollection"
    assert [f["id"] for f in body["features"]] == three[:2]
    api = client.get("/api/v1/reports?street=S03&order=oldest", headers=auth("leader")).get_json()
    assert body["features"] == api["features"]
    lon, lat = body["features"][0]["geometry"]["coordinates"]
    assert 120 < lon < 122 and 40 < lat < 42      # RFC 7946: longitude first


def test_csv_opens_in_excel_and_runs_no_formula(client, auth, three):
    r = client.get("/api/v1/exports/reports.csv", headers=auth("dispatcher"))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data(as_text=True)
    assert text.startswith("\ufeff")              # Excel reads UTF-8 Chinese only with the BOM
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:3] == ["编号", "状态", "大类"]
    by_id = {int(row[0]): row for row in rows[1:]}
    assert set(by_id) == set(three)
    desc = rows[0].index("描述")
    assert by_id[three[1]][desc] == "'" + HOSTILE
    assert by_id[three[2]][desc] == "'-1+2 路灯不亮"
    assert by_id[three[0]][desc] == "井盖缺失"
    assert float(by_id[three[0]][rows[0].index("距起点（米）")]) > 0


def test_xlsx_holds_numbers_as_numbers_and_text_as_text(client, auth, three):
    r = client.get("/api/v1/exports/reports.xlsx?lang=en", headers=auth("admin"))
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.data)).active
    header = [c.value for c in ws[1]]
    assert header[:3] == ["No.", "Status", "Class"], header
    rows = {row[0].value: row for row in ws.iter_rows(min_row=2)}
    assert set(rows) == set(three)
    desc = header.index("Description")
    cell = rows[three[1]][desc]
    assert cell.value == HOSTILE and cell.data_type == "s"    # a string, never a formula
    position = rows[three[0]][header.index("Distance from start (m)")].value
    api = client.get(f"/api/v1/reports/{three[0]}", headers=auth("admin")).get_json()
    assert isinstance(position, (int, float)) and position == pytest.approx(api["position_m"], abs=0.1)


def test_geopackage_has_a_point_layer_in_wgs84(client, auth, three, tmp_path):
    r = client.get("/api/v1/exports/reports.gpkg?street=S07", headers=auth("leader"))
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    path = tmp_path / "r.gpkg"
    path.write_bytes(r.data)
    with sqlite3.connect(path) as con:
        contents = con.execute("SELECT table_name, data_type, srs_id FROM gpkg_contents").fetchall()
        assert contents == [("reports", "features", 4326)]
        rows = con.execute("SELECT id, street, description FROM reports").fetchall()
    assert [(r[0], r[2]) for r in rows] == [(three[2], "-1+2 路灯不亮")] and rows[0][1]


def test_streets_geojson_has_the_29_streets(client, auth):
    body = client.get("/api/v1/exports/streets.geojson", headers=auth("leader")).get_json(force=True)
    assert len(body["features"]) == 29


def test_only_the_programme_s_readers_export(client, auth, three):
    for who in ("rep03", "handler01"):
        r = client.get("/api/v1/exports/reports.csv", headers=auth(who))
        assert r.status_code == 403, who
    assert client.get("/api/v1/exports/reports.csv").status_code == 401
    assert client.get("/api/v1/exports/reports.pdf", headers=auth("leader")).status_code == 404


def test_a_bad_filter_is_refused_naming_it(client, auth):
    r = client.get("/api/v1/exports/reports.csv?from=2026-13-01", headers=auth("leader"))
    assert r.status_code == 400 and r.get_json()["message"].startswith("开始日期")


def test_an_export_over_the_limit_is_refused_with_the_count(client, auth, three, monkeypatch):
    from geoapp.web import exports
    monkeypatch.setattr(exports, "MAX_ROWS", 2)
    r = client.get("/api/v1/exports/reports.xlsx", headers=auth("leader"))
    assert r.status_code == 413 and r.get_json()["error"] == "export_too_large"
    assert "3" in r.get_json()["message"]
