"""GET /api/v1/me, GET /api/v1/snap, and the visibility rule on the reports API (domain/visibility.py)."""
import pytest
from sqlalchemy import select

from geoapp.domain.reports import ReportFilter, access_to, list_reports
from geoapp.domain.visibility import Viewer
from geoapp.models import User
from tests.conftest import report_body


@pytest.fixture
def post(client, auth, streets):
    """post(user, street code, fraction along it, metres off it, **fields) → the created report."""
    def send(user, street, fraction, offset=0.0, **extra):
        r = client.post("/api/v1/reports", json=report_body(*streets.point(street, fraction, offset), **extra),
                        headers=auth(user))
        assert r.status_code == 201, r.json
        return r.json
    return send


def test_me_for_a_representative(client, auth, streets):
    r = client.get("/api/v1/me", headers=auth("rep03"))
    assert r.status_code == 200
    body = r.json
    assert body["user"]["username"] == "rep03" and body["street"]["code"] == "S03"
    assert body["street"]["geometry"]["type"] in ("LineString", "MultiLineString")
    assert body["quota"]["taken"] == 0 and body["quota"]["quota"] in (2, 4)
    assert 1 <= body["quota"]["days_left"] <= 31
    assert body["quota"]["text"] == f'已拍 0 / {body["quota"]["quota"]} 张'
    en = client.get("/api/v1/me?lang=en", headers=auth("rep03")).json
    assert en["quota"]["text"] != body["quota"]["text"]


def test_me_for_a_dispatcher_has_no_street_or_quota(client, auth, users):
    body = client.get("/api/v1/me", headers=auth("dispatcher")).json
    assert body["street"] is None and body["quota"] is None and body["user"]["role"] == "dispatcher"


def test_snap_is_intakes_rule(client, auth, streets):
    lon, lat = streets.point("S03", 0.5, 6)
    r = client.get(f"/api/v1/snap?lat={lat}&lon={lon}", headers=auth("rep03"))
    assert r.status_code == 200, r.json
    assert r.json["street"]["code"] == "S03" and 5 < r.json["distance_m"] < 7
    assert r.json["on_own_street"] is True
    assert "距街路 6 米" in r.json["text"]
    # what intake stores for the same point is what the preview said
    made = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep03")).json
    assert made["position_m"] == r.json["position_m"] and made["street"]["code"] == "S03"


def test_snap_refuses_as_intake_does(client, auth, streets):
    lon, lat = streets.point("S03", 0.5, 200)
    preview = client.get(f"/api/v1/snap?lat={lat}&lon={lon}", headers=auth("rep03"))
    sent = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep03"))
    assert preview.status_code == sent.status_code == 422
    assert preview.json["error"] == sent.json["error"] == "off_street"
    assert preview.json["message"] == sent.json["message"]
    assert client.get("/api/v1/snap?lat=abc&lon=1", headers=auth("rep03")).status_code == 400
    assert client.get(f"/api/v1/snap?lat={lat}&lon={lon}&crs=bd09", headers=auth("rep03")).json["error"] == "unknown_crs"
    assert client.get(f"/api/v1/snap?lat={lat}&lon={lon}").status_code == 401


def test_snap_lists_open_reports_of_the_same_item_nearby(client, auth, streets, post):
    first = post("rep03", "S03", 0.5, 3, category="0401")
    post("rep03", "S03", 0.9, 3, category="0401")     # far along the street
    post("dispatcher", "S03", 0.5, 3, category="0101")  # another item
    lon, lat = streets.point("S03", 0.5, -4)
    body = client.get(f"/api/v1/snap?lat={lat}&lon={lon}&category=0401", headers=auth("rep03")).json
    assert [r["id"] for r in body["nearby"]] == [first["id"]]
    assert body["nearby_text"] == "附近已有 1 条同类问题"
    none = client.get(f"/api/v1/snap?lat={lat}&lon={lon}&category=0402", headers=auth("rep03")).json
    assert none["nearby"] == [] and none["nearby_text"] is None


def test_a_representative_sees_own_in_full_own_street_as_summary_nothing_else(client, auth, post):
    mine = post("rep03", "S03", 0.3, description="我的描述")
    neighbour = post("dispatcher", "S03", 0.6, description="调度员的描述")
    elsewhere = post("rep12", "S12", 0.5)
    full = client.get(f"/api/v1/reports/{mine['id']}", headers=auth("rep03")).json
    assert full["access"] == "full" and full["description"] == "我的描述"
    assert [e["action"] for e in full["events"]] == ["submit"]
    summary = client.get(f"/api/v1/reports/{neighbour['id']}", headers=auth("rep03")).json
    assert summary["access"] == "summary" and "description" not in summary and "reporter" not in summary
    assert "events" not in summary and summary["status"] and summary["category"]["code"]
    hidden = client.get(f"/api/v1/reports/{elsewhere['id']}", headers=auth("rep03"))
    missing = client.get("/api/v1/reports/99999999", headers=auth("rep03"))
    assert hidden.status_code == missing.status_code == 404 and hidden.json == missing.json
    listed = client.get("/api/v1/reports?limit=1000", headers=auth("rep03")).json
    assert {f["id"] for f in listed["features"]} == {mine["id"], neighbour["id"]}
    assert listed["numberMatched"] == 2
    only_mine = client.get("/api/v1/reports?mine=1", headers=auth("rep03")).json
    assert [f["id"] for f in only_mine["features"]] == [mine["id"]]
    dispatcher = client.get("/api/v1/reports?limit=1000", headers=auth("dispatcher")).json
    assert dispatcher["numberMatched"] == 3
    assert all(f["properties"]["access"] == "full" for f in dispatcher["features"])
    by_street = client.get("/api/v1/reports?street=S12", headers=auth("dispatcher")).json
    assert [f["id"] for f in by_street["features"]] == [elsewhere["id"]]
    assert client.get("/api/v1/reports?mine=maybe", headers=auth("rep03")).status_code == 400


def test_the_sql_rule_and_the_row_rule_agree(db, post, users):
    for user, street in (("rep03", "S03"), ("dispatcher", "S03"), ("rep12", "S12"), ("rep12", "S03")):
        post(user, street, 0.2 + 0.1 * len(user) % 0.7)
    with db.sessionmaker() as s:
        everything, _ = list_reports(s, ReportFilter(limit=1000))
        for user in s.execute(select(User)).scalars():
            viewer = Viewer.of(user)
            seen, _ = list_reports(s, ReportFilter(viewer=viewer, limit=1000))
            assert {r["id"] for r in seen} == {r["id"] for r in everything if access_to(viewer, r) is not None}
