"""The system administrator's pages (/admin; geoapp/web/admin.py over geoapp/core/administration.py):
accounts created, disabled, expired, reset and moved; units' contacts and active flag; each act's
audit row; confirmation before what takes access away; and what other roles may not do."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import text

from geoapp.domain import audit


def csrf(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


def audit_rows(db, event: str) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT actor, role, client_addr, event, object_type, object_id, outcome, details FROM audit_log "
            "WHERE event = :e ORDER BY id"), {"e": event}).mappings()]


def user_row(db, username: str):
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM users WHERE username = :u"), {"u": username}).mappings().one_or_none()


def one_time_password(html: str) -> str:
    return re.search(r'<code id="one-time-password">([^<]+)</code>', html).group(1)


@pytest.fixture
def sysadmin(as_user):
    return as_user("sysadmin")


def create(client, **fields):
    data = {"csrf_token": csrf(client, "/admin/users/new"), "username": "wang.fang", "display_name": "王芳",
            "role": "unit_handler", "unit": "M02", "representative": "", "email": "wang.fang@example.cn"}
    data.update(fields)
    return client.post("/admin/users/new", data=data)


def test_a_new_account_gets_a_one_time_password_shown_once_and_must_change_it(sysadmin, signin, db):
    r = create(sysadmin)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    password = one_time_password(r.get_data(as_text=True))
    row = user_row(db, "wang.fang")
    assert (row["role"], row["must_change_password"], row["email"]) == ("unit_handler", True, "wang.fang@example.cn")
    [created] = audit_rows(db, audit.USER_CREATED)
    assert (created["actor"], created["role"], created["object_id"]) == ("sysadmin", "sysadmin", "wang.fang")
    assert created["details"] == {"role": "unit_handler", "unit": "M02", "representative": None,
                                  "display_name": "王芳"}
    # the page showing it is the POST's answer: the account's page never shows it again
    assert password not in sysadmin.get("/admin/users/wang.fang").get_data(as_text=True)
    r = signin.login("wang.fang", password)
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")


def test_a_refused_account_says_why_and_keeps_what_was_typed(sysadmin, db):
    r = create(sysadmin, username="rep01")
    assert r.status_code == 409 and "已有名为“rep01”的账号" in r.get_data(as_text=True)
    r = create(sysadmin, username="new.rep", role="representative", representative="R01", display_name="<b>李</b>")
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "已有账号“rep01”" in html
    assert 'value="&lt;b&gt;李&lt;/b&gt;"' in html  # escaped, kept
    r = create(sysadmin, username="x y")
    assert r.status_code == 400 and "用户名须为" in r.get_data(as_text=True)
    r = create(sysadmin, unit="NOPE")
    assert r.status_code == 400 and "未知的单位编码“NOPE”" in r.get_data(as_text=True)
    assert user_row(db, "new.rep") is None and audit_rows(db, audit.USER_CREATED) == []


def test_disabling_asks_first_then_ends_sessions_and_the_api_key(sysadmin, as_user, auth, client, db):
    victim = as_user("handler03")
    assert victim.get("/unit").status_code == 200
    assert client.get("/api/v1/reports", headers=auth("handler03")).status_code == 200
    token = csrf(sysadmin, "/admin/users/handler03")
    asked = sysadmin.post("/admin/users/handler03/disable", data={"csrf_token": token})
    assert asked.status_code == 200 and "确定停用“handler03”吗" in asked.get_data(as_text=True)
    assert user_row(db, "handler03")["disabled_at"] is None  # nothing done before the confirmation
    done = sysadmin.post("/admin/users/handler03/disable", data={"csrf_token": token, "confirm": "1"})
    assert done.status_code == 302
    assert user_row(db, "handler03")["disabled_at"] is not None
    assert victim.get("/unit").status_code == 302          # back to /login
    assert client.get("/api/v1/reports", headers=auth("handler03")).status_code == 401
    [row] = audit_rows(db, audit.USER_DISABLED)
    assert (row["actor"], row["object_id"], row["outcome"]) == ("sysadmin", "handler03", "ok")
    assert sysadmin.post("/admin/users/handler03/enable", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/reports", headers=auth("handler03")).status_code == 200
    assert len(audit_rows(db, audit.USER_ENABLED)) == 1


def test_an_account_expires_at_the_start_of_its_day(sysadmin, signin, db):
    token = csrf(sysadmin, "/admin/users/rep04")
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    r = sysadmin.post("/admin/users/rep04/expiry", data={"csrf_token": token, "expires_on": today.isoformat()})
    assert r.status_code == 302
    assert signin.login("rep04").status_code == 401
    [row] = audit_rows(db, audit.USER_EXPIRY_SET)
    assert row["details"] == {"expires_on": today.isoformat(), "before": None}
    r = sysadmin.post("/admin/users/rep04/expiry", data={"csrf_token": token, "expires_on": "31/12/2027"})
    assert r.status_code == 400 and "不是日期" in r.get_data(as_text=True)
    later = (today + dt.timedelta(days=30)).isoformat()
    sysadmin.post("/admin/users/rep04/expiry", data={"csrf_token": token, "expires_on": later})
    signin.reset_limits()
    assert signin.login("rep04").status_code == 302
    assert later in sysadmin.get("/admin/users?role=representative").get_data(as_text=True)


def test_a_password_reset_gives_a_one_time_password_and_the_old_one_stops(sysadmin, signin, db):
    token = csrf(sysadmin, "/admin/users/dispatcher")
    asked = sysadmin.post("/admin/users/dispatcher/reset-password", data={"csrf_token": token})
    assert "确定重置吗" in asked.get_data(as_text=True)
    r = sysadmin.post("/admin/users/dispatcher/reset-password", data={"csrf_token": token, "confirm": "1"})
    password = one_time_password(r.get_data(as_text=True))
    assert signin.login("dispatcher").status_code == 401
    signin.reset_limits()
    assert signin.login("dispatcher", password).headers["Location"].endswith("/account/password")
    [row] = audit_rows(db, audit.PASSWORD_RESET)
    assert password not in str(row)  # the trail records the act, never the secret


def test_a_handler_moves_to_another_unit_and_a_role_changes(sysadmin, as_user, db):
    token = csrf(sysadmin, "/admin/users/handler01")
    r = sysadmin.post("/admin/users/handler01/role", data={"csrf_token": token, "role": "unit_handler",
                                                           "unit": "M05", "confirm": "1"})
    assert r.status_code == 302
    with db.engine.connect() as conn:
        unit = conn.execute(text("SELECT u.code FROM users JOIN units u ON u.id = users.unit_id "
                                 "WHERE username = 'handler01'")).scalar_one()
    assert unit == "M05"
    [moved] = audit_rows(db, audit.ASSIGNMENT_CHANGED)
    assert moved["details"]["before"]["unit"] == "M01" and moved["details"]["after"]["unit"] == "M05"
    r = sysadmin.post("/admin/users/leader/role", data={"csrf_token": token, "role": "dispatcher", "confirm": "1"})
    assert r.status_code == 302 and user_row(db, "leader")["role"] == "dispatcher"
    [changed] = audit_rows(db, audit.ROLE_CHANGED)
    assert (changed["details"]["before"]["role"], changed["details"]["after"]["role"]) == ("leader", "dispatcher")
    # a representative's record is theirs alone: giving it to a second account is refused
    r = sysadmin.post("/admin/users/leader/role", data={"csrf_token": token, "role": "representative",
                                                        "representative": "R02", "confirm": "1"})
    assert r.status_code == 409 and "rep02" in r.get_data(as_text=True)


def test_the_administrator_cannot_disable_or_demote_themselves(sysadmin, db):
    token = csrf(sysadmin, "/admin/users/sysadmin")
    r = sysadmin.post("/admin/users/sysadmin/disable", data={"csrf_token": token, "confirm": "1"})
    assert r.status_code == 409 and "不能停用自己的账号" in r.get_data(as_text=True)
    r = sysadmin.post("/admin/users/sysadmin/role", data={"csrf_token": token, "role": "auditor", "confirm": "1"})
    assert r.status_code == 409 and user_row(db, "sysadmin")["role"] == "sysadmin"


def test_a_units_contacts_are_kept_and_an_inactive_unit_is_not_dispatched_to(sysadmin, db):
    token = csrf(sysadmin, "/admin/units/M03")
    r = sysadmin.post("/admin/units/M03", data={"csrf_token": token, "contact_name": "赵科长", "phone": "0416-1234567",
                                                "email": "not-an-address", "active": "1"})
    assert r.status_code == 400 and "不是电子邮箱地址" in r.get_data(as_text=True)
    assert "赵科长" in r.get_data(as_text=True)  # what was typed stays
    r = sysadmin.post("/admin/units/M03", data={"csrf_token": token, "contact_name": "赵科长", "phone": "0416-1234567",
                                                "email": "m03@example.cn", "active": "1"})
    assert r.status_code == 302
    [row] = audit_rows(db, audit.UNIT_CHANGED)
    assert row["details"]["after"] == {"contact_name": "赵科长", "phone": "0416-1234567", "email": "m03@example.cn",
                                       "active": True}
    asked = sysadmin.post("/admin/units/M03", data={"csrf_token": token, "contact_name": "赵科长",
                                                    "phone": "0416-1234567", "email": "m03@example.cn"})
    assert "确定停用吗" in asked.get_data(as_text=True)
    sysadmin.post("/admin/units/M03", data={"csrf_token": token, "contact_name": "赵科长", "phone": "0416-1234567",
                                            "email": "m03@example.cn", "active": "0", "confirm": "1"})
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT active FROM units WHERE code = 'M03'")).scalar_one() is False


def test_inactive_unit_refused_by_the_lifecycle(db, users, client, auth, streets):
    from tests.conftest import report_body

    with db.engine.begin() as conn:
        conn.execute(text("UPDATE units SET active = false WHERE code = 'M03'"))
    lon, lat = streets.point("S01")
    created = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep01")).get_json()
    rid, version = created["id"], created["version"]
    r = client.post(f"/api/v1/reports/{rid}/actions", headers=auth("dispatcher"),
                    json={"action": "accept", "version": version})
    version = r.get_json()["version"]
    r = client.post(f"/api/v1/reports/{rid}/actions", headers=auth("dispatcher"),
                    json={"action": "dispatch", "version": version, "unit": "M03", "reason": "试"})
    assert r.status_code == 400 and "已停用" in r.get_json()["message"]


@pytest.mark.parametrize("who", ["dispatcher", "admin_is_allowed", "leader", "secadmin", "auditor", "rep01",
                                 "handler01"])
def test_who_else_may_not_keep_accounts(as_user, who, db):
    if who == "admin_is_allowed":  # the install's first account may (a fresh install is set up by one person)
        assert as_user("admin").get("/admin/users").status_code == 200
        return
    client = as_user(who)
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/units").status_code == 403
    token = csrf(client, "/account/password")
    r = client.post("/admin/users/rep05/disable", data={"csrf_token": token, "confirm": "1"})
    assert r.status_code == 403 and user_row(db, "rep05")["disabled_at"] is None


def test_the_system_administrator_is_no_dispatcher(sysadmin):
    assert sysadmin.get("/console").status_code == 403
    assert sysadmin.get("/stats").status_code == 403
    assert sysadmin.get("/").headers["Location"].endswith("/admin/users")


def test_a_post_without_the_csrf_token_is_refused(sysadmin, db):
    r = sysadmin.post("/admin/users/rep05/disable", data={"confirm": "1"})
    assert r.status_code == 400 and user_row(db, "rep05")["disabled_at"] is None


def test_the_command_line_goes_through_the_same_core(app, db, users):
    runner = app.test_cli_runner()
    app.app_context().push()  # `users` is a plain click group (see tests/test_audit.py)
    out = runner.invoke(args=["users", "create", "li.na", "--name", "李娜", "--role", "unit_handler", "--unit", "M04"])
    assert out.exit_code == 0, out.output
    assert re.search(r"li\.na: one-time password \S{16}", out.output)
    again = runner.invoke(args=["users", "create", "li.na", "--name", "李娜", "--role", "dispatcher"])
    assert again.exit_code == 1 and "已有名为“li.na”的账号" in again.output and "li.na" in again.output
    assert runner.invoke(args=["users", "disable", "li.na"]).exit_code == 0
    assert runner.invoke(args=["users", "expire", "li.na", "2030-01-01"]).exit_code == 0
    assert runner.invoke(args=["users", "role", "li.na", "dispatcher"]).exit_code == 0
    assert runner.invoke(args=["users", "api-key", "li.na", "--revoke"]).exit_code == 0  # none: nothing recorded
    [created] = audit_rows(db, audit.USER_CREATED)
    assert created["role"] == "cli" and created["actor"].startswith("cli:")
    assert [len(audit_rows(db, e)) for e in (audit.USER_DISABLED, audit.USER_EXPIRY_SET, audit.ROLE_CHANGED,
                                             audit.API_KEY_REVOKED)] == [1, 1, 1, 0]
    assert user_row(db, "li.na")["unit_id"] is None


@pytest.fixture
def city_folder(tmp_path, monkeypatch):
    import shutil

    from geoapp.config import PROJECT_ROOT
    from geoapp.web import admin as admin_pages

    folder = tmp_path / "gis_data"
    shutil.copytree(PROJECT_ROOT / "gis_data", folder)
    monkeypatch.setattr(admin_pages, "_city_folder", lambda: folder)
    return folder


def test_city_data_is_previewed_then_applied_as_previewed(sysadmin, db, city_folder):
    page = sysadmin.get("/admin/city-data")
    assert page.status_code == 200
    token = csrf(sysadmin, "/admin/city-data")
    r = sysadmin.post("/admin/city-data", data={"csrf_token": token, "step": "preview"})
    assert r.status_code == 200 and 'id="no-change"' in r.get_data(as_text=True)
    with open(city_folder / "units.csv", "a", encoding="utf-8") as f:
        f.write("M99,锦州市测试管理处,Jinzhou Test Office,municipal_department,municipal_facilities\n")
    r = sysadmin.post("/admin/city-data", data={"csrf_token": token, "step": "preview"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and re.search(r'<tr data-table="units"><td[^>]*>units</td><td[^>]*>1</td>', html)
    assert "M99" in html
    with db.engine.connect() as conn:  # a preview keeps nothing
        assert conn.execute(text("SELECT count(*) FROM units WHERE code = 'M99'")).scalar_one() == 0
    previewed = re.search(r'name="fingerprint" value="([0-9a-f]{64})"', html).group(1)
    # the folder changes after the preview: applying the old preview is refused
    (city_folder / "extra.txt").write_text("x")
    r = sysadmin.post("/admin/city-data", data={"csrf_token": token, "step": "apply", "fingerprint": previewed})
    assert r.status_code == 409 and "重新预览" in r.get_data(as_text=True)
    (city_folder / "extra.txt").unlink()
    r = sysadmin.post("/admin/city-data", data={"csrf_token": token, "step": "apply", "fingerprint": previewed})
    assert r.status_code == 200 and "城市数据已载入" in r.get_data(as_text=True)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM units WHERE code = 'M99'")).scalar_one() == 1
    [row] = audit_rows(db, audit.CITY_DATA_LOADED)
    assert row["details"]["fingerprint"] == previewed
    assert [t for t in row["details"]["tables"] if t["table"] == "units"][0]["added"] == ["M99"]
    # the city data is loaded once per test run: put the real one back for the tests after this one
    from geoapp.config import PROJECT_ROOT, Settings
    from geoapp.gis.loader import load_city_data

    with db.transaction() as session:
        load_city_data(session, PROJECT_ROOT / "gis_data", Settings(database_url="postgresql://x/y").city_bbox)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM units WHERE code = 'M99'")).scalar_one() == 0


def test_city_data_that_cannot_load_says_why_and_changes_nothing(sysadmin, city_folder):
    (city_folder / "units.csv").write_text("code,name\nM01\n", encoding="utf-8")
    token = csrf(sysadmin, "/admin/city-data")
    r = sysadmin.post("/admin/city-data", data={"csrf_token": token, "step": "preview"})
    assert r.status_code == 409 and "不能载入" in r.get_data(as_text=True)
    assert 'id="apply"' not in r.get_data(as_text=True)


def test_only_the_system_administrator_reloads_city_data(as_user):
    for who in ("dispatcher", "secadmin", "auditor", "leader"):
        assert as_user(who).get("/admin/city-data").status_code == 403, who


def test_a_street_is_handed_over_on_a_date_and_the_old_reports_still_count(sysadmin, signin, db, client, auth,
                                                                           streets):
    from tests.conftest import report_body

    lon, lat = streets.point("S05")
    old_report = client.post("/api/v1/reports", json=report_body(lon, lat), headers=auth("rep05")).get_json()["id"]
    token = csrf(sysadmin, "/admin/streets/S05")
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    asked = sysadmin.post("/admin/streets/S05", data={"csrf_token": token, "to": "sun.li", "display_name": "孙丽",
                                                      "on": today})
    assert "确定交接吗" in asked.get_data(as_text=True)
    r = sysadmin.post("/admin/streets/S05", data={"csrf_token": token, "to": "sun.li", "display_name": "孙丽",
                                                  "on": today, "confirm": "1"})
    password = one_time_password(r.get_data(as_text=True))
    # the old holder's account ends today; their report keeps its reporter; the new one holds the seat
    assert signin.login("rep05").status_code == 401
    with db.engine.connect() as conn:
        reporter = conn.execute(text("SELECT u.username FROM reports r JOIN users u ON u.id = r.reporter_id "
                                     "WHERE r.id = :id"), {"id": old_report}).scalar_one()
        seats = conn.execute(text("SELECT username FROM users WHERE representative_id = "
                                  "(SELECT representative_id FROM users WHERE username = 'rep05') ORDER BY id")).scalars().all()
    assert reporter == "rep05" and seats == ["rep05", "sun.li"]
    signin.reset_limits()
    assert signin.login("sun.li", password).headers["Location"].endswith("/account/password")
    page = sysadmin.get("/admin/streets/S05").get_data(as_text=True)
    assert "孙丽（sun.li）" in page and today in page
    [row] = audit_rows(db, audit.STREET_HANDED_OVER)
    assert row["details"] == {"representative": "R05", "on": today, "to": "sun.li", "from": ["rep05"],
                              "new_account": True}
    # the seat's coverage counts both accounts (domain/coverage.py reads every user of the seat)
    rows = sysadmin.get("/admin/streets").get_data(as_text=True)
    assert 'data-code="S05"' in rows


def test_a_handover_to_someone_holding_another_street_is_refused(sysadmin, db):
    token = csrf(sysadmin, "/admin/streets/S05")
    r = sysadmin.post("/admin/streets/S05", data={"csrf_token": token, "to": "rep06", "on": "2030-01-01",
                                                  "confirm": "1"})
    assert r.status_code == 409 and "已是另一条街路的代表" in r.get_data(as_text=True)
    r = sysadmin.post("/admin/streets/S05", data={"csrf_token": token, "to": "nobody.yet", "on": "2030-01-01",
                                                  "confirm": "1"})
    assert r.status_code == 400 and "请填写姓名" in r.get_data(as_text=True)
    r = sysadmin.post("/admin/streets/S05", data={"csrf_token": token, "to": "auditor", "on": "2030-01-01",
                                                  "confirm": "1"})
    assert r.status_code == 409
    assert audit_rows(db, audit.STREET_HANDED_OVER) == []
