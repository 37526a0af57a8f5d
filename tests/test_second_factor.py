"""The TOTP second factor (geoapp/domain/second_factor.py, web/admin_security.py): enrolling with one
code, signing in with the password then a code (the session begins only after it), a wrong code
refused, counted by the sign-in throttle and audited on its own, a code never accepted twice,
turning it off with the password and a code, and the three administrators sent to enrol before any
other page when the policy requires it — except in the demo, where their pages offer it."""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import text

from geoapp.demo import DEMO_PASSWORD
from geoapp.domain import audit, second_factor
from tests.conftest import AuthActions
from tests.test_auth import csrf_token, user_row
from tests.test_security_policy import DEFAULT_POLICY, audit_rows


@pytest.fixture
def settings(settings):
    """The demo's settings whatever GEOAPP_DEMO says (the tests of a real deployment ask make_app(demo=False))."""
    return dataclasses.replace(settings, demo=True)


@pytest.fixture(autouse=True)
def default_policy(owner_db):
    with owner_db.engine.begin() as conn:
        conn.execute(text(DEFAULT_POLICY))
    yield
    with owner_db.engine.begin() as conn:
        conn.execute(text(DEFAULT_POLICY))


def shown_secret(client) -> str:
    html = client.get("/account/second-factor").get_data(as_text=True)
    return re.search(r'<code id="totp-secret"[^>]*>([A-Z2-7 ]+)</code>', html).group(1).replace(" ", "")


def post_account(client, **data):
    token = csrf_token(client, "/account/second-factor")
    return client.post("/account/second-factor", data=data | {"csrf_token": token})


def enrol(client) -> pyotp.TOTP:
    """Enrol the signed-in user through the page, as a person with an authenticator app would."""
    totp = pyotp.TOTP(shown_secret(client))
    r = post_account(client, action="confirm", code=totp.now())
    assert r.status_code == 302 and r.headers["Location"] == "/account/second-factor?done=on", r.get_data(as_text=True)
    return totp


def send_code(client, code: str, lang: str | None = None):
    token = csrf_token(client, "/login/second-factor")
    return client.post("/login/second-factor" + (f"?lang={lang}" if lang else ""),
                       data={"csrf_token": token, "code": code})


def next_code(totp: pyotp.TOTP) -> str:
    """A code of the next step: the one a person would type once the enrolment's code has been used."""
    return totp.at(time.time() + second_factor.STEP_S)


def wrong_code(totp: pyotp.TOTP) -> str:
    valid = {totp.at(time.time() + k * second_factor.STEP_S) for k in (-1, 0, 1, 2)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in valid)


@pytest.fixture
def enrolled(app, client, users, signin):
    """rep01 with a second factor, signed out again: (client, signin, totp)."""
    signin.login("rep01")
    totp = enrol(client)
    signin.logout()
    return totp


# --- enrolling ------------------------------------------------------------------------------------

def test_enrolling_shows_a_secret_and_its_qr_code_and_one_code_confirms_it(app, db, client, users, signin):
    signin.login("rep01")
    page = client.get("/account/second-factor")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert '<svg' in html and 'class="qr-code"' in html and "<script" not in html.split("<body>")[1]
    link = re.search(r'href="(otpauth://totp/[^"]+)"', html).group(1)
    secret = shown_secret(client)
    assert len(secret) == 32 and f"secret={secret}" in link
    assert shown_secret(client) == secret  # the page opened again: the same secret (a scanned code stays right)
    assert user_row(db, "rep01").totp_enabled_at is None  # pending: sign-in does not ask for codes yet
    wrong = post_account(client, action="confirm", code="12345")
    assert wrong.status_code == 400 and "动态口令不正确" in wrong.get_data(as_text=True)
    assert shown_secret(client) == secret  # nothing lost
    enrol(client)
    row = user_row(db, "rep01")
    assert row.totp_enabled_at is not None and row.totp_secret == secret and row.totp_last_step is not None
    done = client.get("/account/second-factor?done=on").get_data(as_text=True)
    assert "动态口令已开启" in done and "totp-secret" not in done  # the secret is not shown again
    assert client.get("/map").status_code == 200  # this session carries on
    assert audit_rows(db, audit.TOTP_ENABLED)[-1]["outcome"] == "ok"


def test_enrolling_ends_the_users_other_sessions(app, client, users, signin):
    signin.login("rep01")
    other = app.test_client()
    AuthActions(app, other).login("rep01")
    enrol(client)
    assert other.get("/my").status_code == 302
    assert client.get("/my").status_code == 200


def test_the_password_page_offers_the_second_factor(client, users, signin):
    signin.login("rep01")
    html = client.get("/account/password").get_data(as_text=True)
    assert 'href="/account/second-factor"' in html and "动态口令（双因素认证）" in html


# --- signing in with a code -----------------------------------------------------------------------

def test_sign_in_asks_for_the_code_before_the_session_begins(db, client, enrolled, signin):
    r = signin.login("rep01", next_="/my")
    assert r.status_code == 302 and r.headers["Location"] == "/login/second-factor"
    assert client.get("/my").headers["Location"].startswith("/login")  # no session yet
    with client.session_transaction() as s:
        assert "_user_id" not in s
    page = client.get("/login/second-factor").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page
    r = send_code(client, next_code(enrolled))
    assert r.status_code == 302 and r.headers["Location"] == "/my"  # where the sign-in was going
    assert client.get("/my").status_code == 200
    assert audit_rows(db, audit.SIGN_IN)[-1]["details"] == {"via": "form", "second_factor": "totp"}


def test_a_wrong_code_is_refused_counted_and_audited(db, client, enrolled, signin, hash_checks):
    signin.login("rep01")
    r = send_code(client, wrong_code(enrolled))
    assert r.status_code == 401 and "动态口令不正确" in r.get_data(as_text=True)
    assert client.get("/my").status_code == 302
    row = audit_rows(db, audit.SIGN_IN_SECOND_FACTOR_FAILED)[-1]
    assert (row["actor"], row["outcome"], row["object_type"], row["details"]) == (
        "rep01", "failed", "user", {"reason": "second_factor_wrong"})
    r = send_code(client, wrong_code(enrolled), lang="en")
    assert r.status_code == 401 and "The one-time code is wrong" in r.get_data(as_text=True)
    for _ in range(3):  # five failures in all: the policy's lockout
        send_code(client, wrong_code(enrolled), lang="zh")
    r = send_code(client, next_code(enrolled))  # the right code, locked out
    assert r.status_code == 429 and "登录尝试过多" in r.get_data(as_text=True)
    assert client.get("/my").status_code == 302
    checks = len(hash_checks)
    assert signin.login("rep01").status_code == 429  # the password too: one count for both
    assert len(hash_checks) == checks
    assert len(audit_rows(db, audit.SIGN_IN_SECOND_FACTOR_FAILED)) == 5


def test_a_code_is_never_accepted_twice(db, client, enrolled, signin):
    code = next_code(enrolled)
    signin.login("rep01")
    assert send_code(client, code).status_code == 302
    signin.logout()
    signin.login("rep01")
    r = send_code(client, code)  # the same code, within its 30 seconds (seen over a shoulder)
    assert r.status_code == 401 and "这个动态口令已经用过" in r.get_data(as_text=True)
    assert audit_rows(db, audit.SIGN_IN_SECOND_FACTOR_FAILED)[-1]["details"] == {"reason": "second_factor_reused"}
    assert client.get("/my").status_code == 302


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "１２３４５６", "12a456", "\x00" * 6, "9" * 5000])
def test_nonsense_codes_are_refused_without_an_error(client, enrolled, signin, typed):
    signin.login("rep01")
    assert send_code(client, typed).status_code == 401
    signin.reset_limits()


def test_the_code_step_expires_and_needs_the_password_again(client, enrolled, signin):
    signin.login("rep01")
    with client.session_transaction() as s:
        s["second_factor_pending"] = s["second_factor_pending"] | {"at": s["second_factor_pending"]["at"] - 301}
    assert client.get("/login/second-factor").headers["Location"] == "/login"
    assert client.get("/login/second-factor").headers["Location"] == "/login"  # forgotten
    with client.session_transaction() as s:
        s["second_factor_pending"] = {"user_id": "x", "version": None, "at": int(time.time())}  # a forged cookie
    assert client.get("/login/second-factor").headers["Location"] == "/login"


def test_a_password_changed_meanwhile_ends_the_waiting_sign_in(app, db, client, enrolled, signin):
    signin.login("rep01")
    with db.transaction() as s:
        from geoapp.domain.accounts import end_sessions
        end_sessions(s, user_row(db, "rep01").id)
    assert client.get("/login/second-factor").headers["Location"] == "/login"


# --- turning it off -------------------------------------------------------------------------------

def test_turning_it_off_needs_the_password_and_a_code(db, client, enrolled, signin):
    signin.login("rep01")
    assert send_code(client, next_code(enrolled)).status_code == 302
    r = post_account(client, action="turn_off", password="wrong-guess", code=enrolled.now())
    assert r.status_code == 400 and "当前密码不正确" in r.get_data(as_text=True)
    assert audit_rows(db, audit.TOTP_DISABLED)[-1]["details"] == {"reason": "wrong_password"}
    r = post_account(client, action="turn_off", password=DEMO_PASSWORD, code=wrong_code(enrolled))
    assert r.status_code == 400 and user_row(db, "rep01").totp_enabled_at is not None
    r = post_account(client, action="turn_off", password=DEMO_PASSWORD, code=next_code_after_sign_in(db, enrolled))
    assert r.status_code == 302 and r.headers["Location"] == "/account/second-factor?done=off"
    row = user_row(db, "rep01")
    assert row.totp_enabled_at is None and row.totp_secret is None
    assert audit_rows(db, audit.TOTP_DISABLED)[-1]["outcome"] == "ok"
    signin.logout()
    assert signin.login("rep01", next_="/my").headers["Location"] == "/my"  # no code asked any more


def next_code_after_sign_in(db, totp: pyotp.TOTP) -> str:
    """A code of a step later than the last accepted one (waiting for it would take up to 30 s): the
    last accepted step is moved back one instead, as if the sign-in had been a step earlier."""
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET totp_last_step = totp_last_step - 1 WHERE username = 'rep01'"))
    return next_code(totp)


def test_an_unknown_action_is_refused(client, users, signin):
    signin.login("rep01")
    assert post_account(client, action="explode").status_code == 400


# --- the administrators ---------------------------------------------------------------------------

@pytest.mark.parametrize("username, home", [("sysadmin", "/admin/users"), ("secadmin", "/admin/security"),
                                            ("auditor", None)])
def test_an_administrator_must_enrol_before_any_other_page(make_app, db, users, username, home):
    app = make_app(demo=False)  # a real deployment
    client = app.test_client()
    actions = AuthActions(app, client)
    actions.reset_limits()
    r = actions.login(username)
    assert r.status_code == 302 and r.headers["Location"] == "/account/second-factor"
    for page in ("/", "/admin/security", "/admin/users", "/account/password"):
        assert client.get(page).headers.get("Location") == "/account/second-factor", page
    html = client.get("/account/second-factor").get_data(as_text=True)
    assert "安全策略要求管理员账号使用动态口令" in html
    totp = enrol(client)
    if home:
        assert client.get(home).status_code == 200
    r = post_account(client, action="turn_off", password=DEMO_PASSWORD, code=next_code(totp))
    assert r.status_code == 409 and "不能关闭" in r.get_data(as_text=True)
    assert user_row(db, username).totp_enabled_at is not None
    actions.logout()
    assert actions.login(username).headers["Location"] == "/login/second-factor"


def test_in_the_demo_an_administrator_is_only_offered_it(client, users, signin):
    r = signin.login("sysadmin", next_="/admin/users")
    assert r.headers["Location"] == "/admin/users"
    page = client.get("/admin/users")
    assert page.status_code == 200
    assert 'id="second-factor-offer"' in page.get_data(as_text=True)
    assert "演示环境中管理员可以暂不设置" in client.get("/account/second-factor").get_data(as_text=True)


def test_without_the_policy_an_administrator_is_not_sent_to_enrol(make_app, db, users):
    from geoapp.domain import security_policy

    with db.transaction() as s:
        security_policy.update_policy(s, audit.Actor(username="secadmin", role="secadmin"),
                                      totp_required_for_administrators=False)
    app = make_app(demo=False)
    actions = AuthActions(app, app.test_client())
    actions.reset_limits()
    assert actions.login("auditor", next_="/account/password").headers["Location"] == "/account/password"


def test_others_are_never_sent_to_enrol(make_app, users):
    app = make_app(demo=False)
    actions = AuthActions(app, app.test_client())
    actions.reset_limits()
    for username, home in (("dispatcher", "/console"), ("rep01", "/my")):
        assert actions.login(username, next_=home).headers["Location"] == home


# --- on a phone, in chromium ----------------------------------------------------------------------

from tests.browser.conftest import CHROMIUM, browser, live_server, offline_page, sign_in  # noqa: E402,F401


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_a_representative_enrols_on_a_phone(browser, live_server, db, users, tmp_path):
    page = offline_page(browser, live_server, viewport={"width": 390, "height": 844})
    sign_in(page, live_server, "rep01")
    page.goto(f"{live_server}/account/password")
    page.click("#second-factor-link")
    page.wait_for_load_state("load")
    assert page.locator("svg.qr-code").is_visible()
    page.screenshot(path=str(tmp_path / "second-factor-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    qr = page.locator("svg.qr-code").bounding_box()
    assert qr["x"] >= 0 and qr["x"] + qr["width"] <= 390
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("#confirm button[type=submit]")
    page.wait_for_load_state("load")
    assert "动态口令已开启" in page.locator(".notice").inner_text()
    page.screenshot(path=str(tmp_path / "second-factor-on-390.png"), full_page=True)
    assert not page.blocked and not page.errors, (page.blocked, page.errors)
    assert user_row(db, "rep01").totp_enabled_at is not None
