"""The leader role: reads every report (list, detail, the map) and acts on none — the lifecycle
refuses every action (403) and the dispatcher's console pages are closed to them."""
from __future__ import annotations

from tests.conftest import report_body


def _a_report(client, auth, streets) -> dict:
    lon, lat = streets.point("S05", 0.4, 2)
    r = client.post("/api/v1/reports", json=report_body(lon, lat, description="人行道破损"), headers=auth("rep05"))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_leader_reads_every_report_in_full(client, auth, streets):
    rep = _a_report(client, auth, streets)
    listed = client.get("/api/v1/reports", headers=auth("leader")).get_json()
    assert [f["id"] for f in listed["features"]] == [rep["id"]]
    one = client.get(f"/api/v1/reports/{rep['id']}", headers=auth("leader"))
    assert one.status_code == 200
    assert one.get_json()["description"] == "人行道破损"      # full, not the summary
    assert client.get(f"/api/v1/reports/{rep['id']}", headers=auth("rep07")).status_code == 404


def test_a_leader_acts_on_nothing(client, auth, streets):
    rep = _a_report(client, auth, streets)
    for action, extra in (("accept", {}), ("reject", {"reason": "不是问题"}), ("album", {"flag": True}),
                          ("void", {"reason": "误报"})):
        r = client.post(f"/api/v1/reports/{rep['id']}/actions", headers=auth("leader"),
                        json={"action": action, "version": rep["version"], **extra})
        assert r.status_code == 403, (action, r.get_json())
        assert r.get_json()["error"] == "action_forbidden"
    # the dispatcher still can: the refusal above is the leader's, not the report's
    r = client.post(f"/api/v1/reports/{rep['id']}/actions", headers=auth("dispatcher"),
                    json={"action": "accept", "version": rep["version"]})
    assert r.status_code == 200, r.get_json()


def test_the_console_is_closed_to_a_leader_and_the_map_open(as_user):
    leader = as_user("leader")
    assert leader.get("/console").status_code == 403
    assert leader.get("/console/duplicates").status_code == 403
    assert leader.get("/map").status_code == 200


def test_a_leader_lands_on_coverage_and_sees_the_programme_links(as_user):
    leader = as_user("leader")
    r = leader.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/coverage")
    html = leader.get("/map").get_data(as_text=True)
    assert 'class="topbar-programme"' in html and 'href="/stats"' in html and 'href="/albums"' in html


def test_a_representative_has_no_programme_links(as_user):
    html = as_user("rep03").get("/my").get_data(as_text=True)
    assert 'class="topbar-programme"' not in html
