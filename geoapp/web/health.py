"""/healthz: the process answers. /readyz: it can do its work — the database is reachable, its
schema is at the newest migration, and the photo store takes a write. For whatever runs the app
(a load balancer, systemd, a monitoring probe); no sign-in, nothing secret in the answer."""
from __future__ import annotations

import functools
import tempfile

from flask import Blueprint, jsonify
from sqlalchemy import text

from ..domain import photos
from . import database, settings

bp = Blueprint("health", __name__)


@functools.cache
def migration_head() -> str:
    from alembic.script import ScriptDirectory

    from ..db import alembic_config

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def _database() -> tuple[bool, str]:
    try:
        with database().engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready", said in the answer
        return False, f"unreachable: {type(exc).__name__}"
    head = migration_head()
    if current != head:
        return False, f"schema at {current}, code expects {head}: run `geoapp db upgrade`"
    return True, f"reachable, schema at {head}"


def _photo_store() -> tuple[bool, str]:
    directory = settings().photo_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".readyz-"):
            pass
    except OSError as exc:
        return False, f"not writable: {exc.strerror or type(exc).__name__}"
    return True, "writable"


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks = {"database": _database(), "photo_store": _photo_store(),
              "watermark_font": photos.watermark_font_check()}
    ready = all(ok for ok, _ in checks.values())
    body = {"status": "ready" if ready else "not_ready",
            "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()}}
    return jsonify(body), 200 if ready else 503, {} if ready else {"Retry-After": "10"}
