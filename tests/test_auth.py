"""Signing in to the web pages: CSRF-protected form, server-side checks, safe redirects."""
import re

import pytest

from geoapp.demo import DEMO_PASSWORD


def csrf_token(client, path="/login") -> str:
    html = client.get(path).get_data(as_text=True)
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
    return re.search(r'value="([^"]+)"', tag).group(1)


def login(client, username="dispatcher", password=DEMO_PASSWORD, next_=None):
    url = "/login" + (f"?next={next_}" if next_ else "")
    return client.post(url, data={"csrf_token": csrf_token(client), "username": username, "password": password})


def test_the_map_needs_a_signed_in_user(client, users):
    r = client.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=/map")
    assert login(client, next_="/map").headers["Location"] == "/map"
    assert client.get("/map").status_code == 200


def test_wrong_password_is_refused(client, users):
    r = login(client, password="guess")
    assert r.status_code == 401 and "用户名或密码不正确" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302


def test_login_without_csrf_token_is_refused(client, users):
    r = client.post("/login", data={"username": "dispatcher", "password": DEMO_PASSWORD})
    assert r.status_code == 400  # Flask-WTF's CSRF refusal, explained on a fresh form
    assert "页面已过期" in r.get_data(as_text=True)
    assert client.get("/map").status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_redirects_stay_on_this_site(client, users, target):
    assert login(client, next_=target).headers["Location"] == "/map"


def test_logout_ends_the_session(client, users):
    login(client)
    token = csrf_token(client, "/map")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/map").status_code == 302
