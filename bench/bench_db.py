"""What every database benchmark starts from: its own database emptied of reports and users, the
city data loaded, the demo users, and an API key for rep01 (the benchmark's representative)."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from geoapp.demo import _ensure_users
from geoapp.domain.accounts import issue_api_key
from geoapp.gis.loader import load_city_data


@contextmanager
def fresh_city(app):
    """Yields (session, users by name, rep01's API key) inside one transaction, committed on exit,
    so a benchmark can read what else it needs (points on a street…) in the same session."""
    settings, db = app.config["GEOAPP"], app.extensions["geoapp_db"]
    from geoapp.db import Database

    owner = Database(settings.owner_database_url)  # emptying tables is the schema owner's (db_roles.py)
    try:
        with owner.engine.begin() as conn:
            conn.execute(text("TRUNCATE report_events, reports, users RESTART IDENTITY CASCADE"))
    finally:
        owner.dispose()
    with db.transaction() as session:
        load_city_data(session, PROJECT_ROOT / "gis_data", settings.city_bbox)
        users = _ensure_users(session)
        yield session, users, issue_api_key(session, "rep01")
