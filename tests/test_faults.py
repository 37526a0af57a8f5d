"""Faults get clear answers: a database that cannot be reached is a 503 with Retry-After (JSON for
the API, a page for people), cleanup never turns an answer into a 500, and /healthz and /readyz
tell whatever runs the app what state it is in."""
import dataclasses
import socket

import pytest

from geoapp import create_app
from tests.conftest import report_body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_without_database(settings):
    # nothing listens on this port: every connection attempt is refused, as when PostgreSQL is down
    dead = dataclasses.replace(settings, database_url=f"postgresql://geoapp@127.0.0.1:{free_port()}/geoapp_test")
    app = create_app(dead)
    yield app
    app.extensions["geoapp_db"].dispose()


def test_the_api_answers_503_with_retry_after_when_the_database_is_down(app_without_database):
    client = app_without_database.test_client()
    body = report_body(121.12, 41.116)
    for lang, words in (("zh", "数据库"), ("en", "database")):
        r = client.post(f"/api/v1/reports?lang={lang}", json=body, headers={"Authorization": "Bearer ga_x"})
        assert r.status_code == 503 and r.mimetype == "application/json"
        assert r.json["error"] == "database_unavailable" and words in r.json["message"]
        assert int(r.headers["Retry-After"]) > 0
    assert client.get("/api/v1/streets").status_code == 503


def test_pages_answer_503_with_a_page_when_the_database_is_down(app_without_database):
    client = app_without_database.test_client()
    import time

    from geoapp.web.auth import SEEN_AT, SIGNED_IN_AT

    with client.session_transaction() as s:  # a signed-in user (id 1, session version 1): the page must load them
        s["_user_id"] = "1:1"
        s[SIGNED_IN_AT] = s[SEEN_AT] = int(time.time())
    r = client.get("/map")
    assert r.status_code == 503 and r.mimetype == "text/html"
    assert "数据库暂时无法连接" in r.get_data(as_text=True) and r.headers["Retry-After"]


def test_healthz_is_up_and_readyz_says_why_it_is_not_ready(app_without_database):
    client = app_without_database.test_client()
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["status"] == "not_ready"
    assert r.json["checks"]["database"]["ok"] is False and "unreachable" in r.json["checks"]["database"]["detail"]


def test_readyz_is_ready_on_a_migrated_database(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.json
    assert r.json["checks"]["database"]["ok"] and r.json["checks"]["photo_store"]["ok"]


def test_readyz_notices_an_unwritable_photo_store(app, settings, tmp_path):
    (tmp_path / "blocked").write_text("a file where the photo directory should be")
    app.config["GEOAPP"] = dataclasses.replace(settings, photo_dir=tmp_path / "blocked" / "photos")
    r = app.test_client().get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["photo_store"]["ok"] is False


def test_readyz_notices_a_schema_behind_the_code(client, db, owner_db):
    from sqlalchemy import text

    with owner_db.transaction() as s:  # only migrations write it
        head = s.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        s.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        r = client.get("/readyz")
        assert r.status_code == 503 and "geoapp db upgrade" in r.json["checks"]["database"]["detail"]
    finally:
        with owner_db.transaction() as s:  # only migrations write it
            s.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})


def test_a_session_that_cannot_close_does_not_turn_an_answer_into_an_error(client, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def dead_close(self):
        raise OperationalError("ROLLBACK", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(Session, "close", dead_close)
    r = client.get("/api/v1/streets")
    assert r.status_code == 200 and len(r.json["features"]) == 29


def test_a_lost_commit_acknowledgement_is_a_503_and_the_retry_finds_the_report(client, auth, streets):
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def lost_ack(_session):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    body = report_body(*streets.point("S03", 0.5))
    event.listen(Session, "after_commit", lost_ack)
    try:
        r = client.post("/api/v1/reports", json=body, headers=auth())
    finally:
        event.remove(Session, "after_commit", lost_ack)
    assert r.status_code == 503 and r.json["error"] == "database_unavailable"
    again = client.post("/api/v1/reports", json=body, headers=auth())
    assert again.status_code == 200 and again.json["client_id"] == body["client_id"]
