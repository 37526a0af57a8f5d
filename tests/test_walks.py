"""Walks against a real PostGIS: chunks of a GPS trace cleaned, matched to the streets in the metric
CRS, stored as stretches (from_m..to_m along the street, the measure of reports' position_m), read
back by street, period and person; re-sends are idempotent; bad input is a 400, never a 500."""
import datetime as dt
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import text

from geoapp.domain.coords import wgs84_to_gcj02

WALKS = "/api/v1/walks"
CST = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 11, 10, 9, 0, tzinfo=CST)
STEP_S = 5.0        # one point every 5 s...
WALK_SPEED = 1.4    # ...at a walker's pace (m/s)


def along(streets, code, f0, f1, *, offset_m=0.0, step_m=WALK_SPEED * STEP_S):
    """Points along `code` from fraction f0 to f1 (either way), `offset_m` to its left."""
    length = streets.line(code).length
    n = max(int(abs(f1 - f0) * length / step_m), 1)
    return [streets.point(code, f0 + (f1 - f0) * k / n, offset_m) for k in range(n + 1)]


def chunk_body(points, *, walk_id=None, chunk=0, start=START, step_s=STEP_S, accuracies=None, crs="wgs84"):
    return {"walk_id": str(walk_id or uuid.uuid4()), "chunk": chunk, "crs": crs,
            "trace": {"type": "LineString", "coordinates": [list(p) for p in points]},
            "times": [(start + dt.timedelta(seconds=k * step_s)).isoformat() for k in range(len(points))],
            "accuracies": accuracies if accuracies is not None else [8.0] * len(points)}


def measure(db, code, lon, lat) -> float:
    """The truth: metres from the street's start, by ST_LineLocatePoint as reports' position_m."""
    with db.sessionmaker() as s:
        return s.execute(text("""
            SELECT ST_LineLocatePoint(ST_GeometryN(geom_m, 1), ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                   ST_SRID(geom_m))) * ST_Length(ST_GeometryN(geom_m, 1)) FROM streets WHERE code = :c"""),
            {"c": code, "lon": lon, "lat": lat}).scalar_one()


def on(answer, code):
    return [s for s in answer["stretches"] if s["street"]["code"] == code]


def test_a_walk_along_a_street_is_one_stretch_from_where_it_began_to_where_it_ended(client, auth, streets, db):
    points = along(streets, "S03", 0.10, 0.60)
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    assert r.status_code == 201, r.json
    assert r.json["kept"] == len(points)
    assert r.json["dropped"] == {"outside_city": 0, "poor_accuracy": 0, "impossible_speed": 0}
    [stretch] = on(r.json, "S03")
    assert stretch["street"]["name"] and "name_en" in stretch["street"]
    assert stretch["from_m"] == pytest.approx(measure(db, "S03", *points[0]), abs=3)
    assert stretch["to_m"] == pytest.approx(measure(db, "S03", *points[-1]), abs=3)
    assert stretch["length_m"] == pytest.approx(stretch["to_m"] - stretch["from_m"], abs=0.11)
    with db.sessionmaker() as s:
        row = s.execute(text("""SELECT i.started_at, i.ended_at, i.representative_id IS NOT NULL AS rep,
                                       w.started_at AS walk_start, w.ended_at AS walk_end
                                FROM walk_intervals i JOIN walks w ON w.id = i.walk_id""")).one()
    end = START + dt.timedelta(seconds=STEP_S * (len(points) - 1))
    assert row.rep and row.walk_start == START and row.walk_end == end
    assert abs((row.started_at - START).total_seconds()) < 2 and abs((row.ended_at - end).total_seconds()) < 2


def test_walking_back_along_the_same_stretch_keeps_its_whole_extent(client, auth, streets, db):
    points = along(streets, "S03", 0.10, 0.30) + along(streets, "S03", 0.30, 0.15)[1:]
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    [stretch] = on(r.json, "S03")
    assert stretch["from_m"] == pytest.approx(measure(db, "S03", *points[0]), abs=3)
    assert stretch["to_m"] == pytest.approx(measure(db, "S03", *streets.point("S03", 0.30)), abs=3)


def test_a_walk_a_few_metres_beside_the_street_counts_but_one_beyond_the_tolerance_does_not(client, auth, streets):
    near = client.post(WALKS, json=chunk_body(along(streets, "S03", 0.2, 0.3, offset_m=12)), headers=auth("rep03"))
    assert len(on(near.json, "S03")) == 1
    far = client.post(WALKS, json=chunk_body(along(streets, "S03", 0.2, 0.3, offset_m=45)), headers=auth("rep03"))
    assert on(far.json, "S03") == []


def test_crossing_a_street_at_right_angles_is_not_walking_it(client, auth, streets):
    points = [streets.point("S03", 0.5, offset) for offset in range(-120, 121, 6)]
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    assert r.status_code == 201 and r.json["kept"] == len(points)
    assert on(r.json, "S03") == []


def test_poor_accuracy_and_impossible_speed_are_dropped_and_counted(client, auth, streets, db):
    points = along(streets, "S03", 0.10, 0.30)
    accuracies = [8.0] * len(points)
    for k in (5, 6, 7, 40):
        accuracies[k] = 65.0
    # a GPS jump 300 m off the street, then back: the jump alone goes
    points[20] = streets.point("S03", 0.2, 300)
    r = client.post(WALKS, json=chunk_body(points, accuracies=accuracies), headers=auth("rep03"))
    assert r.status_code == 201
    assert r.json["dropped"] == {"outside_city": 0, "poor_accuracy": 4, "impossible_speed": 1}
    assert r.json["kept"] == len(points) - 5
    [stretch] = on(r.json, "S03")
    assert stretch["from_m"] == pytest.approx(measure(db, "S03", *points[0]), abs=3)


def test_a_car_ride_is_dropped_point_by_point(client, auth, streets):
    points = along(streets, "S03", 0.10, 0.30, step_m=60)  # 60 m every 5 s: 12 m/s
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    assert r.json["kept"] == 1 and r.json["dropped"]["impossible_speed"] == len(points) - 1
    assert r.json["stretches"] == []


def test_the_speed_limit_and_the_accuracy_limit_are_settings(make_app, users, streets):
    app = make_app(walk_max_speed_mps=20.0, walk_max_accuracy_m=100.0)
    client = app.test_client()
    points = along(streets, "S03", 0.10, 0.30, step_m=60)
    r = client.post(WALKS, json=chunk_body(points, accuracies=[65.0] * len(points)),
                    headers={"Authorization": f"Bearer {users['rep03']}"})
    assert r.json["kept"] == len(points) and len(on(r.json, "S03")) == 1


def test_gcj02_input_is_matched_where_the_wgs84_walk_is(client, auth, streets, db):
    points = along(streets, "S03", 0.10, 0.60)
    shifted = [wgs84_to_gcj02(lon, lat) for lon, lat in points]
    r = client.post(WALKS, json=chunk_body(shifted, crs="gcj02"), headers=auth("rep03"))
    assert r.status_code == 201
    [stretch] = on(r.json, "S03")
    assert stretch["from_m"] == pytest.approx(measure(db, "S03", *points[0]), abs=3)
    assert stretch["to_m"] == pytest.approx(measure(db, "S03", *points[-1]), abs=3)
    with db.sessionmaker() as s:  # stored as WGS-84
        first = s.execute(text("SELECT ST_X(ST_StartPoint(trace)), ST_Y(ST_StartPoint(trace)) FROM walk_chunks")).one()
    assert first == pytest.approx(points[0], abs=1e-6)


def test_points_outside_the_city_are_dropped_not_refused(client, auth, streets):
    points = along(streets, "S03", 0.10, 0.20)
    points[3] = (121.9, 41.1)  # east of the city's extent
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    assert r.status_code == 201 and r.json["dropped"]["outside_city"] == 1


def test_a_chunk_sent_again_gets_the_first_answer_and_other_content_is_refused(client, auth, streets, db):
    body = chunk_body(along(streets, "S03", 0.10, 0.30))
    first = client.post(WALKS, json=body, headers=auth("rep03"))
    assert first.status_code == 201
    again = client.post(WALKS, json=body, headers=auth("rep03"))
    assert again.status_code == 200 and again.json == first.json
    # the same instants written in UTC are the same content
    utc = body | {"times": [dt.datetime.fromisoformat(t).astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
                            for t in body["times"]]}
    assert client.post(WALKS, json=utc, headers=auth("rep03")).status_code == 200
    other = body | {"accuracies": [9.0] * len(body["accuracies"])}
    reused = client.post(f"{WALKS}?lang=en", json=other, headers=auth("rep03"))
    assert reused.status_code == 409 and reused.json["error"] == "walk_chunk_reused" and reused.json["message"]
    with db.sessionmaker() as s:
        assert s.execute(text("SELECT count(*) FROM walk_intervals")).scalar() == len(first.json["stretches"])
        assert s.execute(text("SELECT count(*) FROM walk_chunks")).scalar() == 1


def test_another_users_walk_id_is_refused(client, auth, streets):
    body = chunk_body(along(streets, "S03", 0.10, 0.20))
    assert client.post(WALKS, json=body, headers=auth("rep03")).status_code == 201
    r = client.post(WALKS, json=body | {"chunk": 1}, headers=auth("rep04"))
    assert r.status_code == 409 and r.json["error"] == "walk_id_conflict"


def test_two_chunks_join_where_the_phone_repeats_the_last_point(client, auth, streets, db):
    walk_id = uuid.uuid4()
    first_half = along(streets, "S03", 0.10, 0.35)
    second_half = along(streets, "S03", 0.35, 0.60)  # starts with first_half's last point
    assert second_half[0] == first_half[-1]
    a = client.post(WALKS, json=chunk_body(first_half, walk_id=walk_id, chunk=0), headers=auth("rep03"))
    b = client.post(WALKS, json=chunk_body(second_half, walk_id=walk_id, chunk=1,
                                           start=START + dt.timedelta(seconds=STEP_S * (len(first_half) - 1))),
                    headers=auth("rep03"))
    assert a.status_code == b.status_code == 201
    [sa], [sb] = on(a.json, "S03"), on(b.json, "S03")
    assert sb["from_m"] == pytest.approx(sa["to_m"], abs=1)
    got = client.get(f"{WALKS}?street=S03&from=2026-11-01&to=2026-11-30", headers=auth("rep03"))
    [stretch] = got.json["stretches"]
    assert stretch["walk_id"] == str(walk_id)
    assert stretch["from_m"] == pytest.approx(measure(db, "S03", *first_half[0]), abs=3)
    assert stretch["to_m"] == pytest.approx(measure(db, "S03", *second_half[-1]), abs=3)
    assert stretch["geometry"]["type"] == "LineString"
    assert stretch["geometry"]["coordinates"][0] == pytest.approx(list(first_half[0]), abs=5e-5)
    assert stretch["geometry"]["coordinates"][-1] == pytest.approx(list(second_half[-1]), abs=5e-5)
    assert dt.datetime.fromisoformat(stretch["started_at"]) == pytest.approx(START, abs=dt.timedelta(seconds=2))


def test_reading_walks_by_street_period_and_person(client, auth, streets):
    s03 = along(streets, "S03", 0.10, 0.20)
    # rep03 on 10 November; rep04 on S03 at 00:30 on 1 November, city time (still 31 October in UTC)
    assert client.post(WALKS, json=chunk_body(s03), headers=auth("rep03")).status_code == 201
    early = dt.datetime(2026, 11, 1, 0, 30, tzinfo=CST)
    assert client.post(WALKS, json=chunk_body(s03, start=early), headers=auth("rep04")).status_code == 201
    assert client.post(WALKS, json=chunk_body(along(streets, "S04", 0.1, 0.2)), headers=auth("rep04")).status_code == 201

    def got(query, who):
        r = client.get(f"{WALKS}?{query}", headers=auth(who))
        assert r.status_code == 200, r.json
        return sorted((s["street"]["code"], s["started_at"][:10]) for s in r.json["stretches"])

    november = "from=2026-11-01&to=2026-11-30"
    assert got(f"street=S03&{november}", "dispatcher") == [("S03", "2026-10-31"), ("S03", "2026-11-10")]
    assert got(f"street=S03&{november}", "admin") == got(f"street=S03&{november}", "dispatcher")
    assert got(f"street=S03&{november}", "rep03") == [("S03", "2026-11-10")]   # only their own
    assert got(f"street=S03&{november}", "rep04") == [("S03", "2026-10-31")]
    assert got(november, "rep04") == [("S03", "2026-10-31"), ("S04", "2026-11-10")]
    assert got(f"street=S03&{november}&user=me", "dispatcher") == []
    assert got("street=S03&from=2026-11-02&to=2026-11-30", "dispatcher") == [("S03", "2026-11-10")]
    assert got("street=S03&from=2026-10-01&to=2026-10-31", "dispatcher") == []  # a local day, not a UTC one
    assert got("street=S05&from=2026-11-01&to=2026-11-30", "dispatcher") == []


def test_reading_defaults_to_the_current_month(client, auth, streets):
    now = dt.datetime.now(CST).replace(microsecond=0) - dt.timedelta(minutes=20)
    client.post(WALKS, json=chunk_body(along(streets, "S03", 0.1, 0.2), start=now), headers=auth("rep03"))
    r = client.get(f"{WALKS}?street=S03", headers=auth("rep03"))
    assert len(r.json["stretches"]) == (1 if now.month == dt.datetime.now(CST).month else 0)


@pytest.mark.parametrize("query, field", [
    ("from=2026-13-01", "from"), ("from=yesterday", "from"), ("to=2026-11-1", "to"),
    ("from=2026-11-30&to=2026-11-01", "to"), ("from=2025-01-01&to=2026-11-30", "to"),
    ("user=rep04", "user"), ("street=S0%3B3", "street"),
])
def test_bad_queries_are_refused_with_the_field_named(client, auth, query, field):
    r = client.get(f"{WALKS}?{query}&lang=en", headers=auth("rep03"))
    assert r.status_code == 400 and r.json["error"] == "bad_input", r.json
    assert r.json["message"].startswith(f"{field}:") and r.json["details"]["field"] == field
    zh = client.get(f"{WALKS}?{query}&lang=zh", headers=auth("rep03"))
    assert zh.status_code == 400 and "：" in zh.json["message"]


def test_an_unknown_street_is_refused(client, auth):
    r = client.get(f"{WALKS}?street=S99", headers=auth("rep03"))
    assert r.status_code == 400 and r.json["error"] == "unknown_street" and "S99" in r.json["message"]


@pytest.mark.parametrize("name, change, field", [
    ("nil walk id", {"walk_id": "00000000-0000-0000-0000-000000000000"}, "walk_id"),
    ("walk id not a uuid", {"walk_id": "walk-1"}, "walk_id"),
    ("negative chunk", {"chunk": -1}, "chunk"),
    ("chunk as boolean", {"chunk": True}, "chunk"),
    ("chunk as fraction", {"chunk": 1.5}, "chunk"),
    ("trace a point", {"trace": {"type": "Point", "coordinates": [121.1, 41.1]}}, "trace"),
    ("trace a string", {"trace": "LINESTRING(121 41, 121.1 41.1)"}, "trace"),
    ("one point", {"trace": {"type": "LineString", "coordinates": [[121.1, 41.1]]},
                   "times": ["2026-11-10T09:00:00+08:00"], "accuracies": [5]}, "trace"),
    ("a position of one number", "position", "trace"),
    ("nan in a position", "nan", "trace"),
    ("times missing", {"times": None}, "times"),
    ("one time too few", "short_times", "times"),
    ("a time without offset", "naive_time", "times"),
    ("a date, not a time", "date_time", "times"),
    ("times going back", "backwards", "times"),
    ("a repeated time", "repeated", "times"),
    ("negative accuracy", "negative_accuracy", "accuracies"),
    ("accuracy as text", "text_accuracy", "accuracies"),
    ("accuracies an object", {"accuracies": {"0": 5}}, "accuracies"),
])
def test_bad_chunks_are_refused_with_the_field_named(client, auth, streets, db, name, change, field):
    body = chunk_body(along(streets, "S03", 0.10, 0.12))
    if isinstance(change, dict):
        body |= change
    elif change == "position":
        body["trace"]["coordinates"][2] = [121.1]
    elif change == "nan":
        body["trace"]["coordinates"][2] = ["nan", 41.1]
    elif change == "short_times":
        body["times"].pop()
    elif change == "naive_time":
        body["times"][1] = "2026-11-10T09:00:05"
    elif change == "date_time":
        body["times"][1] = "2026-11-10"
    elif change == "backwards":
        body["times"][2] = "2026-11-10T08:00:00+08:00"
    elif change == "repeated":
        body["times"][2] = body["times"][1]
    elif change == "negative_accuracy":
        body["accuracies"][3] = -1
    elif change == "text_accuracy":
        body["accuracies"][3] = "good"
    r = client.post(f"{WALKS}?lang=en", json=body, headers=auth("rep03"))
    assert r.status_code == 400, (name, r.status_code, r.get_data(as_text=True)[:300])
    assert r.json["error"] == "bad_input" and r.json["message"].startswith(f"{field}:"), r.json
    zh = client.post(f"{WALKS}?lang=zh", json=body, headers=auth("rep03"))
    assert zh.status_code == 400 and "：" in zh.json["message"]
    with db.sessionmaker() as s:
        assert s.execute(text("SELECT count(*) FROM walks")).scalar() == 0


def test_too_many_points_and_an_unknown_crs_are_refused(client, auth, streets):
    lon, lat = streets.point("S03", 0.5)
    big = chunk_body([(lon, lat + k * 1e-6) for k in range(2001)], step_s=1)
    r = client.post(f"{WALKS}?lang=en", json=big, headers=auth("rep03"))
    assert r.status_code == 400 and r.json["message"].startswith("trace:") and "2001" in r.json["message"]
    r = client.post(f"{WALKS}?lang=en", json=chunk_body(along(streets, "S03", 0.1, 0.12), crs="bd09"), headers=auth("rep03"))
    assert r.status_code == 400 and r.json["error"] == "unknown_crs"


def test_swapped_coordinates_are_refused(client, auth, streets):
    points = [(lat, lon) for lon, lat in along(streets, "S03", 0.1, 0.12)]
    r = client.post(WALKS, json=chunk_body(points), headers=auth("rep03"))
    assert r.status_code == 400 and r.json["error"] == "swapped_coordinates"


def test_walks_need_a_user_and_cookie_writes_need_the_csrf_token(client, users, signin, streets):
    body = chunk_body(along(streets, "S03", 0.1, 0.12))
    assert client.post(WALKS, json=body).status_code == 401
    assert client.get(WALKS).status_code == 401
    signin.login("rep03")
    forged = client.post(WALKS, json=body)
    assert forged.status_code == 400 and forged.json["error"] == "csrf_failed"
    token = signin.csrf_token("/account/password")
    assert client.post(WALKS, json=body, headers={"X-CSRFToken": token}).status_code == 201
    assert len(client.get(WALKS + "?street=S03&from=2026-11-01&to=2026-11-30").json["stretches"]) == 1


def test_a_non_json_body_is_refused(client, auth):
    r = client.post(WALKS, data="walk_id=1", headers=auth("rep03") | {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    r = client.post(WALKS, data="{not json", headers=auth("rep03") | {"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json["error"] == "bad_input"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(["walk_id", "chunk", "crs", "trace", "times", "accuracies"]), value=_json,
       position=st.integers(0, 4), nested=st.booleans())
def test_any_body_is_answered_with_a_4xx_or_a_success_never_a_500(client, auth, streets, field, value, position, nested):
    body = _valid_body(streets)
    if nested and field in ("times", "accuracies"):
        body[field][position] = value
    elif nested and field == "trace":
        body["trace"]["coordinates"][position] = value
    else:
        body[field] = value
    r = client.post(WALKS, data=json.dumps(body, allow_nan=True), headers=auth("rep03") | {"Content-Type": "application/json"})
    assert r.status_code in (200, 201, 400, 409), (body, r.status_code, r.get_data(as_text=True)[:300])
    assert r.status_code < 400 or {"error", "message"} <= set(r.json)


_VALID = {}


def _valid_body(streets):
    if "points" not in _VALID:
        _VALID["points"] = along(streets, "S03", 0.10, 0.11)
    return chunk_body(_VALID["points"])


def test_a_2000_point_chunk_up_and_back_is_one_stretch(client, auth, streets):
    # 2,000 points up and down S03: every stretch of it, twice (its speed: bench/run walk_match)
    points = along(streets, "S03", 0.0, 1.0, step_m=5)[:1000]
    points += points[::-1]
    r = client.post(WALKS, json=chunk_body(points, step_s=2), headers=auth("rep03"))
    assert r.status_code == 201 and r.json["kept"] == 2000
    assert len(on(r.json, "S03")) == 1
