"""等保 2.0's password and session policy (geoapp/domain/security_policy.py, /admin/security,
migration 0015): a password may not be one of the last N, an old password must be changed at
sign-in, the lockout's count and length come from the policy (settings override it when set), a
staff session unused for the idle timeout ends, and the security administrator's page saves the
policy (audited with before and after), refuses bad values saying why, and is nobody else's."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import select, text

from geoapp.core.permissions import NotPermitted
from geoapp.demo import DEMO_PASSWORD
from geoapp.domain import accounts, audit, security_policy
from geoapp.domain.accounts import WeakPassword
from geoapp.domain.errors import BadInput
from geoapp.models import PasswordHistory, User
from tests.conftest import AuthActions
from tests.test_auth import change_password, csrf_token, move_back, user_row

PASSWORDS = [f"Linghe-river-{n:02d}" for n in range(1, 8)]
SECADMIN = audit.Actor(username="secadmin-test", role="secadmin")
DEFAULT_POLICY = ("UPDATE security_policy SET password_max_age_days = 90, password_history = 5, lockout_failures = 5, "
                  "lockout_minutes = 30, idle_timeout_minutes = 30, totp_required_for_administrators = true, "
                  "updated_by = NULL WHERE id = 1")


@pytest.fixture
def settings(settings):
    """The demo's settings whatever GEOAPP_DEMO says: administrators are offered a second factor, not
    sent to enrol (tests/test_second_factor.py covers both)."""
    return dataclasses.replace(settings, demo=True)


@pytest.fixture(autouse=True)
def default_policy(owner_db):
    """Every test starts from migration 0015's row, and leaves it so: the row outlives the tests'
    TRUNCATE (no foreign key to users), and a demo load elsewhere turns password expiry off."""
    with owner_db.engine.begin() as conn:
        conn.execute(text(DEFAULT_POLICY))
    yield
    with owner_db.engine.begin() as conn:
        conn.execute(text(DEFAULT_POLICY))


def set_policy(db, **fields) -> security_policy.Policy:
    with db.transaction() as s:
        return security_policy.update_policy(s, SECADMIN, **fields)


def audit_rows(db, event: str) -> list[dict]:
    with db.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT actor, role, outcome, object_type, object_id, details FROM audit_log WHERE event = :e ORDER BY id"),
            {"e": event}).mappings()]


def user_id(db, username: str) -> int:
    return user_row(db, username).id


def change(db, uid: int, current: str, new: str) -> None:
    with db.transaction() as s:
        accounts.change_password(s, uid, current, new)


# --- password history -----------------------------------------------------------------------------

def test_a_new_password_may_not_be_one_of_the_last_five(db, users):
    uid = user_id(db, "rep01")
    current = DEMO_PASSWORD
    for new in PASSWORDS[:5]:
        change(db, uid, current, new)
        current = new
    # the last five: 05 (the current one), 04, 03, 02, 01
    with pytest.raises(WeakPassword) as unchanged:
        change(db, uid, current, PASSWORDS[4])
    assert unchanged.value.code == "unchanged"
    for old in PASSWORDS[:4]:
        with pytest.raises(WeakPassword) as refused:
            change(db, uid, current, old)
        assert refused.value.code == "reused"
        assert refused.value.message("zh") == "新密码不能与最近 5 次使用过的密码相同。"
        assert refused.value.message("en") == "The new password may not be any of your last 5 passwords."
    change(db, uid, current, PASSWORDS[5])  # a new one: now 01 has dropped out of the last five
    change(db, uid, PASSWORDS[5], PASSWORDS[0])
    with db.sessionmaker() as s:
        kept = s.execute(select(PasswordHistory.password_hash).where(PasswordHistory.user_id == uid)).scalars().all()
    assert len(kept) == 7  # the demo password and 01…06, each replaced once; never a plain password
    assert all(h.startswith("scrypt:") for h in kept)


def test_the_operator_may_not_set_a_recent_password_either(db, users):
    uid = user_id(db, "rep02")
    change(db, uid, DEMO_PASSWORD, PASSWORDS[0])
    change(db, uid, PASSWORDS[0], PASSWORDS[1])
    for recent in PASSWORDS[:2]:  # the current one, and the one before
        with db.transaction() as s, pytest.raises(WeakPassword) as refused:
            accounts.set_password(s, "rep02", recent)
        assert refused.value.code == "reused"
    with db.transaction() as s:
        accounts.set_password(s, "rep02", PASSWORDS[2])


def test_the_history_length_is_the_policys(db, users):
    uid = user_id(db, "rep03")
    change(db, uid, DEMO_PASSWORD, PASSWORDS[0])
    change(db, uid, PASSWORDS[0], PASSWORDS[1])
    set_policy(db, password_history=1)  # only the current password is refused
    change(db, uid, PASSWORDS[1], PASSWORDS[0])
    set_policy(db, password_history=5)  # kept hashes count again at once
    with pytest.raises(WeakPassword):
        change(db, uid, PASSWORDS[0], PASSWORDS[1])


def test_the_password_page_says_a_reused_password_is_refused(client, users, signin):
    signin.login("rep01")
    assert change_password(client, DEMO_PASSWORD, PASSWORDS[0]).status_code == 302
    r = change_password(client, PASSWORDS[0], DEMO_PASSWORD.upper() + "-x")  # fine: a new one
    assert r.status_code == 302
    r = change_password(client, DEMO_PASSWORD.upper() + "-x", PASSWORDS[0], lang="en")
    assert r.status_code == 400 and "may not be any of your last 5 passwords" in r.get_data(as_text=True)


# --- password age ---------------------------------------------------------------------------------

def age_password(owner_db, username: str, days: float) -> None:
    with owner_db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET password_changed_at = now() - make_interval(secs => :s) "
                          "WHERE username = :u"), {"s": days * 86400, "u": username})


def test_a_password_older_than_the_policy_allows_must_be_changed_at_sign_in(db, owner_db, client, users, signin):
    age_password(owner_db, "dispatcher", 91)
    r = signin.login("dispatcher", next_="/map")
    assert r.status_code == 302 and r.headers["Location"] == "/account/password"
    assert client.get("/map").headers["Location"] == "/account/password"  # every page, as for a one-time password
    assert user_row(db, "dispatcher").must_change_password is True
    assert audit_rows(db, audit.SIGN_IN)[-1]["details"] == {"via": "form", "password_expired": True}
    assert change_password(client, DEMO_PASSWORD, PASSWORDS[0]).status_code == 302
    assert client.get("/map").status_code == 200
    assert user_row(db, "dispatcher").must_change_password is False


def test_a_younger_password_or_no_expiry_lets_the_user_in(db, owner_db, client, users, signin):
    age_password(owner_db, "rep01", 89)
    assert signin.login("rep01", next_="/my").headers["Location"] == "/my"
    set_policy(db, password_max_age_days=0)  # the demo's setting: passwords never expire
    age_password(owner_db, "rep02", 400)
    assert signin.login("rep02", next_="/my", client=client).headers["Location"] == "/my"
    assert user_row(db, "rep02").must_change_password is False


# --- lockout --------------------------------------------------------------------------------------

def test_the_lockout_comes_from_the_policy(db, client, users, signin):
    set_policy(db, lockout_failures=3, lockout_minutes=10)
    for _ in range(3):
        assert signin.login("rep01", password="wrong-guess").status_code == 401
    r = signin.login("rep01")  # the right password, locked out
    assert r.status_code == 429 and "登录尝试过多，请 10 分钟后再试。" in r.get_data(as_text=True)
    assert 9 * 60 < int(r.headers["Retry-After"]) <= 10 * 60
    assert audit_rows(db, audit.SIGN_IN_LOCKED)[-1]["outcome"] == "refused"


def test_settings_override_the_policys_lockout(make_app, users):
    app = make_app(login_fails_per_user=7)  # LOGIN_FAILS_PER_USER set: the policy's 5 does not apply
    actions = AuthActions(app, app.test_client())
    actions.reset_limits()
    for _ in range(6):
        assert actions.login("rep01", password="wrong-guess").status_code == 401
    assert actions.login("rep01").status_code == 302
    for _ in range(7):
        actions.login("rep02", password="wrong-guess")
    assert actions.login("rep02").status_code == 429


# --- idle timeout ---------------------------------------------------------------------------------

def test_a_staff_session_unused_for_the_idle_timeout_ends(db, client, users, signin):
    signin.login("dispatcher")
    move_back(client, seen_at=29 * 60)
    assert client.get("/map").status_code == 200  # used: the idle clock starts again
    move_back(client, seen_at=30 * 60 + 5)
    r = client.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/map")
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "您已 30 分钟未操作，为了安全已自动退出，请重新登录。" in page
    assert "分钟未操作" not in client.get("/login").get_data(as_text=True)  # said once
    assert client.get("/map").status_code == 302


def test_the_idle_timeout_is_the_policys_and_spares_representatives(db, client, users, signin):
    set_policy(db, idle_timeout_minutes=60)
    signin.login("dispatcher")
    move_back(client, seen_at=45 * 60)
    assert client.get("/map").status_code == 200
    phone = client.application.test_client()
    signin.login("rep01", client=phone)
    move_back(phone, seen_at=90 * 60)  # a representative's phone: SESSION_IDLE_MINUTES (120) only
    assert phone.get("/my").status_code == 200
    move_back(client, seen_at=61 * 60)
    with client.session_transaction() as s:
        s.permanent = True  # "keep me signed in" does not keep a staff session past the idle timeout
    assert client.get("/map").status_code == 302


# --- the policy itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("fields, field", [
    ({"lockout_minutes": 0}, "lockout_minutes"),
    ({"lockout_minutes": "abc"}, "lockout_minutes"),
    ({"lockout_failures": "１２"}, "lockout_failures"),        # fullwidth digits are not a number here
    ({"password_history": 25}, "password_history"),
    ({"password_max_age_days": -1}, "password_max_age_days"),
    ({"idle_timeout_minutes": True}, "idle_timeout_minutes"),
    ({"idle_timeout_minutes": "1e3"}, "idle_timeout_minutes"),
    ({"totp_required_for_administrators": "yes"}, "totp_required_for_administrators"),
    ({"no_such_setting": 1}, "no_such_setting"),
])
def test_update_policy_refuses_values_out_of_range(db, fields, field):
    with pytest.raises(BadInput) as refused, db.transaction() as s:
        security_policy.update_policy(s, SECADMIN, **fields)
    assert refused.value.params["field"] == field
    with db.sessionmaker() as s:
        assert security_policy.read(s).settings() == security_policy.DEFAULTS.settings()


def test_update_policy_needs_the_security_administrator(db):
    with pytest.raises(NotPermitted), db.transaction() as s:
        security_policy.update_policy(s, audit.Actor(username="sysadmin", role="sysadmin"), lockout_minutes=20)


def policy_form(**values) -> dict:
    form = {"password_max_age_days": "90", "password_history": "5", "lockout_failures": "5",
            "lockout_minutes": "30", "idle_timeout_minutes": "30", "totp_required_for_administrators": "y"}
    form.update(values)
    return {k: v for k, v in form.items() if v is not None}


def post_policy(client, lang: str | None = None, **values):
    data = policy_form(**values) | {"csrf_token": csrf_token(client, "/admin/security")}
    return client.post("/admin/security" + (f"?lang={lang}" if lang else ""), data=data)


def test_the_policy_page_saves_and_records_before_and_after(db, client, users, signin):
    signin.login("secadmin")
    page = client.get("/admin/security")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "锁定时长（分钟）" in html and 'name="lockout_minutes"' in html and 'value="30"' in html
    assert "Lockout (minutes)" in client.get("/admin/security?lang=en").get_data(as_text=True)
    r = post_policy(client, lockout_minutes="45", password_history="8", totp_required_for_administrators=None)
    assert r.status_code == 302 and r.headers["Location"] == "/admin/security?saved=1"
    saved = client.get(r.headers["Location"] + "&lang=zh").get_data(as_text=True)
    assert "安全策略已保存。" in saved and 'value="45"' in saved and re.search(r'id="policy-updated">[^<]*secadmin', saved)
    with db.sessionmaker() as s:
        policy = security_policy.read(s)
    assert (policy.lockout_minutes, policy.password_history, policy.totp_required_for_administrators) == (45, 8, False)
    assert policy.updated_by == user_id(db, "secadmin")
    row = audit_rows(db, audit.POLICY_CHANGED)[-1]
    assert (row["actor"], row["role"], row["outcome"], row["object_type"]) == ("secadmin", "secadmin", "ok",
                                                                               "security_policy")
    assert row["details"]["before"]["lockout_minutes"] == 30 and row["details"]["after"]["lockout_minutes"] == 45
    assert row["details"]["before"]["totp_required_for_administrators"] is True
    assert row["details"]["after"]["totp_required_for_administrators"] is False
    assert row["details"]["changed"] == ["lockout_minutes", "password_history", "totp_required_for_administrators"]


@pytest.mark.parametrize("values, lang, message", [
    ({"lockout_minutes": "0"}, None, "锁定时长（分钟）：须为 1 到 1440 之间的整数。"),
    ({"lockout_minutes": "0"}, "en", "lockout_minutes: must be a whole number from 1 to 1440."),
    ({"idle_timeout_minutes": "三十"}, None, "工作人员空闲超时（分钟）：须为 5 到 480 之间的整数。"),
    ({"password_history": "99999999999999999999"}, None, "密码历史（个）：须为 0 到 24 之间的整数。"),
    ({"lockout_failures": None}, "en", "lockout_failures: must be a whole number from 3 to 20."),  # left out
    ({"password_max_age_days": "12\x00"}, None, "密码有效期（天）：须为 0 到 365 之间的整数。"),
])
def test_the_policy_page_refuses_a_bad_value_and_keeps_what_was_typed(db, client, users, signin, values, lang,
                                                                       message):
    signin.login("secadmin")
    typed = "lockout_minutes" if "password_history" in values else "password_history"
    r = post_policy(client, lang, **({typed: "17"} | values))
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and message in html
    assert re.search(rf'name="{typed}" type="number"[^>]*value="17"', html)  # nothing typed is lost
    assert 'aria-invalid="true"' in html
    with db.sessionmaker() as s:
        assert security_policy.read(s).settings() == security_policy.DEFAULTS.settings()
    assert audit_rows(db, audit.POLICY_CHANGED) == []


@pytest.mark.parametrize("username", ["sysadmin", "auditor", "dispatcher", "admin", "rep01"])
def test_the_policy_page_is_the_security_administrators_only(client, users, signin, username):
    assert client.get("/admin/security").headers["Location"].startswith("/login?next=/admin/security")
    signin.login(username)
    assert client.get("/admin/security").status_code == 403
    token = csrf_token(client, "/account/password")
    assert client.post("/admin/security", data=policy_form(lockout_minutes="1") | {"csrf_token": token}
                       ).status_code == 403


def test_the_policy_page_refuses_a_form_without_its_token(db, client, users, signin):
    signin.login("secadmin")
    r = client.post("/admin/security", data=policy_form(lockout_minutes="1"))
    assert r.status_code == 400
    with db.sessionmaker() as s:
        assert security_policy.read(s).lockout_minutes == 30


def test_secadmin_lands_on_the_policy_page(client, users, signin):
    signin.login("secadmin")
    assert client.get("/").headers["Location"] == "/admin/security"


def test_the_demo_turns_password_expiry_off_once(db, users):
    from geoapp.demo import _demo_policy

    with db.transaction() as s:
        _demo_policy(s)
    with db.sessionmaker() as s:
        assert security_policy.read(s).password_max_age_days == 0
    with db.transaction() as s:  # the security administrator's own choice...
        security_policy.update_policy(s, audit.Actor(user_id=user_id(db, "secadmin"), username="secadmin",
                                                     role="secadmin"), password_max_age_days=60)
    with db.transaction() as s:
        _demo_policy(s)
    with db.sessionmaker() as s:
        assert security_policy.read(s).password_max_age_days == 60  # ...is kept by a later demo load


# --- in chromium ----------------------------------------------------------------------------------

from tests.browser.conftest import CHROMIUM, browser, live_server, offline_page, sign_in  # noqa: E402,F401


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_secadmin_changes_the_lockout_in_a_desktop_browser(browser, live_server, db, users, tmp_path):
    page = offline_page(browser, live_server, viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, "secadmin")
    assert page.url == f"{live_server}/admin/security"
    assert page.locator("#second-factor-offer").is_visible()  # the demo offers the second factor
    page.fill("#lockout_minutes", "20")
    page.screenshot(path=str(tmp_path / "security-policy-1280.png"), full_page=True)
    page.click("#policy-form button[type=submit]")
    page.wait_for_load_state("load")
    assert page.url.endswith("/admin/security?saved=1")
    assert page.locator(".admin-done").inner_text() == "安全策略已保存。"
    assert page.input_value("#lockout_minutes") == "20"
    page.fill("#lockout_minutes", "0")  # a bad value: the browser's own check is bypassed by the server test
    page.evaluate("document.getElementById('lockout_minutes').removeAttribute('min')")
    page.click("#policy-form button[type=submit]")
    page.wait_for_load_state("load")
    assert "须为 1 到 1440 之间的整数" in page.locator(".admin-error").inner_text()
    page.screenshot(path=str(tmp_path / "security-policy-refused-1280.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    errors = [e for e in page.errors if "status of 400" not in e]  # the refusal's own 400 is logged
    assert not page.blocked and not errors, (page.blocked, errors)
    with db.sessionmaker() as s:
        assert security_policy.read(s).lockout_minutes == 20
