"""Coverage per road against a real PostGIS, on constructed cases: walks sent through POST
/api/v1/walks (the real matching) and reports through POST /api/v1/reports (the real snapping), then
GET /api/v1/coverage compared with what the geometry says, measured independently here with Shapely."""
from __future__ import annotations

import datetime as dt
import io
import math
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import report_body

API = "/api/v1/coverage"
CST = dt.timezone(dt.timedelta(hours=8))
STEP_S, STEP_M = 5.0, 7.0


def walk(client, auth, streets, user, code, f0, f1, *, start):
    """`user` walks `code` from fraction f0 to f1, one point every 7 m / 5 s from `start`."""
    length = streets.line(code).length
    n = max(int(abs(f1 - f0) * length / STEP_M), 1)
    points = [streets.point(code, f0 + (f1 - f0) * k / n) for k in range(n + 1)]
    body = {"walk_id": str(uuid.uuid4()), "chunk": 0, "crs": "wgs84",
            "trace": {"type": "LineString", "coordinates": [list(p) for p in points]},
            "times": [(start + dt.timedelta(seconds=k * STEP_S)).isoformat() for k in range(len(points))],
            "accuracies": [8.0] * len(points)}
    r = client.post("/api/v1/walks", json=body, headers=auth(user))
    assert r.status_code == 201, r.json
    return [s for s in r.json["stretches"] if s["street"]["code"] == code]


def report(client, auth, streets, user, code, fraction, *, at=None, db=None, offset_m=3.0) -> dict:
    lon, lat = streets.point(code, fraction, offset_m)
    r = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth(user))
    assert r.status_code == 201, r.json
    if at is not None:  # backdated as an import would (the trigger recounts the aggregate)
        with db.transaction() as s:
            s.execute(text("UPDATE reports SET created_at = :at WHERE id = :id"), {"at": at, "id": r.json["id"]})
    return r.json


def stored_position(db, report_id) -> float:
    with db.sessionmaker() as s:
        return s.execute(text("SELECT position_m FROM reports WHERE id = :id"), {"id": report_id}).scalar_one()


def one(client, auth, code, user="dispatcher", **query) -> dict:
    r = client.get(API, query_string={"street": code, **query}, headers=auth(user))
    assert r.status_code == 200, r.json
    [street] = r.json["streets"]
    return street


NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}
MID_NOVEMBER = dt.datetime(2026, 11, 10, 9, 0, tzinfo=CST)


def test_a_walk_over_half_a_street_covers_half_of_it_and_leaves_one_gap_of_the_rest(client, auth, streets, db):
    [stretch] = walk(client, auth, streets, "rep03", "S03", 0.0, 0.5, start=MID_NOVEMBER)
    s = one(client, auth, "S03", **NOVEMBER)
    length = streets.line("S03").length
    assert s["length_m"] == pytest.approx(length, abs=0.1)
    # covered: every 50 m bin the stretch overlaps, from 0 to the first bin boundary after its end
    walked_to = stretch["to_m"]
    boundary = math.ceil(walked_to / 50) * 50
    assert s["covered_m"] == pytest.approx(boundary, abs=0.1)
    assert s["covered_share"] == pytest.approx(0.5, abs=50 / length)
    [gap] = s["gaps"]
    assert gap["from_m"] == pytest.approx(boundary, abs=0.1)
    assert gap["to_m"] == pytest.approx(length, abs=0.1)
    assert gap["length_m"] == pytest.approx(length - boundary, abs=0.2) == s["longest_gap_m"]
    assert gap["last_covered_at"] is None          # never covered before
    assert s["representative"]["name"] and s["others_covered_m"] == 0


def _crossings_along(streets, db, code) -> list[tuple[float, str]]:
    """The truth for the gap's names: where each other street meets `code`, by Shapely in the metric CRS."""
    line = streets.line(code)
    with db.sessionmaker() as s:
        others = s.execute(text("SELECT code, name FROM streets WHERE code <> :c"), {"c": code}).all()
    found = []
    for other in others:
        meet = line.intersection(streets.line(other.code))
        for point in getattr(meet, "geoms", [meet]):
            if not point.is_empty:
                found.append((line.project(point), other.name))
    return sorted(found)


def test_a_gap_is_named_by_the_crossings_around_it(client, auth, streets, db):
    walk(client, auth, streets, "rep03", "S03", 0.0, 0.3, start=MID_NOVEMBER)
    walk(client, auth, streets, "rep03", "S03", 0.7, 1.0, start=MID_NOVEMBER + dt.timedelta(hours=2))
    [gap] = one(client, auth, "S03", **NOVEMBER)["gaps"]
    crossings = _crossings_along(streets, db, "S03")
    before = max((c for c in crossings if c[0] <= gap["from_m"] + 50), key=lambda c: c[0])
    after = min((c for c in crossings if c[0] >= gap["to_m"] - 50), key=lambda c: c[0])
    assert gap["from_near"]["name"] == before[1] and gap["from_near"]["position_m"] == pytest.approx(before[0], abs=1)
    assert gap["to_near"]["name"] == after[1] and gap["to_near"]["position_m"] == pytest.approx(after[0], abs=1)
    assert gap["place"] == f"{before[1]}至{after[1]}之间"
    en = one(client, auth, "S03", lang="en", **NOVEMBER)["gaps"][0]
    assert en["place"].startswith("between ") and "至" not in en["place"]


def test_a_report_alone_covers_its_bin(client, auth, streets, db):
    rep = report(client, auth, streets, "rep03", "S03", 0.37)
    position = stored_position(db, rep["id"])
    today = dt.datetime.now(CST).date().isoformat()
    s = one(client, auth, "S03", **{"from": today, "to": today})
    assert s["covered_m"] == 50.0
    [covered] = [b for b in s["bins"] if b["covered"]]
    assert covered["from_m"] == math.floor(position / 50) * 50 and covered["to_m"] == covered["from_m"] + 50
    assert len(s["gaps"]) == 2 and s["problems"] == 1
    # a bin of 100 m: the report's bin is the 100 m one around it
    s100 = one(client, auth, "S03", bin_m="100", **{"from": today, "to": today})
    [covered] = [b for b in s100["bins"] if b["covered"]]
    assert covered["from_m"] == math.floor(position / 100) * 100 and s100["covered_m"] == 100.0


def test_another_representatives_walk_does_not_count_and_is_shown_apart(client, auth, streets, db):
    walk(client, auth, streets, "rep04", "S03", 0.2, 0.6, start=MID_NOVEMBER)
    s = one(client, auth, "S03", **NOVEMBER)
    assert s["covered_m"] == 0 and s["covered_share"] == 0
    assert s["others_covered_m"] > 0.35 * s["length_m"]
    assert [g["length_m"] for g in s["gaps"]] == [s["length_m"]]
    assert any(b["by_others"] and not b["covered"] for b in s["bins"])
    # and rep04's own street is not covered by a walk on S03 either
    assert one(client, auth, "S04", **NOVEMBER)["covered_m"] == 0


def test_the_last_short_bin_counts_by_its_true_length(client, auth, streets, db):
    length = streets.line("S03").length
    # 15 m before the end (广州街 crosses there: a point any nearer would be its report)
    rep = report(client, auth, streets, "rep03", "S03", (length - 15) / length, offset_m=0.0)
    assert rep["street"]["code"] == "S03"
    today = dt.datetime.now(CST).date().isoformat()
    for bin_m in (50, 70, 500):
        s = one(client, auth, "S03", bin_m=str(bin_m), **{"from": today, "to": today})
        last = length - math.floor(length / bin_m) * bin_m
        assert 0 < last < bin_m
        assert s["covered_m"] == pytest.approx(last, abs=0.1), (bin_m, stored_position(db, rep["id"]))
        assert s["bins"][-1]["covered"] and s["bins"][-1]["to_m"] == pytest.approx(length, abs=0.1)
        assert len(s["bins"]) == math.ceil(length / bin_m)


def test_the_period_ends_at_local_midnight_not_utc(client, auth, streets, db):
    # 2026-11-30 23:30 in Jinzhou is 15:30 UTC: November. 2026-12-01 00:30 there is 16:30 UTC on
    # 30 November: December, though UTC still says November.
    walk(client, auth, streets, "rep03", "S03", 0.0, 0.2, start=dt.datetime(2026, 11, 30, 23, 30, tzinfo=CST))
    walk(client, auth, streets, "rep03", "S03", 0.6, 0.8, start=dt.datetime(2026, 12, 1, 0, 30, tzinfo=CST))
    november, december = one(client, auth, "S03", **NOVEMBER), one(client, auth, "S03", **{"from": "2026-12-01"})
    assert 0.18 < november["covered_share"] < 0.23 and all(not b["covered"] for b in november["bins"][60:])
    assert 0.18 < december["covered_share"] < 0.23 and all(not b["covered"] for b in december["bins"][:60])
    # a report made in the same last minutes of November, by the same measure
    report(client, auth, streets, "rep03", "S03", 0.5, at=dt.datetime(2026, 11, 30, 23, 59, tzinfo=CST), db=db)
    report(client, auth, streets, "rep03", "S03", 0.9, at=dt.datetime(2026, 12, 1, 0, 1, tzinfo=CST), db=db)
    assert one(client, auth, "S03", **NOVEMBER)["covered_m"] == pytest.approx(november["covered_m"] + 50)
    assert one(client, auth, "S03", **NOVEMBER)["problems"] == 1
    assert one(client, auth, "S03", **{"from": "2026-12-01", "to": "2026-12-01"})["problems"] == 1
    # one day, the last one: only its own walk
    last_day = one(client, auth, "S03", **{"from": "2026-11-30", "to": "2026-11-30"})
    assert last_day["covered_m"] == pytest.approx(november["covered_m"] + 50)


def test_a_period_of_whole_months_and_odd_days_reads_the_same_as_day_by_day(client, auth, streets, db):
    """The aggregate's month rows and day rows answer alike: Oct 20 - Dec 3 equals its pieces."""
    for day, fraction in ((dt.datetime(2026, 10, 25, 10, tzinfo=CST), 0.1), (dt.datetime(2026, 11, 15, 10, tzinfo=CST), 0.4),
                          (dt.datetime(2026, 12, 2, 10, tzinfo=CST), 0.8), (dt.datetime(2026, 10, 5, 10, tzinfo=CST), 0.6)):
        report(client, auth, streets, "rep03", "S03", fraction, at=day, db=db)
    s = one(client, auth, "S03", **{"from": "2026-10-20", "to": "2026-12-03"})
    assert s["covered_m"] == 150 and s["problems"] == 3      # 5 October is outside


def test_a_gap_says_when_it_was_last_covered(client, auth, streets, db):
    [old] = walk(client, auth, streets, "rep03", "S03", 0.5, 0.7, start=dt.datetime(2026, 10, 3, 9, tzinfo=CST))
    earlier = report(client, auth, streets, "rep03", "S03", 0.9, at=dt.datetime(2026, 9, 20, 9, tzinfo=CST), db=db)
    walk(client, auth, streets, "rep03", "S03", 0.0, 0.3, start=MID_NOVEMBER)
    gaps = one(client, auth, "S03", **NOVEMBER)["gaps"]
    [gap] = gaps
    walked_at = dt.datetime.fromisoformat(gap["last_covered_at"])
    with db.sessionmaker() as s:
        ended = s.execute(text("SELECT max(ended_at) FROM walk_intervals WHERE started_at < '2026-11-01'")).scalar_one()
    assert walked_at == ended and walked_at.utcoffset() == dt.timedelta(hours=8)
    assert old and earlier
    # without the October walk the gap was last covered by the September report
    with db.transaction() as s:
        s.execute(text("DELETE FROM walk_intervals WHERE started_at < '2026-11-01'"))
    [gap] = one(client, auth, "S03", **NOVEMBER)["gaps"]
    assert dt.datetime.fromisoformat(gap["last_covered_at"]) == dt.datetime(2026, 9, 20, 9, tzinfo=CST)


def test_the_maintained_aggregate_follows_moves_and_status_and_equals_a_rebuild(client, auth, streets, db, owner_db):
    today = dt.datetime.now(CST).date().isoformat()
    a = report(client, auth, streets, "rep03", "S03", 0.2)
    b = report(client, auth, streets, "rep03", "S03", 0.6)
    assert one(client, auth, "S03", **{"from": today})["covered_m"] == 100
    with db.transaction() as s:
        s.execute(text("UPDATE reports SET status = 'void' WHERE id = :id"), {"id": b["id"]})
    again = one(client, auth, "S03", **{"from": today})
    assert again["covered_m"] == 100 and again["problems"] == 1   # a void report still shows the walk there
    with db.transaction() as s:   # a report moved along its street (a correction): its old bucket goes
        s.execute(text("UPDATE reports SET position_m = 10 WHERE id = :id"), {"id": a["id"]})
    moved = one(client, auth, "S03", **{"from": today})
    assert [x["from_m"] for x in moved["bins"] if x["covered"]] == [0, math.floor(stored_position(db, b["id"]) / 50) * 50]
    with owner_db.sessionmaker() as s:  # the rebuild truncates: the schema owner's
        kept = s.execute(text("SELECT street_id, grain, day, reporter_id, marks::text, reports, problems "
                              "FROM coverage_marks ORDER BY 1, 2, 3, 4")).all()
        s.execute(text("SELECT coverage_marks_rebuild()"))
        rebuilt = s.execute(text("SELECT street_id, grain, day, reporter_id, marks::text, reports, problems "
                                 "FROM coverage_marks ORDER BY 1, 2, 3, 4")).all()
        s.rollback()
    assert kept == rebuilt and len(kept) == 2


def test_photos_against_the_quota_are_the_phones_count(client, auth, streets, db):
    from tests.conftest import jpeg

    lon, lat = streets.point("S03", 0.3, 3.0)
    body = report_body(lon, lat)
    r = client.post("/api/v1/reports", data={**{k: str(v) for k, v in body.items()},
                                              "photo": (io.BytesIO(jpeg()), "a.jpg")},
                    headers=auth("rep03"), content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    s = one(client, auth, "S03")
    me = client.get("/api/v1/me", headers=auth("rep03")).json
    assert s["photos"] == 1 == me["quota"]["taken"] and s["quota"] == me["quota"]["quota"]


# ---- who, and refusals -----------------------------------------------------------------------------

def test_who_reads_which_street(client, auth):
    for user in ("dispatcher", "admin", "leader"):
        r = client.get(API, headers=auth(user))
        assert r.status_code == 200 and len(r.json["streets"]) == 29
    mine = client.get(API, headers=auth("rep03"))
    assert [s["street"]["code"] for s in mine.json["streets"]] == ["S03"]
    assert client.get(API, query_string={"street": "S03"}, headers=auth("rep03")).status_code == 200
    assert client.get(API, query_string={"street": "S04"}, headers=auth("rep03")).status_code == 404
    assert client.get(API, headers=auth("handler01")).status_code == 403
    assert client.get(API).status_code == 401


@pytest.mark.parametrize("query, field", [
    ({"from": "2026-13-01"}, "from"), ({"from": "2026/11/01"}, "from"), ({"to": "yesterday"}, "to"),
    ({"from": "2026-11-02", "to": "2026-11-01"}, "to"), ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
    ({"bin_m": "5"}, "bin_m"), ({"bin_m": "501"}, "bin_m"), ({"bin_m": "55"}, "bin_m"), ({"bin_m": "abc"}, "bin_m"),
    ({"bin_m": "-50"}, "bin_m"), ({"bins": "yes"}, "bins"), ({"street": "S0 3"}, "street"),
])
def test_bad_queries_are_refused_naming_the_field_in_both_languages(client, auth, query, field):
    zh = client.get(API, query_string={**query, "lang": "zh"}, headers=auth("dispatcher"))
    assert zh.status_code == 400 and zh.json["details"]["field"] == field
    assert not zh.json["message"].startswith(field)          # Chinese names the field in Chinese
    en = client.get(API, query_string={**query, "lang": "en"}, headers=auth("dispatcher"))
    assert en.status_code == 400 and en.json["message"].startswith(f"{field}: ")
    assert not any("\u4e00" <= c <= "\u9fff" for c in en.json["message"])


def test_a_year_is_allowed_and_an_unknown_street_is_refused(client, auth):
    assert client.get(API, query_string={"from": "2025-12-04", "to": "2026-12-04"}, headers=auth("leader")).status_code == 200
    r = client.get(API, query_string={"street": "S99"}, headers=auth("leader"))
    assert r.status_code == 400 and r.json["error"] == "unknown_street"


def test_a_bad_default_bin_is_refused_at_startup(make_app):
    with pytest.raises(Exception):
        make_app(coverage_bin_m=55)


# ---- exports ---------------------------------------------------------------------------------------

def test_xlsx_opens_and_holds_the_same_numbers_as_the_api(client, auth, as_user, streets, db):
    from openpyxl import load_workbook

    walk(client, auth, streets, "rep03", "S03", 0.1, 0.45, start=MID_NOVEMBER)
    walk(client, auth, streets, "rep04", "S04", 0.0, 1.0, start=MID_NOVEMBER)
    api = client.get(API, query_string=NOVEMBER, headers=auth("leader")).json
    leader = as_user("leader")
    r = leader.get("/coverage.xlsx", query_string=NOVEMBER)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(r.data))
    sheet = book.worksheets[0]
    heads = [c.value for c in sheet[1]]
    assert heads[:3] == ["街路编号", "街路", "代表"] and "覆盖率" in heads
    rows = {row[0]: dict(zip(heads, row)) for row in sheet.iter_rows(min_row=2, values_only=True) if row[0]}
    assert len(rows) == 29
    for s in api["streets"]:
        row = rows[s["street"]["code"]]
        assert row["覆盖率"] == s["covered_share"] and isinstance(row["覆盖率"], (int, float))
        assert row["已覆盖（米）"] == s["covered_m"] and row["长度（米）"] == s["length_m"]
        assert row["最长未覆盖段（米）"] == s["longest_gap_m"] and row["问题数"] == s["problems"]
        assert row["未覆盖段数"] == len(s["gaps"])
    assert rows["S04"]["覆盖率"] == 1.0 and 0.3 < rows["S03"]["覆盖率"] < 0.4
    gaps = book.worksheets[1]
    assert sum(1 for row in gaps.iter_rows(min_row=2, values_only=True) if row[0]) == sum(len(s["gaps"]) for s in api["streets"])


@pytest.fixture
def hostile_representative_name(db):
    """R03's name made a spreadsheet formula for one test; the city data put back afterwards (the
    loader's tests expect gis_data/ as loaded)."""
    with db.transaction() as s:
        name = s.execute(text("SELECT name FROM representatives WHERE code = 'R03'")).scalar_one()
        s.execute(text("UPDATE representatives SET name = '=HYPERLINK(\"http://x\")' WHERE code = 'R03'"))
    yield
    with db.transaction() as s:
        s.execute(text("UPDATE representatives SET name = :n WHERE code = 'R03'"), {"n": name})


def test_csv_has_a_bom_and_neutralises_formulas_in_both_exports(client, auth, as_user, hostile_representative_name):
    from openpyxl import load_workbook

    leader = as_user("leader")
    r = leader.get("/coverage.csv")
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf") and r.mimetype == "text/csv"
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("街路编号,街路,代表")
    [s03] = [line for line in lines if line.startswith("S03,")]
    assert "'=HYPERLINK" in s03 and ",=HYPERLINK" not in s03
    book = load_workbook(io.BytesIO(leader.get("/coverage.xlsx").data))
    [cell] = [row[2] for row in book.worksheets[0].iter_rows(min_row=2) if row[0].value == "S03"]
    assert cell.data_type == "s" and cell.value == '=HYPERLINK("http://x")'
    en = leader.get("/coverage.csv?lang=en").data.decode("utf-8-sig").splitlines()[0]
    assert en.startswith("Street code,Street,Representative")


def test_exports_follow_the_same_rules_as_the_api(as_user, users):
    assert as_user("handler01").get("/coverage.csv").status_code == 403
    rep = as_user("rep03")
    assert len(rep.get("/coverage.csv").data.decode("utf-8-sig").splitlines()) == 2
    assert rep.get("/coverage.xlsx?from=2026-02-01&to=2026-01-01").status_code == 400


# ---- pages -----------------------------------------------------------------------------------------

def test_the_pages_show_the_table_the_street_and_its_quota_history(as_user, users):
    from tests.conftest import data_block

    leader = as_user("leader")
    page = leader.get("/coverage", query_string=NOVEMBER)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('<tr data-code="S') == 29
    data = data_block(html, "coverage-data")
    assert len(data["streets"]) == 29 and all(s["runs"] for s in data["streets"])
    assert data["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    street = leader.get("/coverage/S03", query_string=NOVEMBER).get_data(as_text=True)
    assert "近 12 个月照片与定额" in street and street.count("<progress") >= 12
    rep = as_user("rep03")
    assert rep.get("/coverage/S03").status_code == 200
    assert rep.get("/coverage/S04").status_code == 404
    assert rep.get("/coverage").get_data(as_text=True).count('<tr data-code="S') == 1
    assert as_user("handler01").get("/coverage").status_code == 403


def test_a_representative_reaches_their_street_s_coverage_from_my_street(as_user):
    rep = as_user("rep03")
    html = rep.get("/my").get_data(as_text=True)
    assert 'href="/coverage/S03"' in html
    assert rep.get("/coverage/S03").status_code == 200
    assert rep.get("/coverage/S04").status_code == 404
