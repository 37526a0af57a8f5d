"""Fixtures: a real PostGIS test database (TEST_DATABASE_URL, provisioned by scripts/test),
migrated and loaded with gis_data/ once per run; a fresh app per test with empty reports/users."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import uuid

import pytest
from PIL import Image
from pyproj import Transformer
from shapely import wkt
from sqlalchemy import text

from geoapp import create_app
from geoapp.cli import alembic_config
from geoapp.config import PROJECT_ROOT, Settings
from geoapp.db import Database
from geoapp.demo import _ensure_users
from geoapp.domain.accounts import issue_api_key
from geoapp.gis.loader import load_city_data
from geoapp.models import METRIC_SRID

GIS_DATA = PROJECT_ROOT / "gis_data"
_from_metric = Transformer.from_crs(METRIC_SRID, 4326, always_xy=True).transform


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run the suite with scripts/test, which provisions PostGIS", 2)
    from sqlalchemy.engine import make_url

    if "test" not in (make_url(url).database or ""):
        # the suite drops and rebuilds the schema: never let it near a database that is not a test one
        pytest.exit(f"refusing to run against database {make_url(url).database!r}: its name must contain 'test'", 2)
    return url


@pytest.fixture(scope="session")
def owner_database_url(database_url) -> str:
    """The role that owns the test schema (scripts/test: geoapp_owner); the app runs as database_url's."""
    return os.environ.get("TEST_OWNER_DATABASE_URL") or database_url


@pytest.fixture(scope="session")
def owner_db(owner_database_url):
    """The schema owner's connection: for what the app's role may not do (TRUNCATE, DDL, history)."""
    db = Database(owner_database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def migrated(database_url, owner_db, owner_database_url):
    """The schema rebuilt from the migrations by its owner (granting the app's role its rows'
    privileges, as `geoapp db upgrade` does), then gis_data/ loaded through the real loader as the app."""
    from alembic import command

    from geoapp.db_roles import app_role_for

    with owner_db.engine.begin() as conn:
        if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one():
            # one superuser for everything (a DATABASE_URL of the operator's): rebuild the schema whole
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            # the owner drops what it owns; PostGIS (the superuser's, made at provisioning) stays
            conn.execute(text("DROP OWNED BY CURRENT_USER"))
    command.upgrade(alembic_config(owner_database_url, app_role_for(owner_database_url, database_url)), "head")
    db = Database(database_url)
    with db.transaction() as session:
        load_city_data(session, GIS_DATA, Settings(database_url=database_url).city_bbox)
    yield db
    db.dispose()


@pytest.fixture
def settings(database_url, owner_database_url, tmp_path) -> Settings:
    return Settings(database_url=database_url, owner_database_url=owner_database_url,
                    photo_dir=tmp_path / "photos", run_dir=tmp_path / "run", secret_key="test-secret")


@pytest.fixture
def db(migrated, owner_db) -> Database:
    with owner_db.engine.begin() as conn:
        # rate_limits: the sign-in counts are shared by every app now (geoapp/ratelimit_store.py)
        conn.execute(text("TRUNCATE report_events, reports, users, rate_limits, audit_log, audit_anchor "
                          "RESTART IDENTITY CASCADE"))
        # the administrator's columns of the city data loaded once per run (an inactive unit, a contact)
        conn.execute(text("UPDATE units SET active = true, contact_name = NULL, phone = NULL, email = NULL "
                          "WHERE NOT active OR contact_name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL"))
    return migrated


@pytest.fixture
def app(db, settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["geoapp_db"].dispose()


@pytest.fixture
def make_app(db, settings):
    """Apps with some settings changed (lower limits, https, GEOAPP_DEMO…): make_app(demo=False)."""
    made = []

    def make(**changes):
        app = create_app(dataclasses.replace(settings, **changes))
        app.config["TESTING"] = True
        made.append(app)
        return app
    yield make
    for app in made:
        app.extensions["geoapp_db"].dispose()


@pytest.fixture
def hash_checks(monkeypatch):
    """Every password hash check made from now on (they are what makes a sign-in slow)."""
    from geoapp.domain import accounts

    calls = []
    real = accounts.check_password_hash

    def spy(stored, password):
        calls.append(stored)
        return real(stored, password)
    monkeypatch.setattr(accounts, "check_password_hash", spy)
    return calls


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(db):
    """rep01…rep29, dispatcher, admin (as the demo creates them) and one API key each."""
    with db.transaction() as session:
        accounts = _ensure_users(session)
        keys = {name: issue_api_key(session, name) for name in accounts}
    return keys


@pytest.fixture
def auth(users):
    def headers(username: str = "rep01") -> dict:
        return {"Authorization": f"Bearer {users[username]}"}
    return headers


class StreetGeometry:
    """Points placed precisely relative to a street, computed in the metric CRS."""

    def __init__(self, db: Database):
        self.db = db

    def line(self, code: str):
        with self.db.sessionmaker() as s:
            return wkt.loads(s.execute(text("SELECT ST_AsText(ST_GeometryN(geom_m, 1)) FROM streets WHERE code = :c"),
                                       {"c": code}).scalar_one())

    def point(self, code: str, fraction: float = 0.5, offset_m: float = 0.0) -> tuple[float, float]:
        """(lon, lat) at `fraction` along the street, `offset_m` metres to its left (perpendicular)."""
        line = self.line(code)
        d = fraction * line.length
        a, b = line.interpolate(max(d - 1, 0)), line.interpolate(min(d + 1, line.length))
        base = line.interpolate(d)
        tx, ty = b.x - a.x, b.y - a.y
        norm = (tx * tx + ty * ty) ** 0.5
        x, y = base.x - ty / norm * offset_m, base.y + tx / norm * offset_m
        return _from_metric(x, y)

    def street_id(self, code: str) -> int:
        with self.db.sessionmaker() as s:
            return s.execute(text("SELECT id FROM streets WHERE code = :c"), {"c": code}).scalar_one()


@pytest.fixture
def streets(db) -> StreetGeometry:
    return StreetGeometry(db)


def report_body(lon: float, lat: float, **extra) -> dict:
    body = {"client_id": str(uuid.uuid4()), "lat": lat, "lon": lon, "crs": "wgs84",
            "category": "0401", "description": "路边垃圾堆积"}
    body.update(extra)
    return body


class AuthActions:
    """Signing in and out through the real pages, CSRF token and all (as in Flask's flaskr tutorial).
    Sign-in failures are counted by the real throttle; `reset_limits` forgets the counts."""

    def __init__(self, app, client):
        self.app, self.client = app, client

    def csrf_token(self, path: str = "/login", client=None) -> str:
        import re

        html = (client or self.client).get(path).get_data(as_text=True)
        tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html).group(0)
        return re.search(r'value="([^"]+)"', tag).group(1)

    def login(self, username: str = "dispatcher", password: str | None = None, *, next_: str | None = None,
              remember: bool = False, client=None, lang: str | None = None):
        from geoapp.demo import DEMO_PASSWORD

        client = client or self.client
        query = "&".join(f"{k}={v}" for k, v in (("next", next_), ("lang", lang)) if v)
        data = {"csrf_token": self.csrf_token(client=client), "username": username,
                "password": DEMO_PASSWORD if password is None else password}
        if remember:
            data["remember"] = "y"
        return client.post("/login" + (f"?{query}" if query else ""), data=data)

    def logout(self, client=None):
        client = client or self.client
        return client.post("/logout", data={"csrf_token": self.csrf_token("/login", client=client)})

    def reset_limits(self) -> None:
        self.app.extensions["geoapp_sign_in_throttle"].reset()


@pytest.fixture
def signin(app, client) -> AuthActions:
    """Sign-in helpers for `client`, with the sign-in counts reset (add the `users` fixture for accounts)."""
    actions = AuthActions(app, client)
    actions.reset_limits()
    return actions


def jpeg(colour=(90, 120, 150), size=(640, 480)) -> bytes:
    """A plain camera-sized JPEG of one colour (a photo for a report or a unit's feedback)."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def data_block(html: str, block_id: str) -> dict:
    """A page's JSON data block (<script type="application/json" id=…>), parsed."""
    found = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


@pytest.fixture
def as_user(app, users, signin):
    """as_user(name) -> a test client signed in as that user through /login."""
    def make(name):
        client = app.test_client()
        signin.reset_limits()
        assert signin.login(name, client=client).status_code == 302
        return client
    return make
