"""Signing in to the web pages: CSRF-protected form, throttled failures, revocable sessions with
absolute and idle lifetimes, one credential per surface (cookie for pages, bearer key for the API),
and changing passwords (forced for a one-time password)."""
import re

import pytest
from sqlalchemy import select

from geoapp.demo import DEMO_PASSWORD
from geoapp.models import User
from tests.conftest import AuthActions, report_body

NEW_PASSWORD = "Linghe-river-77"


def csrf_token(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


def login(client, username="dispatcher", password=DEMO_PASSWORD, next_=None):
    """Sign `client` in through the form (other test modules use this too)."""
    url = "/login" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"csrf_token": csrf_token(client), "username": username, "password": password})


def user_row(db, username: str) -> User:
    with db.sessionmaker() as s:
        return s.execute(select(User).where(User.username == username)).scalar_one()


def session_cookie_header(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


def move_back(client, **seconds):
    """Pretend the session's timestamps (signed_in_at, seen_at) lie that many seconds further back."""
    with client.session_transaction() as s:
        for key, ago in seconds.items():
            s[key] -= ago


def change_password(client, current, new, repeat=None, lang=None):
    token = csrf_token(client, "/account/password")
    return client.post("/account/password" + (f"?lang={lang}" if lang else ""), data={
        "csrf_token": token, "current": current, "new": new, "repeat": new if repeat is None else repeat})


# --- signing in and out -------------------------------------------------------------------------

def test_the_map_needs_a_signed_in_user(client, users):
    r = client.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/map")
    assert login(client, next_="/map").headers["Location"] == "/map"
    assert client.get("/map").status_code == 200


def test_wrong_password_is_refused(client, users):
    r = login(client, password="guess")
    assert r.status_code == 401 and "用户名或密码不正确" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client, users, signin, hash_checks):
    known, unknown = signin.login(password="guess-guess"), signin.login("nobody-here", password="guess-guess")
    assert known.status_code == unknown.status_code == 401
    assert "用户名或密码不正确" in unknown.get_data(as_text=True)
    assert len(hash_checks) == 2  # one hash check each: the unknown user costs as much to refuse


def test_login_without_csrf_token_is_refused(client, users):
    r = client.post("/login", data={"username": "dispatcher", "password": DEMO_PASSWORD})
    assert r.status_code == 400  # Flask-WTF's CSRF refusal, explained on a fresh form
    assert "页面已过期" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_redirects_stay_on_this_site(client, users, target):
    assert login(client, next_=target).headers["Location"] == "/"  # home: each role's own page


def test_each_role_starts_on_its_own_home(client, users, signin):
    signin.login("rep03")
    assert client.get("/").headers["Location"] == "/my"
    signin.logout()
    signin.login("dispatcher")
    assert client.get("/").headers["Location"] == "/console"


def test_logout_ends_the_session(client, users):
    login(client)
    token = csrf_token(client, "/map")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/map").status_code == 302


def test_a_copied_cookie_stops_working_at_logout(app, client, users, signin):
    signin.login()
    copied = client.get_cookie("session").value
    other = app.test_client()  # another browser (or a thief) with the same cookie
    other.set_cookie("session", copied)
    assert other.get("/map").status_code == 200  # the copy works while the session lasts
    assert signin.logout().status_code == 302
    r = other.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/map")
    assert user_row(app.extensions["geoapp_db"], "dispatcher").session_version == 2


def test_the_login_page_offers_to_keep_me_signed_in(client, users):
    assert "保持登录（30 天" in client.get("/login").get_data(as_text=True)
    assert "Keep me signed in (30 days" in client.get("/login?lang=en").get_data(as_text=True)


# --- throttling failed sign-ins -----------------------------------------------------------------

def test_five_failures_lock_the_username_even_for_the_right_password(client, users, signin, hash_checks):
    for _ in range(5):
        assert signin.login(password="wrong-guess").status_code == 401
    checks_before = len(hash_checks)
    r = signin.login()  # the right password, during the lockout
    assert r.status_code == 429
    # the security policy's lockout (migration 0015's row: 5 failures, 30 minutes; /admin/security)
    assert "登录尝试过多，请 30 分钟后再试。" in r.get_data(as_text=True)
    assert 29 * 60 < int(r.headers["Retry-After"]) <= 30 * 60
    assert len(hash_checks) == checks_before  # refused before any password hash was computed
    assert client.get("/map").status_code == 302
    assert signin.login("rep01").status_code == 302  # other usernames are not locked
    r = signin.login(" Dispatcher ", lang="en")  # nor is the lock dodged by spelling the name differently
    assert r.status_code == 429
    assert "Too many sign-in attempts; try again in 30 minutes." in r.get_data(as_text=True)
    signin.reset_limits()
    assert signin.login().status_code == 302


def test_successful_sign_ins_are_not_counted(client, users, signin):
    for _ in range(8):  # more than the 5 failures allowed
        assert signin.login().status_code == 302
    for _ in range(4):
        assert signin.login(password="wrong-guess").status_code == 401
    assert signin.login().status_code == 302


def test_failures_from_one_address_lock_that_address(make_app, users):
    app = make_app(login_fails_per_ip=3)
    here, there = app.test_client(), app.test_client()
    here.environ_base["REMOTE_ADDR"], there.environ_base["REMOTE_ADDR"] = "10.1.1.1", "10.2.2.2"
    guesser, colleague = AuthActions(app, here), AuthActions(app, there)
    for name in ("rep01", "rep02", "rep03"):  # a different username each time
        assert guesser.login(name, password="wrong-guess").status_code == 401
    assert guesser.login("rep04").status_code == 429  # right password, fresh name, same address
    assert colleague.login("rep04").status_code == 302


def test_wrong_current_passwords_count_as_failed_sign_ins(app, client, users, signin):
    signin.login("rep01")
    for _ in range(5):
        assert change_password(client, "wrong-guess", NEW_PASSWORD).status_code == 400
    r = change_password(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert r.status_code == 429 and "登录尝试过多" in r.get_data(as_text=True)
    assert AuthActions(app, app.test_client()).login("rep01").status_code == 429
    assert user_row(app.extensions["geoapp_db"], "rep01").session_version == 1  # nothing changed


# --- session lifetime and cookies ---------------------------------------------------------------

def test_a_session_ends_twelve_hours_after_signing_in(client, users, signin):
    signin.login()
    move_back(client, signed_in_at=12 * 3600 - 120, seen_at=60)
    assert client.get("/map").status_code == 200
    move_back(client, signed_in_at=180, seen_at=60)  # now 12 h 1 min ago, though in use all along
    r = client.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_a_session_ends_after_two_idle_hours(client, users, signin):
    signin.login("rep01")  # a representative's phone; staff end sooner (the policy's idle timeout)
    move_back(client, signed_in_at=90 * 60, seen_at=90 * 60)
    assert client.get("/map").status_code == 200  # in use: the idle clock starts again
    move_back(client, signed_in_at=90 * 60, seen_at=90 * 60)
    assert client.get("/map").status_code == 200
    move_back(client, seen_at=2 * 3600 + 60)
    assert client.get("/map").status_code == 302


def test_keep_me_signed_in_lasts_thirty_days_without_an_idle_limit(client, users, signin):
    r = signin.login("rep01", remember=True)  # phones: staff sessions keep the policy's idle timeout
    assert "Expires=" in session_cookie_header(r)  # outlives the browser
    move_back(client, signed_in_at=29 * 86400, seen_at=29 * 86400)
    assert client.get("/map").status_code == 200
    move_back(client, signed_in_at=86400 + 60)
    assert client.get("/map").status_code == 302


def test_session_cookie_is_httponly_lax_and_ends_with_the_browser(client, users, signin):
    cookie = session_cookie_header(signin.login())
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http by default (GEOAPP_HTTPS=0)
    assert "Expires=" not in cookie


def test_cookies_are_secure_behind_https(make_app, users):
    app = make_app(https=True)
    cookie = session_cookie_header(AuthActions(app, app.test_client()).login())
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True


# --- one credential per surface, and roles ------------------------------------------------------

def test_the_api_takes_the_session_cookie_with_csrf_on_writes_or_a_key(client, users, signin, auth, streets):
    anonymous = client.get("/api/v1/reports")
    assert anonymous.status_code == 401 and anonymous.json["error"] == "unauthorized"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    signin.login("rep03")
    assert client.get("/api/v1/reports").status_code == 200  # our own pages read with the cookie
    body = report_body(*streets.point("S03", 0.5))
    forged = client.post("/api/v1/reports", json=body)  # what a cross-site form or fetch could send
    assert forged.status_code == 400 and forged.json["error"] == "csrf_failed"
    token = signin.csrf_token("/account/password")
    sent = client.post("/api/v1/reports", json=body, headers={"X-CSRFToken": token})
    assert sent.status_code == 201
    other = report_body(*streets.point("S03", 0.6))
    assert client.post("/api/v1/reports", json=other, headers=auth("rep03")).status_code == 201  # a key needs no token
    signin.logout()
    assert client.get("/api/v1/reports").status_code == 401


def test_pages_take_the_session_and_not_a_key(client, users, auth):
    r = client.get("/map", headers=auth("dispatcher"))
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_a_page_for_some_roles_refuses_the_others(app, client, users, signin):
    from geoapp.web.auth import login_required

    app.add_url_rule("/only-admins", "only_admins", login_required("admin")(lambda: "admins only"))
    assert client.get("/only-admins").headers["Location"].startswith("/login?next=/only-admins")
    signin.login("dispatcher")
    assert client.get("/only-admins").status_code == 403
    signin.login("admin")
    assert client.get("/only-admins").get_data(as_text=True) == "admins only"


# --- changing passwords -------------------------------------------------------------------------

def test_changing_the_password_keeps_this_session_and_ends_the_others(app, client, users, signin):
    signin.login("rep01", remember=True)
    phone = app.test_client()
    signin.login("rep01", client=phone)
    copied = client.get_cookie("session").value
    r = change_password(client, DEMO_PASSWORD, NEW_PASSWORD)
    assert r.status_code == 302 and r.headers["Location"] == "/account/password?changed=1"
    assert "密码已修改" in client.get(r.headers["Location"]).get_data(as_text=True)
    assert client.get("/map").status_code == 200  # this session carries on
    with client.session_transaction() as s:
        assert s.permanent  # still "keep me signed in"
    assert phone.get("/map").status_code == 302  # every other session ended
    old_copy = app.test_client()
    old_copy.set_cookie("session", copied)
    assert old_copy.get("/map").status_code == 302
    user = user_row(app.extensions["geoapp_db"], "rep01")
    assert user.session_version == 2 and user.password_changed_at is not None
    assert signin.login("rep01", client=app.test_client()).status_code == 401  # the old password
    assert signin.login("rep01", NEW_PASSWORD, client=app.test_client()).status_code == 302


@pytest.mark.parametrize("current, new, repeat, lang, message", [
    ("wrong-guess", NEW_PASSWORD, None, None, "当前密码不正确。"),
    (DEMO_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", None, "两次输入的新密码不一致。"),
    (DEMO_PASSWORD, "a", None, None, "密码至少需要 10 个字符。"),
    (DEMO_PASSWORD, "my-name-is-rep01", None, None, "密码不能包含用户名。"),
    (DEMO_PASSWORD, "Password123", None, None, "这个密码太常见"),
    (DEMO_PASSWORD, "zzzzzzzzzzzz", None, None, "密码不能由同一个字符重复组成。"),
    (DEMO_PASSWORD, "a", None, "en", "The password must be at least 10 characters long."),
    ("wrong-guess", NEW_PASSWORD, None, "en", "The current password is wrong."),
])
def test_changing_the_password_refuses_with_a_reason(app, client, users, signin, current, new, repeat, lang, message):
    signin.login("rep01")
    r = change_password(client, current, new, repeat, lang)
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    assert client.get("/map").status_code == 200  # still signed in, nothing changed
    assert user_row(app.extensions["geoapp_db"], "rep01").session_version == 1


def test_the_password_page_needs_a_signed_in_user_and_a_csrf_token(client, users, signin):
    r = client.get("/account/password")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/account/password")
    signin.login("rep01")
    r = client.post("/account/password", data={"current": DEMO_PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert r.status_code == 400 and "页面已过期" in r.get_data(as_text=True)
    assert 'name="current"' in r.get_data(as_text=True)  # the password form again, not the sign-in form


def test_the_first_admin_must_choose_a_password_before_anything_else(app, client, signin):
    # a real deployment's first start: no demo accounts, only `geoapp users init-admin`
    with app.app_context():  # as the `geoapp` command (FlaskGroup) runs its commands
        out = app.test_cli_runner().invoke(args=["users", "init-admin"]).output
    one_time = re.search(r"one-time password (\S+)", out).group(1)
    r = signin.login("admin", one_time, next_="/map")
    assert r.status_code == 302 and r.headers["Location"] == "/account/password"
    assert client.get("/map").headers["Location"] == "/account/password"
    assert "请先设置您自己的新密码" in client.get("/account/password").get_data(as_text=True)
    assert change_password(client, one_time, NEW_PASSWORD).status_code == 302
    assert client.get("/map").status_code == 200
    assert user_row(app.extensions["geoapp_db"], "admin").must_change_password is False
