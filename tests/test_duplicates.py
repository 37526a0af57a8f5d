"""Duplicate suggestions and merging a group (geoapp/domain/duplicates.py, web/duplicates.py), on
constructed cases against the real PostGIS: reports are filed through the API, so they are snapped to
their street and measured along it exactly as a phone's are."""
import datetime as dt

import pytest
from sqlalchemy import text

from geoapp.domain.duplicates import duplicate_groups
from tests.conftest import report_body


@pytest.fixture
def file(client, auth, streets):
    """file("rep03", "S03", 120) -> the report JSON of one filed `along` metres from the street's start."""
    lengths = {}

    def report(rep: str, street: str, along: float, category: str = "0401", offset: float = 3.0) -> dict:
        if street not in lengths:
            lengths[street] = streets.line(street).length
        lon, lat = streets.point(street, along / lengths[street], offset)
        r = client.post("/api/v1/reports", json=report_body(lon, lat, category=category), headers=auth(rep))
        assert r.status_code == 201, r.json
        return r.json
    return report


@pytest.fixture
def groups(client, auth, users):
    def get(**query) -> list[dict]:
        r = client.get("/api/v1/duplicates", query_string=query, headers=auth("dispatcher"))
        assert r.status_code == 200, r.json
        return r.json["groups"]
    return get


def member_ids(group: dict) -> list[int]:
    return [m["id"] for m in group["members"]]


def test_fifteen_metres_apart_are_grouped_twenty_five_are_not(file, groups):
    a = file("rep03", "S03", 200)
    b = file("rep04", "S03", 215)
    file("rep03", "S03", 600)
    file("rep04", "S03", 625)
    found = groups(street="S03")
    assert [member_ids(g) for g in found] == [[a["id"], b["id"]]]
    g = found[0]
    assert g["street"]["code"] == "S03" and g["item"]["code"] == "0401"
    assert g["span_m"] == pytest.approx(15, abs=0.5)
    assert g["members"][1]["gap_m"] == pytest.approx(15, abs=0.5) and g["members"][0]["gap_m"] is None
    assert g["survivor"] == a["id"]  # the earliest, none being dispatched yet
    assert all(m["version"] == 1 and m["mergeable"] for m in g["members"])
    # the distance is a setting and a parameter: at 30 m the second pair groups too
    assert len(groups(street="S03", along_m=30)) == 2


def test_a_chain_groups_whole(file, groups):
    """0, 15 and 30 m: each within 20 m of the next, so ONE group though its ends are 30 m apart
    (chaining, single linkage along the street: the same problem is not split at an arbitrary point)."""
    ids = [file("rep03", "S03", 300 + d)["id"] for d in (0, 15, 30)]
    found = groups()
    assert [member_ids(g) for g in found] == [ids]
    assert found[0]["span_m"] == pytest.approx(30, abs=0.5)


def test_a_different_item_is_not_a_duplicate(file, groups):
    file("rep03", "S03", 200, category="0401")
    file("rep04", "S03", 210, category="0102")
    assert groups() == []


def test_reports_at_a_crossing_on_different_streets_are_not_grouped(client, auth, groups):
    # S01 (north-south) crosses S03 (east-west) at 121.126, 41.116: one report a few metres along
    # each street from the crossing, ~7 m apart on the ground, same item, each snapped to its street
    on_s03 = client.post("/api/v1/reports", json=report_body(121.12606, 41.116), headers=auth("rep03")).json
    on_s01 = client.post("/api/v1/reports", json=report_body(121.126, 41.11604), headers=auth("rep01")).json
    assert (on_s03["street"]["code"], on_s01["street"]["code"]) == ("S03", "S01")
    assert groups() == []


def test_outside_the_time_window_is_not_a_duplicate(file, groups, db):
    old = file("rep03", "S03", 200)
    new = file("rep04", "S03", 210)
    with db.transaction() as s:
        s.execute(text("UPDATE reports SET created_at = now() - interval '40 days' WHERE id = :id"), {"id": old["id"]})
    assert groups() == []                          # default window: 30 days
    assert [member_ids(g) for g in groups(days=60)] == [[old["id"], new["id"]]]


def test_finished_reports_are_not_suggested(file, groups, client, auth):
    a = file("rep03", "S03", 200)
    file("rep04", "S03", 210)
    r = client.post(f"/api/v1/reports/{a['id']}/actions", json={"action": "reject", "version": 1, "reason": "不是问题"},
                    headers=auth("dispatcher"))
    assert r.status_code == 200, r.json
    assert groups() == []


def test_the_grouping_is_one_set_based_query(file, db):
    ids = [file("rep03", "S03", 100 + d)["id"] for d in (0, 12)]
    statements = []
    from sqlalchemy import event

    with db.sessionmaker() as s:
        conn = s.connection()
        event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        found = duplicate_groups(s, 20.0, dt.timedelta(days=30))
    assert [[m["id"] for m in g["members"]] for g in found] == [ids]
    assert len(statements) == 1


def merge(client, auth, into: int, members: list[dict], who="dispatcher"):
    return client.post("/api/v1/duplicates/merge", headers=auth(who),
                       json={"into": into, "members": [{"id": m["id"], "version": m["version"]} for m in members]})


def test_merging_a_group_in_one_action(client, auth, file, groups):
    a, b, c = (file(rep, "S03", along) for rep, along in (("rep03", 400), ("rep04", 410), ("rep05", 418)))
    assert client.get(f"/api/v1/reports/{a['id']}", headers=auth("rep04")).status_code == 404  # not her street
    group = groups()[0]
    r = merge(client, auth, a["id"], group["members"])
    assert r.status_code == 200, r.json
    assert r.json["id"] == a["id"] and r.json["status"] == "submitted"
    for other in (b, c):
        got = client.get(f"/api/v1/reports/{other['id']}", headers=auth("dispatcher")).json
        assert (got["status"], got["merged_into"], got["version"]) == ("merged", a["id"], 2)
        assert got["events"][-1]["action"] == "merge"
    assert groups() == []
    # the merged reports keep their reporters, and those reporters follow the survivor
    mine = client.get(f"/api/v1/reports/{b['id']}", headers=auth("rep04"))
    assert mine.status_code == 200 and mine.json["access"] == "full" and mine.json["merged_into"] == a["id"]
    survivor = client.get(f"/api/v1/reports/{a['id']}", headers=auth("rep04"))
    assert survivor.status_code == 200 and survivor.json["access"] == "summary"
    assert "description" not in survivor.json and "reporter" not in survivor.json


def test_a_stale_member_refuses_the_whole_merge(client, auth, file, groups):
    a, b, c = (file(rep, "S03", along) for rep, along in (("rep03", 400), ("rep04", 410), ("rep05", 418)))
    group = groups()[0]
    # someone accepts the last member after the page was drawn: it is now version 2
    r = client.post(f"/api/v1/reports/{c['id']}/actions", json={"action": "accept", "version": 1},
                    headers=auth("dispatcher"))
    assert r.status_code == 200 and r.json["version"] == 2
    r = merge(client, auth, a["id"], group["members"])
    assert r.status_code == 409 and r.json["error"] == "stale_version", r.json
    assert r.json["details"]["version"] == 2 and r.json["message"]
    statuses = [client.get(f"/api/v1/reports/{x['id']}", headers=auth("dispatcher")).json["status"] for x in (a, b, c)]
    assert statuses == ["submitted", "submitted", "accepted"]  # b, merged first, was rolled back
    # a stale survivor is refused too
    r = merge(client, auth, c["id"], group["members"])
    assert r.status_code == 409 and r.json["error"] == "stale_version"


def test_a_dispatched_report_is_the_default_survivor(client, auth, file, groups):
    early = file("rep03", "S03", 500)
    dispatched = file("rep04", "S03", 512)
    suggestion = client.get(f"/api/v1/reports/{dispatched['id']}/dispatch-suggestion", headers=auth("dispatcher")).json
    r = client.post(f"/api/v1/reports/{dispatched['id']}/actions", headers=auth("dispatcher"),
                    json={"action": "dispatch", "version": 1, "unit": suggestion["unit"]["code"]})
    assert r.status_code == 200, r.json
    group = groups()[0]
    assert group["survivor"] == dispatched["id"]
    assert {m["id"]: m["mergeable"] for m in group["members"]} == {early["id"]: True, dispatched["id"]: False}
    r = merge(client, auth, dispatched["id"], group["members"])
    assert r.status_code == 200 and r.json["status"] == "dispatched"
    # two dispatched reports cannot be merged (the lifecycle merges only reports being screened)
    assert groups() == []


def test_refusals(client, auth, file, groups):
    a, b = file("rep03", "S03", 200), file("rep04", "S03", 210)
    c = file("rep03", "S03", 215, category="0102")
    assert client.get("/api/v1/duplicates", headers=auth("rep03")).status_code == 403
    r = merge(client, auth, a["id"], [a, b], who="rep03")
    assert r.status_code == 403 and r.json["error"] == "action_forbidden"
    r = merge(client, auth, c["id"], [a, c])
    assert r.status_code == 409 and r.json["error"] == "action_refused"  # not the same item
    assert merge(client, auth, a["id"], [b, c]).json["error"] == "bad_input"  # survivor not a member
    assert merge(client, auth, a["id"], [a]).json["error"] == "bad_input"
    assert merge(client, auth, a["id"], [a, a]).json["error"] == "bad_input"
    assert merge(client, auth, 10**9, [a, {"id": 10**9, "version": 1}]).status_code == 404
    r = client.post("/api/v1/duplicates/merge", headers=auth("dispatcher"), json={"into": "x", "members": []})
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    for query in ({"along_m": "0"}, {"days": "-1"}, {"along_m": "nan"}):
        r = client.get("/api/v1/duplicates", query_string=query, headers=auth("dispatcher"))
        assert r.status_code == 400 and r.json["error"] == "bad_input", query
    r = client.get("/api/v1/duplicates?street=S99", headers=auth("dispatcher"))
    assert r.status_code == 400 and r.json["error"] == "unknown_street"
    assert [x["status"] for x in (client.get(f"/api/v1/reports/{x['id']}", headers=auth("dispatcher")).json
                                  for x in (a, b, c))] == ["submitted"] * 3


def test_merge_needs_the_csrf_token_on_a_cookie_session(client, signin, users, file):
    a, b = file("rep03", "S03", 200), file("rep04", "S03", 210)
    signin.login("dispatcher")
    body = {"into": a["id"], "members": [{"id": a["id"], "version": 1}, {"id": b["id"], "version": 1}]}
    assert client.post("/api/v1/duplicates/merge", json=body).status_code == 400
    token = signin.csrf_token("/console/duplicates")
    r = client.post("/api/v1/duplicates/merge", json=body, headers={"X-CSRFToken": token})
    assert r.status_code == 200, r.json


def test_the_page(client, signin, users, file):
    a, b = file("rep03", "S03", 200), file("rep04", "S03", 214)
    signin.login("rep03")
    assert client.get("/console/duplicates").status_code == 403
    signin.logout()
    signin.login("dispatcher")
    html = client.get("/console/duplicates").get_data(as_text=True)
    assert "合并" in html and f'value="{a["id"]}" checked' in html and f'data-id="{b["id"]}"' in html
    assert "与上一条沿街相距 14 米" in html and "路边垃圾堆积" in html
    assert "<script>" not in html and "style=" not in html
    en = client.get("/console/duplicates?lang=en").get_data(as_text=True)
    assert 'lang="en"' in en
    assert "没有疑似重复的问题" in client.get("/console/duplicates?along_m=5&lang=zh").get_data(as_text=True)
