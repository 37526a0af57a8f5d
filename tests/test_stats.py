"""The programme's statistics (geoapp/domain/stats.py, GET /api/v1/stats) against figures worked out
by hand on a small data set made through the real lifecycle at controlled moments.

All moments below are Asia/Shanghai local time; office hours 08:30–12:00 and 13:30–17:30 (7.5 h a
working day). In 2026 the National Day holiday is 1–7 October, and Sunday 20 September and Saturday
10 October are make-up working days.

September's reports (each first dispatched in September), item 0104 (1 working day) unless said:
  R1  dispatched 30 Sep 16:00 to M01 → due 8 Oct 16:00 (the holiday inside); handled 8 Oct 15:00: on
      time, 6.5 working hours (1 working day minus 1 h); rated 4 / 5 (verified).
  R2  dispatched 10 Sep 09:00 to M01; handled 14 Sep 10:00; rated 2 / 1 on 15 Sep 10:00 → reopened with
      a fresh limit (16 Sep 10:00); handled again 15 Sep 16:00: on time against the rework's limit;
      10 Sep 09:00 → 15 Sep 16:00 = 7 + 7.5 + 7.5 + 6 = 28 working hours.
  R3  dispatched 15 Sep 10:00 to M02, handed back 14:00 by M02, dispatched 16 Sep 09:00 to M01 (due
      17 Sep 09:00); handled 18 Sep 10:00: late; 16 h; closed without a rating.
  R4  dispatched Sunday 20 Sep 09:00 (a make-up working day) to M01; nothing since: overdue.
  R5  dispatched 25 Sep 10:00 to M01, put on the ledger promising 30 Oct: overdue (promise passed).
  R6  dispatched 28 Sep 10:00 to M01, handed back, voided: dispatched but not handed over.
  R7  item 0403 (class B, category 04), dispatched 30 Sep 23:30 (outside office hours, the last
      minutes of September) to M01: counting starts 8 Oct 08:30, due 8 Oct 17:30; handled 8 Oct 17:00:
      on time, 7 h.
October: R8 dispatched 1 Oct 00:10 (ten minutes into October; 30 Sep 16:10 UTC) to M01, left: overdue.
August: R0 dispatched 20 Aug 10:00, handled on time 20 Aug 15:00 (not in September).
Never dispatched: R9 (submitted).

September by hand:
  dispatched 7; handed over 6 (R6 withdrawn); handled 4 (R1 R2 R3 R7)      → completion 4/6
  due 6 (4 handled + R4, R5 past their limits); on time 3 (R1 R2 R7)       → on-time 3/6
  never handed back 5 of 7 (R3, R6 were)                                  → accuracy 5/7, hand-back 2/7
  handled at least once 4; reopened 1 (R2)                                → rework 1/4
  working hours 6.5, 28, 16, 7 → mean 57.5/4 h = 1.916667 d, median (7+16)/2 h = 1.533333 d
  rated 2 (R1 4/5, R2 2/1) → reply 6/2 = 3, result 6/2 = 3, satisfied (both ≥ 3) 1/2
  overdue 2 (R4, R5) of 2 open; ledger 1 of 6
Per first-dispatch unit (accuracy): M01 5/6, M02 0/1; per lead unit (completion): M01 4/6, M02 0/0.
"""
from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from geoapp.domain import lifecycle, stats
from geoapp.domain.lifecycle import ActionFields
from geoapp.domain.reports import get_report
from geoapp.domain.visibility import Viewer
from geoapp.domain.working_time import OfficeHours, working_days_between
from geoapp.models import User
from tests.conftest import jpeg, report_body

TZ = ZoneInfo("Asia/Shanghai")
H = 7.5  # working hours in a working day


def L(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


class World:
    def __init__(self, db, settings, client, auth, streets):
        self.db, self.client, self.auth, self.streets = db, client, auth, streets
        self.rules = lifecycle.rules_from_settings(settings)
        with db.sessionmaker() as s:
            users = {u.username: u for u in s.query(User).all()}
            self.dispatcher = Viewer.of(users["dispatcher"])
            self.handler = {u.unit.code: Viewer.of(u) for u in users.values() if u.role == "unit_handler"}
            self.rep = Viewer.of(users["rep01"])
        self.ids: dict[str, int] = {}

    def report(self, name: str, category: str = "0104", created: dt.datetime = L(2026, 8, 1, 9, 0)) -> int:
        lon, lat = self.streets.point("S01", 0.2 + 0.05 * len(self.ids), 3)
        r = self.client.post("/api/v1/reports", json=report_body(lon, lat, category=category),
                             headers=self.auth("rep01"))
        assert r.status_code == 201, r.get_json()
        rid = r.get_json()["id"]
        with self.db.transaction() as s:   # reported before the moments below (intake stamps the real now)
            s.execute(text("UPDATE reports SET created_at = :t WHERE id = :id"), {"t": created, "id": rid})
        self.ids[name] = rid
        return rid

    def act(self, name: str, who: str, action: str, at: dt.datetime, **fields):
        viewer = {"dispatcher": self.dispatcher, "rep": self.rep}.get(who) or self.handler[who]
        if action == "handled":
            fields.setdefault("text", "已处理")
            fields.setdefault("photos", [jpeg()])
        with self.db.transaction() as s:
            rec = get_report(s, self.ids[name])
            return lifecycle.perform(s, viewer, rec["id"], action, ActionFields(version=rec["version"], **fields),
                                     self.rules, now=at)

    def dispatch(self, name: str, unit: str, at: dt.datetime):
        return self.act(name, "dispatcher", "dispatch", at, unit=unit, reason="测试派遣")

    def handle(self, name: str, unit: str, accepted: dt.datetime, handled: dt.datetime):
        self.act(name, unit, "unit_accept", accepted)
        return self.act(name, unit, "handled", handled)


@pytest.fixture
def world(app, db, settings, client, users, auth, streets) -> World:
    w = World(db, settings, client, auth, streets)
    for name in ("R0", "R1", "R2", "R3", "R4", "R5", "R6", "R8", "R9"):
        w.report(name)
    w.report("R7", category="0403")

    w.dispatch("R0", "M01", L(2026, 8, 20, 10, 0))
    w.handle("R0", "M01", L(2026, 8, 20, 11, 0), L(2026, 8, 20, 15, 0))

    rec = w.dispatch("R1", "M01", L(2026, 9, 30, 16, 0))
    assert rec["deadline_at"] == L(2026, 10, 8, 16, 0)          # the holiday inside the limit
    w.handle("R1", "M01", L(2026, 10, 8, 9, 0), L(2026, 10, 8, 15, 0))
    w.act("R1", "rep", "verify", L(2026, 10, 9, 10, 0), reply_rating=4, result_rating=5)

    w.dispatch("R2", "M01", L(2026, 9, 10, 9, 0))
    w.handle("R2", "M01", L(2026, 9, 10, 10, 0), L(2026, 9, 14, 10, 0))
    rec = w.act("R2", "rep", "verify", L(2026, 9, 15, 10, 0), reply_rating=2, result_rating=1, comment="没修好")
    assert rec["status"] == "reopened" and rec["deadline_at"] == L(2026, 9, 16, 10, 0)
    w.handle("R2", "M01", L(2026, 9, 15, 11, 0), L(2026, 9, 15, 16, 0))

    w.dispatch("R3", "M02", L(2026, 9, 15, 10, 0))
    w.act("R3", "M02", "hand_back", L(2026, 9, 15, 14, 0), reason="不属于本单位")
    rec = w.dispatch("R3", "M01", L(2026, 9, 16, 9, 0))
    assert rec["deadline_at"] == L(2026, 9, 17, 9, 0)
    w.handle("R3", "M01", L(2026, 9, 16, 10, 0), L(2026, 9, 18, 10, 0))
    w.act("R3", "dispatcher", "close", L(2026, 9, 19, 10, 0))

    w.dispatch("R4", "M01", L(2026, 9, 20, 9, 0))

    w.dispatch("R5", "M01", L(2026, 9, 25, 10, 0))
    w.act("R5", "dispatcher", "ledger", L(2026, 9, 26, 10, 0), reason="列入明年计划", promised_on=dt.date(2026, 10, 30))

    w.dispatch("R6", "M01", L(2026, 9, 28, 10, 0))
    w.act("R6", "M01", "hand_back", L(2026, 9, 28, 11, 0), reason="不属于本单位")
    w.act("R6", "dispatcher", "void", L(2026, 9, 28, 12, 0), reason="误报")

    rec = w.dispatch("R7", "M01", L(2026, 9, 30, 23, 30))
    assert rec["deadline_at"] == L(2026, 10, 8, 17, 30)
    w.handle("R7", "M01", L(2026, 10, 8, 9, 0), L(2026, 10, 8, 17, 0))

    w.dispatch("R8", "M01", L(2026, 10, 1, 0, 10))
    return w


def _hours(settings) -> OfficeHours:
    return OfficeHours.from_settings(settings)


def _figures(db, settings, start, end, by=None):
    with db.sessionmaker() as s:
        return stats.compute(s, stats.Period(start, end), by, _hours(settings))


def _vnd(fig) -> tuple:
    return fig["value"], fig["numerator"], fig["denominator"]


SEPTEMBER = (dt.date(2026, 9, 1), dt.date(2026, 9, 30))


def test_september_by_hand(world, db, settings):
    f = _figures(db, settings, *SEPTEMBER)[0]["figures"]
    assert _vnd(f["completion_rate"]) == (pytest.approx(4 / 6), 4, 6)
    assert _vnd(f["on_time_rate"]) == (0.5, 3, 6)
    assert _vnd(f["first_dispatch_accuracy"]) == (pytest.approx(5 / 7), 5, 7)
    assert _vnd(f["hand_back_rate"]) == (pytest.approx(2 / 7), 2, 7)
    assert _vnd(f["rework_rate"]) == (0.25, 1, 4)
    assert f["handling_days_mean"]["value"] == pytest.approx(57.5 / 4 / H)
    assert f["handling_days_mean"]["numerator"] == pytest.approx(57.5 / H)
    assert f["handling_days_mean"]["denominator"] == 4
    assert f["handling_days_median"]["value"] == pytest.approx((7 + 16) / 2 / H)
    assert _vnd(f["reply_rating_mean"]) == (3.0, 6, 2)
    assert _vnd(f["result_rating_mean"]) == (3.0, 6, 2)
    assert _vnd(f["satisfied_rate"]) == (0.5, 1, 2)
    assert _vnd(f["overdue"]) == (2, 2, 2)
    assert _vnd(f["ledger"]) == (1, 1, 6)
    assert all(fig["definition"] for fig in f.values())


def test_one_report_through_the_holiday(world, db, settings):
    """R1 alone (30 Sep 16:00 → 8 Oct 15:00): on time, 1 working day minus 1 hour."""
    f = _figures(db, settings, dt.date(2026, 9, 30), dt.date(2026, 9, 30))[0]["figures"]
    # 30 Sep holds R1 and R7 (23:30): both on time, 6.5 h and 7 h
    assert _vnd(f["on_time_rate"]) == (1.0, 2, 2)
    assert f["handling_days_mean"]["value"] == pytest.approx((6.5 + 7) / 2 / H)
    assert f["handling_days_median"]["value"] == pytest.approx((6.5 + 7) / 2 / H)
    one = _figures(db, settings, dt.date(2026, 9, 30), dt.date(2026, 9, 30), by="class")
    by_class = {g["code"]: g["figures"] for g in one}
    assert by_class["A"]["handling_days_mean"]["value"] == pytest.approx(1 - 1 / H)   # R1 alone
    assert by_class["B"]["handling_days_mean"]["value"] == pytest.approx(7 / H)       # R7 alone


def test_period_edges_are_local_days(world, db, settings):
    """R7 at 30 Sep 23:30 local is September's; R8 at 1 Oct 00:10 local (30 Sep 16:10 UTC) is October's."""
    oct_ = _figures(db, settings, dt.date(2026, 10, 1), dt.date(2026, 10, 31))[0]["figures"]
    assert _vnd(oct_["completion_rate"]) == (0.0, 0, 1)
    assert _vnd(oct_["overdue"]) == (1, 1, 1)
    last_day = _figures(db, settings, dt.date(2026, 9, 30), dt.date(2026, 9, 30))[0]["figures"]
    assert last_day["first_dispatch_accuracy"]["denominator"] == 2          # R1, R7; not R8
    august = _figures(db, settings, dt.date(2026, 8, 1), dt.date(2026, 8, 31))[0]["figures"]
    assert _vnd(august["completion_rate"]) == (1.0, 1, 1)
    assert _vnd(august["on_time_rate"]) == (1.0, 1, 1)
    whole = _figures(db, settings, dt.date(2026, 8, 1), dt.date(2026, 12, 31))[0]["figures"]
    assert whole["first_dispatch_accuracy"]["denominator"] == 9            # R0–R8; R9 was never dispatched


def test_per_unit(world, db, settings):
    groups = {g["code"]: g["figures"] for g in _figures(db, settings, *SEPTEMBER, by="unit")}
    assert len(groups) == 19                                                 # every unit, even without reports
    assert _vnd(groups["M01"]["first_dispatch_accuracy"]) == (pytest.approx(5 / 6), 5, 6)
    assert _vnd(groups["M02"]["first_dispatch_accuracy"]) == (0.0, 0, 1)
    assert _vnd(groups["M02"]["hand_back_rate"]) == (1.0, 1, 1)
    assert _vnd(groups["M01"]["completion_rate"]) == (pytest.approx(4 / 6), 4, 6)
    assert _vnd(groups["M02"]["completion_rate"]) == (None, 0, 0)           # handed back: nothing to complete
    assert _vnd(groups["M03"]["on_time_rate"]) == (None, 0, 0)
    assert groups["M03"]["handling_days_median"]["value"] is None


def test_per_category_street_month(world, db, settings):
    by_cat = {g["code"]: g["figures"] for g in _figures(db, settings, *SEPTEMBER, by="category")}
    assert _vnd(by_cat["01"]["completion_rate"]) == (0.6, 3, 5)            # R1 R2 R3 of R1–R5
    assert _vnd(by_cat["04"]["completion_rate"]) == (1.0, 1, 1)            # R7
    by_item = {g["code"]: g["figures"] for g in _figures(db, settings, *SEPTEMBER, by="item")}
    assert by_item["0104"]["first_dispatch_accuracy"]["denominator"] == 6
    by_street = {g["code"]: g["figures"] for g in _figures(db, settings, *SEPTEMBER, by="street")}
    assert len(by_street) == 29 and by_street["S01"]["completion_rate"]["denominator"] == 6
    assert by_street["S02"]["completion_rate"]["value"] is None
    months = _figures(db, settings, dt.date(2026, 8, 1), dt.date(2026, 10, 31), by="month")
    assert [(m["code"], m["figures"]["first_dispatch_accuracy"]["denominator"]) for m in months] == [
        ("2026-08", 1), ("2026-09", 7), ("2026-10", 1)]


def test_empty_period_has_null_values(world, db, settings):
    f = _figures(db, settings, dt.date(2025, 1, 1), dt.date(2025, 1, 31))[0]["figures"]
    for key, fig in f.items():
        if fig["kind"] == "count":
            assert fig["value"] == 0
        else:
            assert fig["value"] is None and fig["denominator"] == 0, key


def test_sql_clock_is_working_time(db, settings):
    """The statistics' SQL working-time clock agrees with working_time.working_days_between — the one
    definition — on moments around holidays, make-up days, lunch breaks and nights."""
    hours = _hours(settings)
    rng = random.Random(4)
    base = L(2024, 9, 25, 0, 0)
    pairs = []
    for _ in range(300):
        a = base + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 800))
        b = a + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * rng.choice((1, 3, 12, 40))))
        pairs.append((a, b))
    pairs += [(L(2026, 9, 30, 16, 0), L(2026, 10, 8, 15, 0)), (L(2026, 9, 20, 12, 30), L(2026, 9, 20, 13, 45)),
              (L(2026, 10, 3, 10, 0), L(2026, 10, 10, 9, 0))]
    with db.sessionmaker() as s:
        got = stats.working_days_in_sql(s, pairs, hours)
    want = [working_days_between(a, b, hours) for a, b in pairs]
    assert got == pytest.approx(want, abs=1e-9)
    assert got[-3] == pytest.approx(1 - 1 / H)
    assert got[-2] == pytest.approx(0.25 / H)      # a make-up Sunday is worked: 13:30–13:45
    assert got[-1] == pytest.approx(15.5 / H)      # 8 and 9 Oct, and the make-up Saturday 10 Oct 08:30–09:00


# --- the API ---------------------------------------------------------------------------------------

def test_api_figures_and_groups(world, as_user):
    client = as_user("leader")
    r = client.get("/api/v1/stats?from=2026-09-01&to=2026-09-30&by=unit")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["period"] == {"from": "2026-09-01", "to": "2026-09-30"}
    assert body["overall"]["completion_rate"]["numerator"] == 4
    assert body["overall"]["completion_rate"]["denominator"] == 6
    assert "交办" in body["overall"]["completion_rate"]["definition"]
    m01 = next(g for g in body["groups"] if g["code"] == "M01")
    assert (m01["figures"]["first_dispatch_accuracy"]["numerator"], m01["figures"]["first_dispatch_accuracy"]["denominator"]) == (5, 6)
    en = client.get("/api/v1/stats?from=2026-09-01&to=2026-09-30&by=class&lang=en").get_json()
    assert "handed over" in en["overall"]["completion_rate"]["definition"]
    assert [g["code"] for g in en["groups"]] == ["A", "B", "C"]
    assert en["groups"][0]["name"] == "Public facilities"
    same = client.get("/api/v1/stats?from=2026-09-01&to=2026-09-30&by=category&level=class").get_json()
    assert [g["code"] for g in same["groups"]] == ["A", "B", "C"]


def test_api_open_period_is_programme_to_date(world, as_user):
    body = as_user("dispatcher").get("/api/v1/stats").get_json()
    assert body["period"]["from"] == "2026-08-20"                 # the first dispatch
    assert body["overall"]["first_dispatch_accuracy"]["denominator"] == 9


@pytest.mark.parametrize("query, field", [
    ("from=2026-13-01", "from"), ("to=yesterday", "to"), ("from=2026-10-01&to=2026-09-01", "to"),
    ("by=colour", "by"), ("by=unit&level=class", "level"), ("by=category&level=x", "level"),
    ("from=1900-01-01", "from"),
])
def test_api_refuses_bad_queries_in_both_languages(users, as_user, query, field):
    client = as_user("admin")
    zh = client.get(f"/api/v1/stats?{query}")
    assert zh.status_code == 400
    assert zh.get_json()["error"] == "bad_input" and zh.get_json()["details"]["field"] == field
    en = client.get(f"/api/v1/stats?{query}&lang=en").get_json()
    assert en["message"].startswith(zh.get_json()["details"]["field"] + ":")
    assert not any("\u4e00" <= c <= "\u9fff" for c in en["message"]), en["message"]


def test_api_who_may_read(users, as_user, auth, client):
    assert client.get("/api/v1/stats").status_code == 401
    assert client.get("/api/v1/stats", headers=auth("rep01")).status_code == 403
    assert as_user("handler01").get("/api/v1/stats").status_code == 403
    for name in ("leader", "dispatcher", "admin"):
        assert as_user(name).get("/api/v1/stats").status_code == 200
