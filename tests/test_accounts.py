"""Accounts in the domain and on the command line: the password policy, equal-cost authentication,
session versions, the first admin's one-time password, and demo accounts only when asked for."""
import dataclasses
import re

import pytest
from sqlalchemy import func, select, text

from geoapp.demo import DEMO_PASSWORD, _ensure_users, load_demo, users_with_demo_password
from geoapp.domain.accounts import (WeakPassword, WrongPassword, authenticate, change_password,
                                    check_password_policy, create_first_admin, end_sessions, set_password)
from geoapp.models import Report, User

GOOD = "Linghe-river-77"


def cli(app, *args, input=None):
    """Run a `geoapp` command against the test app (its database), as the real command does."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args), input=input)


def user_row(db, username: str) -> User:
    with db.sessionmaker() as s:
        return s.execute(select(User).where(User.username == username)).scalar_one()


def add_user(db, username: str, role: str = "dispatcher", password_hash: str | None = None) -> None:
    with db.transaction() as s:
        s.add(User(username=username, display_name=username, role=role, password_hash=password_hash))


# --- the password policy ------------------------------------------------------------------------

@pytest.mark.parametrize("username, password, code, zh, en", [
    ("rep01", "a", "too_short", "密码至少需要 10 个字符。", "The password must be at least 10 characters long."),
    ("rep01", "Short-pw1", "too_short", "至少需要 10 个字符", "at least 10 characters"),
    ("rep01", "aaaaaaaaaaaa", "one_character", "同一个字符", "one character repeated"),
    ("rep01", "xx-REP01-secret", "contains_username", "不能包含用户名", "must not contain the username"),
    ("rep01", "jinzhou-demo", "common", "太常见", "too common"),
    ("rep01", "QwertyUiop", "common", "太常见", "too common"),
    ("rep01", "123456789a", "common", "太常见", "too common"),
])
def test_the_policy_names_the_rule_a_password_breaks(username, password, code, zh, en):
    with pytest.raises(WeakPassword) as err:
        check_password_policy(username, password)
    assert err.value.code == code
    assert zh in err.value.message("zh") and en in err.value.message("en")


@pytest.mark.parametrize("password", [GOOD, "凌河岸边的老槐树下面", "correct horse battery"])
def test_the_policy_accepts_a_reasonable_password(password):
    assert check_password_policy("rep01", password) is None


# --- authentication costs the same for every refusal --------------------------------------------

def test_every_sign_in_checks_exactly_one_hash(db, users, hash_checks):
    add_user(db, "no-password")
    with db.sessionmaker() as s:
        outcomes = [authenticate(s, name, pw) for name, pw in (
            ("dispatcher", "wrong-guess"),    # known user, wrong password
            ("nobody", "wrong-guess"),        # unknown user
            ("no-password", "wrong-guess"),   # a user who cannot sign in with a password at all
            ("no-password", ""),              # ... not even with an empty one
            ("dispatcher", DEMO_PASSWORD),    # the right one
        )]
    assert [u.username if u else None for u in outcomes] == [None, None, None, None, "dispatcher"]
    assert len(hash_checks) == 5  # one each: refusing an unknown user costs a hash too
    assert hash_checks[1] == hash_checks[2] == hash_checks[3] != hash_checks[0]  # the dummy hash


# --- sessions' version, and setting passwords ---------------------------------------------------

def test_end_sessions_raises_the_version(db, users):
    with db.transaction() as s:
        user = s.execute(select(User).where(User.username == "rep02")).scalar_one()
        end_sessions(s, user.id)
        assert user.session_version == 2  # the loaded object follows the database
    with db.transaction() as s:
        end_sessions(s, user.id)
    assert user_row(db, "rep02").session_version == 3


def test_set_password_checks_the_policy_and_ends_sessions(db, users):
    with db.transaction() as s, pytest.raises(WeakPassword):
        set_password(s, "rep01", "a")
    assert user_row(db, "rep01").session_version == 1
    with db.transaction() as s:
        set_password(s, "rep01", GOOD, must_change=True)
    user = user_row(db, "rep01")
    assert user.session_version == 2 and user.must_change_password and user.password_changed_at is not None
    with db.sessionmaker() as s:
        assert authenticate(s, "rep01", GOOD).username == "rep01"
        assert authenticate(s, "rep01", DEMO_PASSWORD) is None


def test_change_password_needs_the_current_one_and_a_different_new_one(db, users):
    uid = user_row(db, "rep03").id
    with db.transaction() as s, pytest.raises(WrongPassword):
        change_password(s, uid, "wrong-guess", GOOD)
    with db.transaction() as s:
        set_password(s, "rep03", GOOD)
    with db.transaction() as s, pytest.raises(WeakPassword) as err:
        change_password(s, uid, GOOD, GOOD)
    assert err.value.code == "unchanged" and "不能与当前密码相同" in err.value.message("zh")
    with db.transaction() as s:
        user = change_password(s, uid, GOOD, "Another-fine-one")
        assert user.session_version == 3 and not user.must_change_password


def test_cli_set_password_refuses_a_weak_password(app, users):
    r = cli(app, "users", "set-password", "rep01", input="a\na\n")
    assert r.exit_code == 1
    assert "密码至少需要 10 个字符。" in r.output and "at least 10 characters" in r.output
    r = cli(app, "users", "set-password", "rep01", input="rep01rep01rep01\nrep01rep01rep01\n")
    assert r.exit_code == 1 and "用户名" in r.output
    assert user_row(app.extensions["geoapp_db"], "rep01").session_version == 1  # nothing was set
    r = cli(app, "users", "set-password", "rep01", input=f"{GOOD}\n{GOOD}\n")
    assert r.exit_code == 0 and "password set for rep01" in r.output
    assert user_row(app.extensions["geoapp_db"], "rep01").session_version == 2


def test_cli_set_password_can_demand_a_change_at_next_sign_in(app, users):
    r = cli(app, "users", "set-password", "--must-change", "rep05", input=f"{GOOD}\n{GOOD}\n")
    assert r.exit_code == 0
    assert user_row(app.extensions["geoapp_db"], "rep05").must_change_password is True


# --- the first admin ----------------------------------------------------------------------------

def test_init_admin_creates_one_admin_once_with_a_one_time_password(app, db):
    first = cli(app, "users", "init-admin")
    assert first.exit_code == 0
    password = re.search(r"one-time password (\S+)", first.output).group(1)
    check_password_policy("admin", password)
    admin = user_row(db, "admin")
    assert admin.role == "admin" and admin.must_change_password
    with db.sessionmaker() as s:
        assert authenticate(s, "admin", password).username == "admin"
    again = cli(app, "users", "init-admin")
    assert again.exit_code == 0 and again.output == ""  # quiet, and the password is never shown again
    with db.sessionmaker() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1


def test_init_admin_is_quiet_when_the_demo_made_an_admin(app, users):
    r = cli(app, "users", "init-admin")
    assert r.exit_code == 0 and r.output == ""
    assert user_row(app.extensions["geoapp_db"], "admin").must_change_password is False


def test_init_admin_refuses_to_take_over_a_non_admin_of_that_name(db):
    add_user(db, "admin", role="dispatcher")
    with db.transaction() as s, pytest.raises(ValueError, match="not an admin"):
        create_first_admin(s)


# --- demo accounts only in a demo ---------------------------------------------------------------

def test_the_demo_password_goes_only_to_accounts_the_demo_creates(db):
    add_user(db, "dispatcher")  # existing, no password yet
    add_user(db, "zhang.wei")   # a real user, no password yet
    with db.transaction() as s:
        _ensure_users(s)
    assert user_row(db, "dispatcher").password_hash is None
    assert user_row(db, "zhang.wei").password_hash is None
    with db.sessionmaker() as s:
        assert authenticate(s, "rep01", DEMO_PASSWORD) is not None
        assert authenticate(s, "admin", DEMO_PASSWORD) is not None
        assert users_with_demo_password(s) == sorted(
            [f"rep{n:02d}" for n in range(1, 30)] + [f"handler{n:02d}" for n in range(1, 20)] + ["admin", "auditor", "leader", "secadmin", "sysadmin"])


def test_demo_load_with_demo_off_creates_nothing(db, settings):
    with db.transaction() as s:
        message = load_demo(s, dataclasses.replace(settings, demo=False), n_reports=3)
    assert "GEOAPP_DEMO=0" in message and "WARNING" not in message
    with db.sessionmaker() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(Report)).scalar_one() == 0


def test_demo_load_with_demo_off_warns_about_leftover_demo_passwords(db, settings, users):
    with db.transaction() as s:
        set_password(s, "admin", GOOD)
    with db.transaction() as s:
        message = load_demo(s, dataclasses.replace(settings, demo=False), n_reports=3)
    named = set(re.findall(r"[a-z]+\d*", message.split(":", 2)[-1]))
    assert "WARNING" in message and {"rep01", "dispatcher", "sysadmin"} <= named and "admin" not in named
    with db.sessionmaker() as s:
        assert s.execute(select(func.count()).select_from(Report)).scalar_one() == 0


def test_cli_demo_load_follows_the_setting(db, settings, make_app):
    off = cli(make_app(demo=False), "demo", "load", "--reports", "2")
    assert off.exit_code == 0 and "GEOAPP_DEMO=0" in off.output
    with db.sessionmaker() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0
    on = cli(make_app(demo=True), "demo", "load", "--reports", "2")
    assert on.exit_code == 0 and "2 demo reports created" in on.output
    assert user_row(db, "dispatcher").must_change_password is False


def test_geoapp_demo_setting_reads_the_environment(monkeypatch, database_url):
    from geoapp.config import Settings

    for raw, expected in (("0", False), ("1", True), ("", True), ("false", False)):
        monkeypatch.setenv("GEOAPP_DEMO", raw)
        assert Settings(database_url=database_url, secret_key="x").demo is expected
    monkeypatch.delenv("GEOAPP_DEMO")
    assert Settings(database_url=database_url, secret_key="x").demo is True  # a first run is a demo
    monkeypatch.setenv("GEOAPP_HTTPS", "1")
    assert Settings(database_url=database_url, secret_key="x").https is True
    monkeypatch.delenv("GEOAPP_HTTPS")
    assert Settings(database_url=database_url, secret_key="x").https is False


# --- the migration ------------------------------------------------------------------------------

def test_new_users_start_with_session_version_one_and_no_forced_change(db):
    with db.engine.begin() as conn:  # as a row written without the ORM gets them
        conn.execute(text("INSERT INTO users (username, display_name, role) VALUES ('raw', 'raw', 'admin')"))
        row = conn.execute(text("SELECT session_version, must_change_password, password_changed_at "
                                "FROM users WHERE username = 'raw'")).one()
    assert tuple(row) == (1, False, None)
    with db.engine.begin() as conn, pytest.raises(Exception, match="null value"):
        conn.execute(text("UPDATE users SET session_version = NULL"))
