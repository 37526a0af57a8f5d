"""Flask blueprints, thin: parse the request, call geoapp.domain, render or jsonify."""
from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from ..config import Settings
from ..db import Database, close_quietly


def settings() -> Settings:
    return current_app.config["GEOAPP"]


def database() -> Database:
    return current_app.extensions["geoapp_db"]


def read_session() -> Session:
    """A session for reading, closed when the request ends. Writes use database().transaction()."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return g.db_session


def close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        close_quietly(session)
