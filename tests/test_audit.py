"""The audit trail ([6] item 4; geoapp/domain/audit.py): the rows each event writes, field by field;
the hash chain verified, then broken by hand and named by `geoapp audit verify`; failures that
survive a rollback; the app's role may not change or remove a row."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from geoapp.domain import audit
from geoapp.domain.audit import Actor, record, record_independently, verify

COLUMNS = ("id, at, actor_id, actor, role, client_addr, request_id, event, object_type, object_id, outcome, "
           "details, prev_hash, hash")


def rows(db, event: str | None = None) -> list[dict]:
    with db.engine.connect() as conn:
        where = "WHERE event = :e" if event else ""
        return [dict(r) for r in conn.execute(text(f"SELECT {COLUMNS} FROM audit_log {where} ORDER BY id"),
                                              {"e": event}).mappings()]


@pytest.fixture
def proxied(make_app, users):
    """The app as production runs it: behind one trusted proxy hop (nginx), which sets X-Forwarded-For
    and X-Request-ID."""
    from tests.conftest import AuthActions

    app = make_app(trusted_proxy_hops=1, login_fails_per_user=3)
    actions = AuthActions(app, app.test_client())
    actions.reset_limits()
    return app, actions


NGINX = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "0123456789abcdef0123456789abcdef"}


def test_a_failed_sign_in_through_the_proxy_is_recorded_with_the_real_client(proxied, db):
    app, actions = proxied
    client = actions.client
    token = actions.csrf_token(client=client)
    r = client.post("/login", data={"csrf_token": token, "username": "dispatcher", "password": "wrong-password"},
                    headers=NGINX)
    assert r.status_code == 401
    [row] = rows(db, audit.SIGN_IN_FAILED)
    assert row["outcome"] == "failed"
    assert row["actor"] == "dispatcher" and row["actor_id"] is None and row["role"] is None
    assert row["client_addr"] == "203.0.113.7"          # not the proxy's 127.0.0.1
    assert row["request_id"] == NGINX["X-Request-ID"]   # the id nginx logged
    assert row["at"].tzinfo is not None
    assert row["details"] == {}


def test_sign_in_lockout_sign_out_and_password_change_each_write_their_row(proxied, db):
    app, actions = proxied
    client = actions.client
    for _ in range(3):  # login_fails_per_user=3: the fourth attempt is refused before any check
        actions.login("rep02", "wrong-password", client=client)
    r = actions.login("rep02", client=client)
    assert r.status_code == 429
    [locked] = rows(db, audit.SIGN_IN_LOCKED)
    assert (locked["actor"], locked["outcome"], locked["actor_id"]) == ("rep02", "refused", None)
    assert locked["details"]["wait_s"] > 0
    assert len(rows(db, audit.SIGN_IN_FAILED)) == 3

    assert actions.login("rep03", client=client).status_code == 302
    [signed_in] = rows(db, audit.SIGN_IN)
    with db.engine.connect() as conn:
        rep03 = conn.execute(text("SELECT id FROM users WHERE username = 'rep03'")).scalar_one()
    assert (signed_in["actor_id"], signed_in["actor"], signed_in["role"]) == (rep03, "rep03", "representative")
    assert (signed_in["object_type"], signed_in["object_id"], signed_in["outcome"]) == ("user", str(rep03), "ok")
    assert signed_in["details"] == {"via": "form"}

    from geoapp.demo import DEMO_PASSWORD
    token = actions.csrf_token("/account/password", client=client)
    new = "Gx7-quiet-harbour-41"
    r = client.post("/account/password", data={"csrf_token": token, "current": "not-it", "new": new, "repeat": new})
    assert r.status_code == 400
    [wrong] = rows(db, audit.PASSWORD_CHANGED)
    assert (wrong["outcome"], wrong["actor"], wrong["details"]) == ("failed", "rep03",
                                                                    {"reason": "wrong_current_password"})
    token = actions.csrf_token("/account/password", client=client)
    r = client.post("/account/password", data={"csrf_token": token, "current": DEMO_PASSWORD, "new": new,
                                                 "repeat": new})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    changed = rows(db, audit.PASSWORD_CHANGED)
    assert [c["outcome"] for c in changed] == ["failed", "ok"]
    assert changed[1]["object_id"] == str(rep03)

    assert actions.logout(client=client).status_code == 302
    [out] = rows(db, audit.SIGN_OUT)
    assert (out["actor"], out["object_id"], out["outcome"]) == ("rep03", str(rep03), "ok")
    assert verify_now(db).ok


def verify_now(db):
    with db.engine.connect() as conn:
        return verify(conn)


def test_a_rollback_takes_its_own_row_with_it_but_not_an_independent_one(db):
    actor = Actor(username="someone", client_addr="198.51.100.2")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with db.transaction() as session:
            record(session, actor, audit.PASSWORD_CHANGED, object_type="user", object_id=1)
            record_independently(db.engine, actor, audit.SIGN_IN_FAILED, outcome="failed")
            raise Boom
    assert [r["event"] for r in rows(db)] == [audit.SIGN_IN_FAILED]
    assert verify_now(db).ok


def test_the_chain_is_verified_and_an_altered_row_is_named(app, db, owner_db):
    actor = Actor(user_id=7, username="dispatcher", role="dispatcher", client_addr="10.0.0.1", request_id="r1")
    ids = [record_independently(db.engine, actor, audit.SIGN_IN, object_type="user", object_id=7,
                                details={"via": "form", "n": n, "名": "张三"}) for n in range(5)]
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "5 rows checked" in ok.output

    with owner_db.engine.begin() as conn:  # someone with the owner's password edits history
        conn.execute(text("UPDATE audit_log SET client_addr = '10.9.9.9' WHERE id = :id"), {"id": ids[2]})
    bad = runner.invoke(args=["audit", "verify"])
    assert bad.exit_code == 1
    assert re.search(rf"row id {ids[2]}\b", bad.output), bad.output

    with owner_db.engine.begin() as conn:  # put back, then remove a row from the middle
        conn.execute(text("UPDATE audit_log SET client_addr = '10.0.0.1' WHERE id = :id"), {"id": ids[2]})
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    with owner_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[1]})
    gone = runner.invoke(args=["audit", "verify"])
    assert gone.exit_code == 1 and f"row id {ids[2]}" in gone.output  # the row after the gap no longer links


def test_writers_racing_each_other_keep_one_chain(db):
    def write(n):
        for i in range(25):
            record_independently(db.engine, Actor(username=f"w{n}"), audit.SIGN_IN, details={"i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = verify_now(db)
    assert verdict.rows == 100 and verdict.ok


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET outcome = 'ok'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "UPDATE {partition} SET outcome = 'ok'",
    "DELETE FROM {partition}",
    "INSERT INTO audit_anchor (before, last_id, last_hash, rows, file, file_sha256) VALUES (now(), 1, 'x', 1, 'f', 'h')",
])
def test_the_apps_role_may_not_change_or_remove_a_row(db, statement):
    record_independently(db.engine, Actor(username="x"), audit.SIGN_IN)
    with db.engine.connect() as conn:
        partition = conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'audit_log'::regclass ORDER BY 1 LIMIT 1")).scalar_one()
    with db.engine.connect() as conn:
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text(statement.format(partition=partition)))
    assert len(rows(db)) == 1


def test_the_cli_records_an_api_key_issued_and_a_password_set(app, db, users):
    runner = app.test_cli_runner()
    # `users` is a plain click group: `geoapp` (FlaskGroup) pushes the app context for it, the test
    # runner does not
    app.app_context().push()
    assert runner.invoke(args=["users", "api-key", "rep05"]).exit_code == 0
    [row] = rows(db, audit.API_KEY_ISSUED)
    assert (row["object_type"], row["object_id"], row["role"]) == ("user", "rep05", "cli")
    assert row["actor"].startswith("cli:")
    done = runner.invoke(args=["users", "set-password", "rep05", "--must-change"],
                         input="Gx7-quiet-harbour-41\nGx7-quiet-harbour-41\n")
    assert done.exit_code == 0, done.output
    [pw] = rows(db, audit.PASSWORD_SET)
    assert pw["details"] == {"must_change": True}
    assert verify_now(db).ok


def test_partitions_are_made_by_the_owner(app, db):
    out = app.test_cli_runner().invoke(args=["audit", "partitions", "--months-ahead", "30"])
    assert out.exit_code == 0, out.output
    assert re.search(r"^\d+ partitions made", out.output)
    with db.engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass")).scalar()
    assert n >= 31 + 1  # this month and 30 ahead, and the default partition


def test_every_lifecycle_step_is_audited_with_its_event_and_a_refusal_too(client, auth, users, streets, db):
    from tests.conftest import report_body

    lon, lat = streets.point("S01")
    created = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep01")).get_json()
    rid = created["id"]
    r = client.post(f"/api/v1/reports/{rid}/actions", headers=auth("dispatcher"),
                    json={"action": "accept", "version": created["version"]})
    assert r.status_code == 200
    [row] = rows(db, audit.REPORT_ACTION)
    with db.engine.connect() as conn:
        event_id = conn.execute(text("SELECT max(id) FROM report_events WHERE report_id = :r AND action = 'accept'"),
                                {"r": rid}).scalar_one()
    assert (row["actor"], row["role"], row["object_type"], row["object_id"], row["outcome"]) == \
        ("dispatcher", "dispatcher", "report", str(rid), "ok")
    assert row["details"] == {"event_id": event_id, "action": "accept", "from": "submitted", "to": "accepted"}
    stale = client.post(f"/api/v1/reports/{rid}/actions", headers=auth("dispatcher"),
                        json={"action": "reject", "version": created["version"], "reason": "重复"})
    assert stale.status_code == 409
    refused = rows(db, audit.REPORT_ACTION)[-1]
    assert (refused["outcome"], refused["details"]["action"], refused["details"]["status"]) == ("refused", "reject", 409)
    assert verify_now(db).ok


def test_reads_are_audited_for_staff_and_not_for_a_representative_on_their_own(client, auth, users, streets, db,
                                                                              as_user):
    from tests.conftest import report_body

    lon, lat = streets.point("S01")
    rid = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep01")).get_json()["id"]
    assert client.get(f"/api/v1/reports/{rid}", headers=auth("rep01")).status_code == 200
    assert rows(db, audit.REPORT_VIEW) == []
    assert client.get(f"/api/v1/reports/{rid}", headers=auth("leader")).status_code == 200
    [one] = rows(db, audit.REPORT_VIEW)
    assert (one["actor"], one["object_type"], one["object_id"]) == ("leader", "report", str(rid))
    assert client.get("/api/v1/reports?street=S01&limit=5", headers=auth("dispatcher")).status_code == 200
    listed = rows(db, audit.REPORT_VIEW)[-1]
    assert listed["object_type"] == "report_list"
    assert listed["details"]["filters"] == {"street": "S01", "limit": "5"} and listed["details"]["total"] == 1
    assert as_user("dispatcher").get(f"/console/reports/{rid}").status_code == 200
    assert rows(db, audit.REPORT_VIEW)[-1]["details"]["path"] == f"/console/reports/{rid}"
    r = client.get("/api/v1/exports/reports.csv?street=S01", headers=auth("leader"))
    assert r.status_code == 200
    [export] = rows(db, audit.EXPORT)
    assert (export["actor"], export["details"]["format"], export["details"]["rows"],
            export["details"]["filters"]) == ("leader", "csv", 1, {"street": "S01"})
    assert verify_now(db).ok
