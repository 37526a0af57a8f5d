"""The handling lifecycle (geoapp/domain/lifecycle.py): the state machine exhaustively, optimistic
locking between two sessions, and the side paths (hand-back, reopening, extension, merge, ledger).

The expected rules are written out below a second time, by hand, from the issue's description — so
a change to ACTIONS that was not meant shows up here as a failure, not as a silently new rule."""
from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from sqlalchemy import text

from geoapp.domain import lifecycle
from geoapp.domain.errors import (
    ActionForbidden, ActionPrecondition, BadInput, NotFound, StaleVersion, TransitionNotAllowed,
)
from geoapp.domain.lifecycle import ActionFields
from geoapp.domain.reports import get_report
from geoapp.domain.visibility import Viewer
from geoapp.domain.vocabulary import REPORT_STATUSES, RUNNING_STATUSES
from geoapp.models import User
from tests.conftest import jpeg, report_body

RUNNING = " ".join(RUNNING_STATUSES)
# action | who may (d = dispatcher/admin, l = lead unit, c = cooperating unit, r = reporter) | from>to …
# (a state alone: the report stays in it)
EXPECTED = """
accept            d   submitted>accepted returned>accepted
reject            d   submitted>rejected accepted>rejected returned>rejected
merge             d   submitted>merged accepted>merged returned>merged
dispatch          d   submitted>dispatched accepted>dispatched returned>dispatched
unit_accept       l   dispatched>unit_accepted reopened>unit_accepted
progress          lc  unit_accepted>in_progress in_progress>in_progress reopened>in_progress ledger
handled           l   unit_accepted>handled in_progress>handled reopened>handled ledger>handled
hand_back         l   dispatched>returned unit_accepted>returned
request_extension l   dispatched unit_accepted in_progress reopened
grant_extension   d   dispatched unit_accepted in_progress reopened
refuse_extension  d   dispatched unit_accepted in_progress reopened
edit_deadline     d   dispatched unit_accepted in_progress reopened
verify            r   handled>verified
close             d   verified>closed handled>closed
reopen            d   handled>reopened verified>reopened closed>reopened
ledger            d   dispatched>ledger unit_accepted>ledger in_progress>ledger reopened>ledger
void              d   submitted>void accepted>void returned>void
album             d   accepted dispatched unit_accepted in_progress handled verified closed returned reopened ledger
"""
PARTY_OF = {"d": "dispatcher", "l": "lead_unit", "c": "cooperating_unit", "r": "reporter"}


def _expected():
    table = {}
    for line in EXPECTED.strip().splitlines():
        action, who, *moves = line.split()
        table[action] = ({PARTY_OF[c] for c in who},
                         {m.split(">")[0]: (m.split(">")[1] if ">" in m else m.split(">")[0]) for m in moves})
    return table


# Who is asking, and which party that makes them for the test report (reported by rep04, on S03).
ROLES = {
    "dispatcher": {"dispatcher"},
    "admin": {"dispatcher"},
    "leader": set(),                 # reads every report in full, acts on none
    "lead_handler": {"lead_unit"},
    "coop_handler": {"cooperating_unit"},
    "other_handler": set(),
    "reporter": {"reporter"},        # rep04
    "street_rep": set(),             # rep03: S03 is their street, so they see a summary
    "stranger": set(),               # rep05: sees nothing of it
}
DISPATCHED_ON = {"dispatched", "unit_accepted", "in_progress", "handled", "verified", "closed", "returned",
                 "reopened", "ledger"}


def _visible(role: str, state: str) -> bool:
    if role in ("lead_handler", "coop_handler"):
        return state in DISPATCHED_ON
    return role not in ("other_handler", "stranger")


@pytest.fixture
def world(app, client, users, auth, streets, db):
    """Two reports on S03 by rep04 (the test report and a survivor to merge into), the viewers."""
    ids = []
    for frac in (0.3, 0.6):
        lon, lat = streets.point("S03", frac, 3)
        r = client.post("/api/v1/reports", json=report_body(lon, lat, category="0102"), headers=auth("rep04"))
        assert r.status_code == 201, r.get_json()
        ids.append(r.get_json()["id"])
    with db.transaction() as session:
        by_name = {u.username: u for u in session.query(User).all()}
        report_unit = session.execute(text("SELECT unit_id FROM reports WHERE id = :id"), {"id": ids[0]}).scalar_one()
        handlers = {u.unit_id: u for u in by_name.values() if u.role == "unit_handler"}
        units = sorted(handlers)
        coop = next(u for u in units if u != report_unit)
        other = next(u for u in units if u not in (report_unit, coop))
        viewers = {
            "dispatcher": Viewer.of(by_name["dispatcher"]), "admin": Viewer.of(by_name["admin"]),
            "leader": Viewer.of(by_name["leader"]),
            "lead_handler": Viewer.of(handlers[report_unit]), "coop_handler": Viewer.of(handlers[coop]),
            "other_handler": Viewer.of(handlers[other]), "reporter": Viewer.of(by_name["rep04"]),
            "street_rep": Viewer.of(by_name["rep03"]), "stranger": Viewer.of(by_name["rep05"]),
        }
    return {"report": ids[0], "survivor": ids[1], "viewers": viewers, "coop_unit": coop, "unit": report_unit}


def _put_in_state(session, world, state: str) -> None:
    """The test report as the lifecycle would have left it in `state` (set directly: a fixture)."""
    now = dt.datetime.now(dt.timezone.utc)
    running = state in RUNNING_STATUSES
    session.execute(text("""
        UPDATE reports SET status = :state, version = 1, merged_into_id = :merged,
               ledger_promised_on = :promised, deadline_at = :deadline, extension_requested_until = :ext,
               extension_reason = CASE WHEN :ext IS NULL THEN NULL ELSE '需要采购材料' END
        WHERE id = :id"""), {
        "state": state, "id": world["report"],
        "merged": world["survivor"] if state == "merged" else None,
        "promised": (now + dt.timedelta(days=30)).date() if state == "ledger" else None,
        "deadline": now + dt.timedelta(days=1) if running else None,
        "ext": now + dt.timedelta(days=5) if running else None,
    })
    session.execute(text("DELETE FROM report_units WHERE report_id = :id"), {"id": world["report"]})
    session.execute(text("INSERT INTO report_units (report_id, unit_id) VALUES (:id, :u)"),
                    {"id": world["report"], "u": world["coop_unit"]})


def _fields(action: str, world, now: dt.datetime) -> ActionFields:
    """Every field an action could want, valid; the photo only where the action takes one."""
    photos = [jpeg()] if action in ("handled",) else []
    unit_code = None
    return ActionFields(version=1, reason="理由", text="已处理", comment="很好", into=world["survivor"],
                        unit=unit_code, deadline=now + dt.timedelta(days=4), until=now + dt.timedelta(days=6),
                        promised_on=(now + dt.timedelta(days=40)).date(), reply_rating=4, result_rating=4,
                        flag=True, photos=photos)


def test_every_state_action_and_role(app, db, world):
    """14 states × 18 actions × 9 people: allowed with the right next state, or refused with the
    right status (404 unseen, 403 not their party, 409 not from this state)."""
    expected = _expected()
    assert set(expected) == set(lifecycle.ACTIONS), "the hand-written table and ACTIONS name the same actions"
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    now = dt.datetime.now(dt.timezone.utc)
    suggested = None
    outcomes = {"allowed": 0, 404: 0, 403: 0, 409: 0}
    with db.transaction() as session:
        suggested = session.execute(text("SELECT code FROM units WHERE id = :u"), {"u": world["unit"]}).scalar_one()
        for state in REPORT_STATUSES:
            for action, (parties, moves) in expected.items():
                for role, role_parties in ROLES.items():
                    nested = session.begin_nested()
                    _put_in_state(session, world, state)
                    fields = _fields(action, world, now)
                    fields.unit = suggested
                    where = f"{action} by {role} in {state}"
                    try:
                        rec = lifecycle.perform(session, world["viewers"][role], world["report"], action, fields, rules)
                    except NotFound:
                        got = 404
                    except ActionForbidden:
                        got = 403
                    except TransitionNotAllowed:
                        got = 409
                    else:
                        got = ("allowed", rec["status"], rec["version"])
                    finally:
                        nested.rollback()
                    if not _visible(role, state):
                        want = 404
                    elif not parties & role_parties:
                        want = 403
                    elif state not in moves:
                        want = 409
                    else:
                        want = ("allowed", moves[state], 2)
                    assert got == want, where
                    outcomes[want if isinstance(want, int) else "allowed"] += 1
    # the table is neither all-refusing nor all-allowing (the test could not pass by accident)
    assert outcomes["allowed"] >= 50 and min(outcomes[404], outcomes[403], outcomes[409]) >= 50, outcomes


def _perform(db, app, viewer, report_id, action, **fields):
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    with db.transaction() as session:
        version = get_report(session, report_id)["version"]
        return lifecycle.perform(session, viewer, report_id, action, ActionFields(version=version, **fields), rules)


def test_stale_version_is_refused_with_the_current_state(app, db, world):
    v = world["viewers"]
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    _perform(db, app, v["dispatcher"], world["report"], "accept")
    with db.transaction() as session, pytest.raises(StaleVersion) as err:
        lifecycle.perform(session, v["admin"], world["report"], "reject", ActionFields(version=1, reason="x"), rules)
    assert err.value.params["version"] == 2 and err.value.params["status"] == "accepted"


def test_two_concurrent_sessions_cannot_both_win(app, db, world):
    """Session A takes the report (not yet committed); session B, having read the same version, tries
    another action: its UPDATE waits for A's row lock, then finds the version moved on → 409."""
    v = world["viewers"]
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    a_done, b_result = threading.Event(), {}

    def session_b():
        a_done.wait(10)
        try:
            with db.transaction() as session:
                lifecycle.perform(session, v["admin"], world["report"], "reject",
                                  ActionFields(version=1, reason="重复"), rules)
            b_result["outcome"] = "won"
        except StaleVersion as exc:
            b_result["outcome"] = ("stale", exc.params["status"])

    with db.transaction() as session_a:
        lifecycle.perform(session_a, v["dispatcher"], world["report"], "accept", ActionFields(version=1), rules)
        thread = threading.Thread(target=session_b)
        thread.start()
        a_done.set()
        thread.join(0.5)  # B is waiting on A's row lock (or already refused by its first read)
    thread.join(10)
    assert b_result["outcome"] == ("stale", "accepted")
    with db.transaction() as session:
        assert get_report(session, world["report"])["status"] == "accepted"
        assert session.execute(text("SELECT count(*) FROM report_events WHERE report_id = :id AND action IN "
                                    "('accept', 'reject')"), {"id": world["report"]}).scalar_one() == 1


# (first, second): each (report key, action, target key) as two dispatchers send them at the same moment
MERGE_RACES = {
    "merge each into the other": (("report", "merge", "survivor"), ("survivor", "merge", "report")),
    "merge into B, void B": (("report", "merge", "survivor"), ("survivor", "void", None)),
    "void B, merge into B": (("survivor", "void", None), ("report", "merge", "survivor")),
}


@pytest.mark.parametrize("race", MERGE_RACES)
def test_a_merge_racing_another_merge_or_a_void_leaves_one_winner(app, db, world, race):
    """Two dispatchers, two real sessions, both having read version 1 of both reports. The first
    action is taken and held uncommitted; the second is sent meanwhile and must wait for it (the rows
    a merge involves are locked in id order and re-read), then be refused — never a cycle of two
    merged reports, nor a report merged into one that was voided at the same moment."""
    v = world["viewers"]
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    first, second = MERGE_RACES[race]

    def fields(action, target):
        return ActionFields(version=1, into=world[target]) if action == "merge" else ActionFields(version=1, reason="误报")

    outcome = {}

    def second_dispatcher():
        key, action, target = second
        try:
            with db.transaction() as session:
                lifecycle.perform(session, v["admin"], world[key], action, fields(action, target), rules)
            outcome["second"] = "won"
        except (StaleVersion, ActionPrecondition) as exc:
            outcome["second"] = type(exc).__name__

    key, action, target = first
    with db.transaction() as session:
        lifecycle.perform(session, v["dispatcher"], world[key], action, fields(action, target), rules)
        thread = threading.Thread(target=second_dispatcher)
        thread.start()
        thread.join(1.0)
        outcome["waited"] = thread.is_alive()  # blocked on the first one's row locks
    thread.join(10)
    assert outcome["waited"] and outcome["second"] in ("StaleVersion", "ActionPrecondition"), outcome
    with db.transaction() as session:
        a, b = get_report(session, world["report"]), get_report(session, world["survivor"])
    statuses = (a["status"], b["status"])
    if first[1] == "void":
        assert statuses == ("submitted", "void")
    else:
        assert statuses == ("merged", "submitted") and a["merged_into_id"] == world["survivor"]


def test_the_api_answers_each_refusal_with_its_status(app, client, users, auth, world):
    rid = world["report"]
    post = lambda who, body: client.post(f"/api/v1/reports/{rid}/actions", json=body, headers=auth(who))  # noqa: E731
    r = post("rep04", {"action": "dispatch", "version": 1, "unit": "M01"})
    assert r.status_code == 403 and r.get_json()["error"] == "action_forbidden"
    r = post("rep05", {"action": "accept", "version": 1})
    assert r.status_code == 404
    r = post("dispatcher", {"action": "unit_accept", "version": 1})
    assert r.status_code == 403
    r = post("dispatcher", {"action": "close", "version": 1})
    assert r.status_code == 409 and r.get_json()["error"] == "transition_not_allowed"
    assert "已提交" in r.get_json()["message"]
    r = post("dispatcher", {"action": "fly", "version": 1})
    assert r.status_code == 400 and r.get_json()["error"] == "unknown_action"
    r = post("dispatcher", {"action": "reject", "version": 1})
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "reason"
    r = post("dispatcher", {"action": "accept", "version": "one"})
    assert r.status_code == 400
    r = post("dispatcher", {"action": "accept", "version": 1})
    assert r.status_code == 200 and r.get_json()["status"] == "accepted" and r.get_json()["version"] == 2
    r = post("dispatcher", {"action": "accept", "version": 1})
    assert r.status_code == 409 and r.get_json()["error"] == "stale_version"
    assert r.get_json()["details"]["version"] == 2
    r = client.post(f"/api/v1/reports/{rid}/actions?lang=en", json={"action": "close", "version": 2},
                    headers=auth("dispatcher"))
    assert r.status_code == 409 and "Accepted" in r.get_json()["message"], r.get_json()


def test_the_whole_loop_through_the_api(app, client, users, auth, world, db):
    """Dispatch → sign → progress → handled with an after photo → rated → closed; every step in the
    history, the after photo published (watermarked, no metadata) and tied to its event."""
    rid = world["report"]

    def act(who, action, files=None, **fields):
        version = client.get(f"/api/v1/reports/{rid}", headers=auth(who)).get_json()["version"]
        if files:
            data = {"action": action, "version": str(version), **fields,
                    "photo": [(io.BytesIO(b), f"p{i}.jpg") for i, b in enumerate(files)]}
            r = client.post(f"/api/v1/reports/{rid}/actions", data=data, headers=auth(who),
                            content_type="multipart/form-data")
        else:
            r = client.post(f"/api/v1/reports/{rid}/actions", json={"action": action, "version": version, **fields},
                            headers=auth(who))
        assert r.status_code == 200, (action, r.get_json())
        return r.get_json()

    with db.transaction() as session:
        handler = session.execute(text("SELECT username FROM users WHERE unit_id = :u"), {"u": world["unit"]}).scalar()
        unit_code = session.execute(text("SELECT code FROM units WHERE id = :u"), {"u": world["unit"]}).scalar()
    suggestion = client.get(f"/api/v1/reports/{rid}/dispatch-suggestion", headers=auth("dispatcher")).get_json()
    assert suggestion["unit"]["code"] == unit_code
    # the handler does not see it before it is dispatched to them
    assert client.get(f"/api/v1/reports/{rid}", headers=auth(handler)).status_code == 404
    body = act("dispatcher", "dispatch", unit=unit_code)
    assert body["status"] == "dispatched"
    gap = dt.datetime.fromisoformat(body["deadline_at"]) - dt.datetime.fromisoformat(suggestion["deadline_at"])
    assert dt.timedelta(0) <= gap < dt.timedelta(minutes=5)  # the same rule, computed a moment later
    assert "unit_accept" in client.get(f"/api/v1/reports/{rid}", headers=auth(handler)).get_json()["actions"]
    act(handler, "unit_accept")
    act(handler, "progress", text="已派人查看")
    r = client.post(f"/api/v1/reports/{rid}/actions", json={"action": "handled", "version": 4, "text": "好了"},
                    headers=auth(handler))
    assert r.status_code == 400 and r.get_json()["details"]["field"] == "photos"  # the after photo is required
    body = act(handler, "handled", files=[jpeg(colour=(10, 200, 30))], text="已修复")
    after = [p for p in body["photos"] if p["kind"] == "after"]
    assert len(after) == 1 and after[0]["event_id"] is not None
    published = client.get(after[0]["url"], headers=auth("rep04")).data
    assert published[:2] == b"\xff\xd8" and b"Exif" not in published[:2000]
    body = act("rep04", "verify", reply_rating=5, result_rating=4, comment="满意")
    assert body["status"] == "verified" and body["verification"]["reply_rating"] == 5
    body = act("dispatcher", "close")
    assert body["status"] == "closed"
    actions = [e["action"] for e in body["events"]]
    assert actions == ["submit", "dispatch", "unit_accept", "progress", "handled", "verify", "close"]
    with db.transaction() as session:
        kinds = dict(session.execute(text("SELECT kind, count(*) FROM notifications WHERE report_id = :id "
                                          "GROUP BY kind"), {"id": rid}).all())
    assert kinds.get("dispatched", 0) >= 1 and kinds.get("handled", 0) == 1


def test_unsatisfied_rating_reopens_to_the_same_unit_with_a_fresh_deadline(app, db, world):
    v, rid = world["viewers"], world["report"]
    _perform(db, app, v["dispatcher"], rid, "dispatch", unit=_code(db, world["unit"]))
    _perform(db, app, v["lead_handler"], rid, "unit_accept")
    _perform(db, app, v["lead_handler"], rid, "handled", text="好了", photos=[jpeg()])
    with pytest.raises(BadInput) as err:
        _perform(db, app, v["reporter"], rid, "verify", reply_rating=4, result_rating=2)
    assert err.value.params["field"] == "comment"
    rec = _perform(db, app, v["reporter"], rid, "verify", reply_rating=4, result_rating=2, comment="还是坏的")
    assert rec["status"] == "reopened" and rec["unit_id"] == world["unit"]
    assert rec["deadline_at"] > dt.datetime.now(dt.timezone.utc) and rec["handled_at"] is None
    assert "unit_accept" in lifecycle.available_actions(v["lead_handler"], rec)


def test_a_unit_that_hands_back_is_not_suggested_again(app, db, world):
    from geoapp.domain.dispatch import suggest_dispatch

    v, rid = world["viewers"], world["report"]
    _perform(db, app, v["dispatcher"], rid, "dispatch", unit=_code(db, world["unit"]))
    rec = _perform(db, app, v["lead_handler"], rid, "hand_back", reason="不归我们管")
    assert rec["status"] == "returned" and rec["deadline_at"] is None
    with db.transaction() as session:
        again = suggest_dispatch(session, rec)
    assert again is None or again.unit_id != world["unit"]
    # dispatching it back to the same unit anyway is an override: it needs a reason
    with pytest.raises(BadInput) as err:
        _perform(db, app, v["dispatcher"], rid, "dispatch", unit=_code(db, world["unit"]))
    assert err.value.params["field"] == "reason"


def test_extension_request_grant_and_refusal(app, db, world):
    v, rid = world["viewers"], world["report"]
    rec = _perform(db, app, v["dispatcher"], rid, "dispatch", unit=_code(db, world["unit"]))
    with pytest.raises(ActionPrecondition):
        _perform(db, app, v["dispatcher"], rid, "grant_extension")
    with pytest.raises(BadInput):  # an extension to before the current deadline is no extension
        _perform(db, app, v["lead_handler"], rid, "request_extension", until=rec["deadline_at"] - dt.timedelta(hours=1),
                 reason="材料")
    until = rec["deadline_at"] + dt.timedelta(days=3)
    rec = _perform(db, app, v["lead_handler"], rid, "request_extension", until=until, reason="需采购材料")
    assert rec["extension_requested_until"] == until
    rec = _perform(db, app, v["dispatcher"], rid, "grant_extension")
    assert rec["deadline_at"] == until and rec["extension_requested_until"] is None
    rec = _perform(db, app, v["lead_handler"], rid, "request_extension", until=until + dt.timedelta(days=2), reason="再延")
    rec = _perform(db, app, v["dispatcher"], rid, "refuse_extension", reason="时限已够")
    assert rec["deadline_at"] == until and rec["extension_requested_until"] is None


def test_merge_follows_the_survivor_and_its_reporter_sees_it(app, client, auth, db, world, streets):
    v = world["viewers"]
    lon, lat = streets.point("S05", 0.5, 2)
    r = client.post("/api/v1/reports", json=report_body(lon, lat, category="0102"), headers=auth("rep07"))
    other = r.get_json()["id"]
    assert client.get(f"/api/v1/reports/{world['survivor']}", headers=auth("rep07")).status_code == 404
    _perform(db, app, v["dispatcher"], other, "merge", into=world["report"])
    # merging the report it was merged into moves it along: no chains
    _perform(db, app, v["dispatcher"], world["report"], "merge", into=world["survivor"])
    with db.transaction() as session:
        assert get_report(session, other)["merged_into_id"] == world["survivor"]
    seen = client.get(f"/api/v1/reports/{world['survivor']}", headers=auth("rep07"))
    assert seen.status_code == 200 and seen.get_json()["access"] == "summary"
    with pytest.raises(ActionPrecondition):
        _perform(db, app, v["dispatcher"], world["survivor"], "merge", into=world["report"])  # into a merged one


def test_overdue_is_computed_from_the_deadline(app, client, auth, db, world):
    v, rid = world["viewers"], world["report"]
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    rules = lifecycle.rules_from_settings(app.config["GEOAPP"])
    with db.transaction() as session:
        lifecycle.perform(session, v["dispatcher"], rid, "dispatch", ActionFields(version=1, unit=_code(db, world["unit"])),
                          rules, now=past)
    body = client.get(f"/api/v1/reports/{rid}", headers=auth("dispatcher")).get_json()
    assert body["overdue"] is True
    listed = client.get("/api/v1/reports?overdue=1", headers=auth("dispatcher")).get_json()
    assert [f["id"] for f in listed["features"]] == [rid]
    _perform(db, app, v["dispatcher"], rid, "edit_deadline", deadline=dt.datetime.now(dt.timezone.utc)
             + dt.timedelta(days=2), reason="现场复杂")
    assert client.get("/api/v1/reports?overdue=1", headers=auth("dispatcher")).get_json()["numberMatched"] == 0


def _code(db, unit_id: int) -> str:
    with db.transaction() as session:
        return session.execute(text("SELECT code FROM units WHERE id = :u"), {"u": unit_id}).scalar_one()
