"""The HTTP API: auth, report submission (JSON and multipart), idempotent repeats, GeoJSON listings."""
import io
import uuid

import pytest

from tests.conftest import report_body
from tests.test_intake import jpeg_with_gps


def test_submitting_requires_a_valid_key(client, streets):
    body = report_body(*streets.point("S03", 0.5))
    assert client.post("/api/v1/reports", json=body).status_code == 401
    r = client.post("/api/v1/reports", json=body, headers={"Authorization": "Bearer ga_wrong"})
    assert r.status_code == 401 and r.json["error"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/reports").status_code == 401


def test_a_replaced_key_stops_working(client, db, users, streets):
    from geoapp.domain.accounts import issue_api_key
    old = users["rep01"]
    with db.transaction() as s:
        issue_api_key(s, "rep01")
    r = client.get("/api/v1/reports", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401


def test_created_then_repeated(client, auth, streets):
    body = report_body(*streets.point("S03", 0.5, 6))
    first = client.post("/api/v1/reports", json=body, headers=auth("rep01"))
    assert first.status_code == 201, first.json
    j = first.json
    for key in ("id", "client_id", "status", "lat", "lon", "street", "distance_m", "position_m", "on_own_street",
                "category", "unit", "dispatch_reason", "created_at"):
        assert key in j
    assert j["client_id"] == body["client_id"] and j["status"] == "submitted"
    assert j["street"]["name"] == "解放路" and set(j["unit"]) >= {"id", "name"}
    again = client.post("/api/v1/reports", json=body, headers=auth("rep01"))
    assert again.status_code == 200 and again.json == j


def test_refusals_say_why(client, auth, streets):
    lon, lat = streets.point("S03", 0.5, 84)
    r = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth())
    assert r.status_code == 422
    assert r.json["error"] == "off_street"
    assert "解放路" in r.json["message"] and "84" in r.json["message"]
    r = client.post("/api/v1/reports?lang=en", json=report_body(lon, lat), headers=auth())
    assert r.json["message"] == "84 m from Jiefang Road; reports must be within 30 m of a key street."
    r = client.post("/api/v1/reports?lang=en", json=report_body(lat, lon), headers=auth())  # swapped
    assert r.status_code == 400 and r.json["error"] == "swapped_coordinates"
    r = client.post("/api/v1/reports", json=report_body(116.39, 39.91), headers=auth())
    assert r.json["error"] == "outside_city"
    r = client.post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5), category="nope"), headers=auth())
    assert r.json["error"] == "unknown_category"
    r = client.post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5), client_id="abc"), headers=auth())
    assert r.json["error"] == "bad_input" and "client_id" in r.json["message"]
    r = client.post("/api/v1/reports", data="not json", headers=auth() | {"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    assert client.get("/api/v1/reports", headers=auth()).json["numberMatched"] == 0


def test_multipart_with_a_photo(client, auth, streets):
    body = report_body(*streets.point("S03", 0.5))
    data = {k: str(v) for k, v in body.items()}
    data["photo"] = (io.BytesIO(jpeg_with_gps()), "IMG_0001.JPG")
    r = client.post("/api/v1/reports", data=data, headers=auth(), content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    assert r.json["has_photo"] is True
    data["photo"] = (io.BytesIO(b"%PDF-1.4 not an image"), "x.jpg")
    data["client_id"] = str(uuid.uuid4())
    r = client.post("/api/v1/reports", data=data, headers=auth(), content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"] == "bad_photo"


def test_an_upload_over_the_limit_gets_413_json(app, client, auth, streets):
    limit = app.config["MAX_CONTENT_LENGTH"]
    data = {k: str(v) for k, v in report_body(*streets.point("S03", 0.5)).items()}
    data["photo"] = (io.BytesIO(b"\xff" * (limit + 1)), "big.jpg")
    r = client.post("/api/v1/reports", data=data, headers=auth(), content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"] == "photo_too_large"


def test_unit_handlers_may_not_submit(client, db, streets):
    from sqlalchemy import text
    from geoapp.domain.accounts import issue_api_key
    with db.transaction() as s:
        unit = s.execute(text("SELECT id FROM units ORDER BY code LIMIT 1")).scalar_one()
        s.execute(text("INSERT INTO users (username, display_name, role, unit_id) "
                       "VALUES ('unit1', '单位', 'unit_handler', :u)"), {"u": unit})
        key = issue_api_key(s, "unit1")
    r = client.post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5)),
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403


@pytest.fixture
def three_reports(client, auth, streets):
    ids = []
    for code in ("S03", "S26", "S05"):  # 解放路 (centre), 印染街 (east), 渤海大道 (south)
        r = client.post("/api/v1/reports", json=report_body(*streets.point(code, 0.5)), headers=auth())
        ids.append(r.json["id"])
    return ids


def test_listing_is_geojson_with_bbox_status_and_paging(client, auth, three_reports):
    r = client.get("/api/v1/reports", headers=auth())
    fc = r.json
    assert fc["type"] == "FeatureCollection" and fc["numberMatched"] == 3
    f = fc["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
    lon, lat = f["geometry"]["coordinates"]
    assert 121 < lon < 121.3 and 41 < lat < 41.3  # RFC 7946 order: lon, lat
    east = client.get("/api/v1/reports?bbox=121.18,41.0,121.3,41.2", headers=auth()).json
    assert [f["properties"]["street"]["code"] for f in east["features"]] == ["S26"]
    assert east["bbox"] == [121.18, 41.0, 121.3, 41.2]
    assert client.get("/api/v1/reports?status=submitted", headers=auth()).json["numberMatched"] == 3
    page1 = client.get("/api/v1/reports?limit=2", headers=auth()).json
    assert page1["numberReturned"] == 2 and page1["links"][0]["rel"] == "next"
    page2 = client.get("/api/v1/reports?limit=2&offset=2", headers=auth()).json
    assert page2["numberReturned"] == 1
    seen = {f["id"] for f in page1["features"] + page2["features"]}
    assert seen == set(three_reports)


@pytest.mark.parametrize("query", ["bbox=1,2,3", "bbox=121.3,41,121.1,41.2", "status=lost", "limit=0", "limit=x"])
def test_listing_refuses_bad_parameters(client, auth, query):
    r = client.get(f"/api/v1/reports?{query}", headers=auth())
    assert r.status_code == 400 and r.json["error"] == "bad_input"


def test_streets_as_geojson(client):
    fc = client.get("/api/v1/streets").json
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 29
    for f in fc["features"]:
        assert f["geometry"]["type"] in ("LineString", "MultiLineString")
        assert f["properties"]["length_m"] > 500
        assert f["properties"]["representative"]["monthly_quota"] in (2, 4)


def test_categories_hierarchy(client):
    classes = client.get("/api/v1/categories").json["classes"]
    assert len(classes) == 3
    groups = [g for c in classes for g in c["children"]]
    items = [i for g in groups for i in g["children"]]
    assert len(groups) == 7 and len(items) == 59
    assert all(i["code"] and i["unit_type"] and i["deadline_days"] > 0 for i in items)


def test_a_form_with_no_file_chosen_is_a_report_without_photo(client, auth, streets):
    data = {k: str(v) for k, v in report_body(*streets.point("S03", 0.5)).items()}
    data["photo"] = (io.BytesIO(b""), "")
    r = client.post("/api/v1/reports", data=data, headers=auth(), content_type="multipart/form-data")
    assert r.status_code == 201 and r.json["has_photo"] is False
