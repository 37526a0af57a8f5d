"""The request id and the app's log lines (geoapp/logs.py): the id nginx sends is taken only from a
trusted proxy and only when sane, echoed, and on every record of the request; JSON lines parse, stay
one line whatever a client puts in the path, and carry no password, cookie or key."""
import json
import logging
import re
from datetime import datetime

import pytest

from geoapp.config import Settings
from geoapp.demo import DEMO_PASSWORD

FRESH_ID = re.compile(r"[0-9a-f]{32}")


def json_lines(captured: str) -> list[dict]:
    """Every line the app wrote, each parsed: a line that is not one JSON object fails the test."""
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def access_lines(entries: list[dict], request_id: str) -> list[dict]:
    return [e for e in entries if e["logger"] == "geoapp.access" and e["request_id"] == request_id]


def test_proxy_request_id_is_echoed(make_app):
    client = make_app(trusted_proxy_hops=1).test_client()
    response = client.get("/healthz", headers={"X-Request-ID": "3f2a9c0e.req-17_b"})
    assert response.headers["X-Request-ID"] == "3f2a9c0e.req-17_b"


@pytest.mark.parametrize("hostile", ['a"b', "a b", "x" * 65, "id;rm", "ä", "{}"])
def test_insane_request_id_is_replaced(make_app, hostile):
    client = make_app(trusted_proxy_hops=1).test_client()
    echoed = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
    assert echoed != hostile and FRESH_ID.fullmatch(echoed)


def test_without_a_proxy_a_client_cannot_choose_its_id(client):
    # GEOAPP_PROXY_HOPS=0: the header can only come from the client itself
    echoed = client.get("/healthz", headers={"X-Request-ID": "chosen-by-me"}).headers["X-Request-ID"]
    assert echoed != "chosen-by-me" and FRESH_ID.fullmatch(echoed)


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3 and all(FRESH_ID.fullmatch(i) for i in ids)


def test_json_access_line_one_line_no_secrets(make_app, capsys):
    client = make_app(log_format="json", trusted_proxy_hops=1).test_client()
    client.set_cookie("session", "COOKIE-VALUE-123")
    capsys.readouterr()
    # a path with a newline, quotes and a backslash; secrets in the query string and the headers
    response = client.get('/no%0Asuch%22quoted%22%5C%0D%E2%80%A8?password=hunter2&api_key=KEY-456&q=x',
                          headers={"Authorization": "Bearer TOKEN-789", "X-Request-ID": "abc-1",
                                   "X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 404
    captured = capsys.readouterr().err
    entries = json_lines(captured)  # each line is one whole object: the newline did not split it
    [line] = access_lines(entries, "abc-1")
    assert line["path"] == '/no\nsuch"quoted"\\\r\u2028'
    assert line["method"] == "GET" and line["status"] == 404 and line["level"] == "INFO"
    assert line["query_keys"] == ["api_key", "password", "q"]
    assert line["remote_addr"] == "203.0.113.9"  # as ProxyFix gives it, one trusted hop
    assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert line["user_id"] is None
    assert line["time"].endswith("Z") and datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
    for secret in ("hunter2", "KEY-456", "TOKEN-789", "COOKIE-VALUE-123"):
        assert secret not in captured


def test_sign_in_is_logged_without_the_password(make_app, db, users, capsys):
    from sqlalchemy import select

    from geoapp.models import User
    from tests.conftest import AuthActions

    app = make_app(log_format="json")
    client = app.test_client()
    signin = AuthActions(app, client)
    signin.reset_limits()
    assert signin.login("dispatcher").status_code == 302
    cookie = client.get_cookie("session").value
    console = client.get("/console")
    api = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {users['rep02']}"})
    captured = capsys.readouterr().err
    entries = json_lines(captured)
    for secret in (DEMO_PASSWORD, cookie, users["rep02"]):
        assert secret not in captured
    with db.transaction() as session:
        ids = dict(session.execute(select(User.username, User.id).where(User.username.in_(["dispatcher", "rep02"]))).all())
    [login] = [e for e in entries if e["logger"] == "geoapp.access" and e["method"] == "POST"]
    assert login["path"] == "/login" and login["status"] == 302
    [line] = access_lines(entries, console.headers["X-Request-ID"])
    assert line["path"] == "/console" and line["status"] == 200 and line["user_id"] == ids["dispatcher"]
    [line] = access_lines(entries, api.headers["X-Request-ID"])
    assert line["status"] == 200 and line["user_id"] == ids["rep02"]


@pytest.fixture
def app_with_a_logging_view(make_app):
    def make(**changes):
        app = make_app(**changes)

        @app.get("/_test/log")
        def log_something():
            logging.getLogger("geoapp.test_view").warning('made in the view: %s', 'line one\nline "two"')
            return "ok"

        @app.get("/_test/boom")
        def boom():
            raise RuntimeError('broken\n{"level": "forged"}')
        return app
    return make


def test_records_made_in_a_view_carry_the_request_id(app_with_a_logging_view, capsys, caplog):
    client = app_with_a_logging_view(log_format="json", trusted_proxy_hops=1).test_client()
    capsys.readouterr()
    with caplog.at_level(logging.INFO):
        response = client.get("/_test/log", headers={"X-Request-ID": "view-req-1"})
    assert response.headers["X-Request-ID"] == "view-req-1"
    # on the record itself, so every handler has it (here pytest's)
    [record] = [r for r in caplog.records if r.name == "geoapp.test_view"]
    assert record.request_id == "view-req-1"
    entries = json_lines(capsys.readouterr().err)
    [line] = [e for e in entries if e["logger"] == "geoapp.test_view"]
    assert line["request_id"] == "view-req-1" and line["level"] == "WARNING"
    assert line["message"] == 'made in the view: line one\nline "two"'
    assert len(access_lines(entries, "view-req-1")) == 1


def test_a_traceback_is_one_json_line(app_with_a_logging_view, capsys):
    app = app_with_a_logging_view(log_format="json")
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handler answers 500
    client = app.test_client()
    capsys.readouterr()
    response = client.get("/_test/boom")
    assert response.status_code == 500
    request_id = response.headers["X-Request-ID"]
    entries = json_lines(capsys.readouterr().err)
    # Flask's own "Exception on ..." and geoapp.web.errors' line: each one JSON line, traceback inside
    errors = [e for e in entries if e["level"] == "ERROR" and e["request_id"] == request_id]
    assert errors and all("RuntimeError" in e["exc"] and '{"level": "forged"}' in e["exc"] for e in errors)
    assert not any(e.get("level") == "forged" for e in entries)
    assert access_lines(entries, request_id)[0]["status"] == 500


def test_text_format_keeps_one_line_per_record(app_with_a_logging_view, capsys):
    client = app_with_a_logging_view(log_format="text").test_client()
    capsys.readouterr()
    request_id = client.get("/_test/log").headers["X-Request-ID"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "made in the view" in line]
    assert len(lines) == 1 and f"[{request_id}]" in lines[0] and "line one\\nline" in lines[0]


def test_an_unknown_log_format_stops_the_app(settings):
    import dataclasses

    with pytest.raises(ValueError, match="GEOAPP_LOG_FORMAT"):
        dataclasses.replace(settings, log_format="xml")


def test_log_format_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("GEOAPP_LOG_FORMAT", " JSON ")
    assert Settings(secret_key="x").log_format == "json"
    monkeypatch.delenv("GEOAPP_LOG_FORMAT")
    assert Settings(secret_key="x").log_format == "text"
