"""Who may see a report is said twice in geoapp/domain/visibility.py: `visible` (the SQL condition
every list, map and count filters by) and `access` (the rule for one record, which every report page
and API answer asks). They must agree: a report a list shows must open, and one that opens must be
in the lists. Hypothesis makes the reports (reporter, street, status, lead and cooperating units,
duplicates merged into them) and the viewers (any role, street and unit), and both rules are asked
on the same rows."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import select, text

from geoapp.domain.reports import access_to, get_report
from geoapp.domain.visibility import Viewer, visible
from geoapp.domain.vocabulary import REPORT_STATUSES, USER_ROLES
from geoapp.models import Report, User
from tests.conftest import report_body

STREETS = ("S01", "S02", "S03")
N_REPORTS = 6


@pytest.fixture
def world(client, users, auth, streets, db):
    """Six reports on three streets (made through the API, so every column is as intake leaves it);
    the examples below rewrite who and where they are, inside a transaction they roll back."""
    ids = []
    for i in range(N_REPORTS):
        lon, lat = streets.point(STREETS[i % 3], 0.2 + 0.1 * i, 2)
        r = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth(f"rep0{1 + i % 3}"))
        assert r.status_code == 201, r.get_json()
        ids.append(r.get_json()["id"])
    with db.sessionmaker() as session:
        user_ids = [u for u in session.execute(select(User.id).order_by(User.id)).scalars()][:8]
        street_ids = list(session.execute(text("SELECT id FROM streets WHERE code = ANY(:c) ORDER BY id"),
                                          {"c": list(STREETS)}).scalars())
        unit_ids = list(session.execute(text("SELECT id FROM units ORDER BY id LIMIT 3")).scalars())
    return {"reports": ids, "users": user_ids, "streets": street_ids, "units": unit_ids}


def _report(world):
    return st.fixed_dictionaries({
        "reporter": st.sampled_from(world["users"]), "street": st.sampled_from(world["streets"]),
        "status": st.sampled_from(REPORT_STATUSES), "unit": st.sampled_from(world["units"]),
        "cooperating": st.sets(st.sampled_from(world["units"]), max_size=2),
        "into": st.integers(0, N_REPORTS - 1),
    })


def _viewer(world):
    return st.builds(Viewer, user_id=st.sampled_from(world["users"]), role=st.sampled_from(USER_ROLES),
                     street_id=st.none() | st.sampled_from(world["streets"]),
                     unit_id=st.none() | st.sampled_from(world["units"]))


def test_the_sql_rule_and_the_record_rule_agree(db, world):
    @hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None,
               derandomize=True)  # the same examples in every run: CI and a developer see the same
    @given(data=st.data())
    def check(data):
        reports = [data.draw(_report(world), label=f"report {i}") for i in range(N_REPORTS)]
        viewers = data.draw(st.lists(_viewer(world), min_size=1, max_size=4), label="viewers")
        with db.sessionmaker() as session:
            try:
                for i, (rid, r) in enumerate(zip(world["reports"], reports)):
                    target = world["reports"][r["into"]]
                    merged = r["status"] == "merged" and target != rid
                    session.execute(text("""
                        UPDATE reports SET reporter_id = :reporter, street_id = :street, unit_id = :unit,
                               status = :status, merged_into_id = :into,
                               ledger_promised_on = CASE WHEN :status = 'ledger' THEN current_date + 30 END
                         WHERE id = :id"""), {
                        "reporter": r["reporter"], "street": r["street"], "unit": r["unit"], "id": rid,
                        "status": r["status"] if r["status"] != "merged" or merged else "submitted",
                        "into": target if merged else None})
                    session.execute(text("DELETE FROM report_units WHERE report_id = :id"), {"id": rid})
                    for unit in r["cooperating"] - {r["unit"]}:
                        session.execute(text("INSERT INTO report_units (report_id, unit_id) VALUES (:r, :u)"),
                                        {"r": rid, "u": unit})
                for viewer in viewers:
                    by_sql = set(session.execute(select(Report.id).where(
                        Report.id.in_(world["reports"]), visible(viewer))).scalars())
                    by_record = {rid for rid in world["reports"]
                                 if access_to(viewer, get_report(session, rid)) is not None}
                    assert by_sql == by_record, (viewer, reports)
            finally:
                session.rollback()

    check()
