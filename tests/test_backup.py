"""The backup drill: the real demo → `geoapp backup` → wipe the database and the photo store →
`geoapp restore` → every report, event, photo row, photo file and album PDF is as it was. Also the
refusals (a damaged archive, a non-empty database, something that is no archive) and a file the
database names but the store lacks (reported, never silently left out)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile

import pytest
from sqlalchemy import text

from geoapp.backup import _DROP_OWN_OBJECTS, MANIFEST
from geoapp.cli import alembic_config
from geoapp.config import Settings
from geoapp.db_roles import app_role_for
from geoapp.gis.loader import load_city_data
from tests.conftest import GIS_DATA

DEMO_REPORTS = 20  # enough for the demo to flag problems and issue 第1期 (its PDF is in the archive)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(conn, table: str) -> list:
    # the whole row as the server renders it (geometry, jsonb and timestamps included), in a stable order
    return conn.execute(text(f"SELECT to_jsonb(t)::text AS r FROM {table} t ORDER BY r")).scalars().all()


def _state(owner_db, photo_dir) -> dict:
    with owner_db.engine.connect() as conn:
        state = {t: _rows(conn, t) for t in ("reports", "report_events", "photos", "albums", "album_entries",
                                             "users", "walks")}
        paths = conn.execute(text("SELECT original_path FROM photos WHERE original_path IS NOT NULL "
                                  "UNION SELECT published_path FROM photos")).scalars().all()
        albums = conn.execute(text("SELECT pdf_path, pdf_sha256 FROM albums ORDER BY id")).all()
    state["photo_files"] = {p: _sha(photo_dir / p) for p in sorted(paths)}
    state["album_pdfs"] = [(p, digest, _sha(photo_dir / p)) for p, digest in albums]
    return state


def _wipe(owner_db, photo_dir) -> None:
    """What a lost disk leaves: no tables, no photos (PostGIS, the provisioning's, stays)."""
    with owner_db.engine.begin() as conn:
        conn.execute(text(_DROP_OWN_OBJECTS))
    shutil.rmtree(photo_dir)


@pytest.fixture
def rebuilt_after(db, owner_db, database_url, owner_database_url):
    """Whatever the drill leaves, the next test file finds the schema and the city data again."""
    yield
    with owner_db.engine.connect() as conn:
        intact = conn.execute(text("SELECT to_regclass('public.reports') IS NOT NULL")).scalar_one()
    if not intact:
        from alembic import command

        command.upgrade(alembic_config(owner_database_url, app_role_for(owner_database_url, database_url)), "head")
        with db.transaction() as session:
            load_city_data(session, GIS_DATA, Settings(database_url=database_url).city_bbox)


def _cli(app, *args):
    with app.app_context():  # `geoapp` (FlaskGroup) pushes it; the test runner does not
        return app.test_cli_runner().invoke(args=list(args))  # .output: stdout and stderr


def _damage(archive, member_name, copy):
    """A copy of `archive` with one byte of `member_name`'s content flipped."""
    shutil.copy(archive, copy)
    with tarfile.open(copy) as tar:
        offset = tar.getmember(member_name).offset_data
    with open(copy, "r+b") as fh:
        fh.seek(offset + 10)
        byte = fh.read(1)
        fh.seek(offset + 10)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_demo_backup_wipe_restore_gives_back_every_report_event_photo_and_album(
        make_app, owner_db, settings, tmp_path, rebuilt_after):
    app = make_app(demo=True)
    photo_dir = settings.photo_dir
    loaded = _cli(app, "demo", "load", "--reports", str(DEMO_REPORTS))
    assert loaded.exit_code == 0, loaded.output
    before = _state(owner_db, photo_dir)
    assert len(before["reports"]) == DEMO_REPORTS and before["album_pdfs"], loaded.output
    assert all(digest == actual for _, digest, actual in before["album_pdfs"])

    made = _cli(app, "backup", "--output", str(tmp_path / "backups"))
    assert made.exit_code == 0, made.output
    [archive] = (tmp_path / "backups").glob("geoapp-backup-*.tar")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o640  # it holds every original photo with its GPS
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile(MANIFEST))
        for entry in manifest["files"]:  # the manifest's hashes are the members' own
            assert hashlib.sha256(tar.extractfile(entry["path"]).read()).hexdigest() == entry["sha256"]
    assert names[-1] == MANIFEST and set(names) == {MANIFEST} | {f["path"] for f in manifest["files"]}
    assert {"files/" + p for p in before["photo_files"]} | {"files/" + p for p, *_ in before["album_pdfs"]} \
        == set(names) - {MANIFEST, "database.dump"}
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(alembic_config(settings.owner_database_url)).get_current_head()
    assert manifest["alembic_revision"] == head and manifest["complete"] and manifest["missing"] == []
    assert manifest["counts"]["reports"] == DEMO_REPORTS
    assert manifest["counts"]["report_events"] == len(before["report_events"])

    refused = _cli(app, "restore", str(archive))  # reports exist: not without --force
    assert refused.exit_code != 0 and "数据库不是空的" in refused.output and "--force" in refused.output
    assert _state(owner_db, photo_dir) == before

    _wipe(owner_db, photo_dir)

    # a damaged archive is refused, naming the member, before anything is touched
    victim = "files/" + next(iter(before["photo_files"]))
    _damage(archive, victim, tmp_path / "damaged.tar")
    damaged = _cli(app, "restore", str(tmp_path / "damaged.tar"))
    assert damaged.exit_code != 0 and victim in damaged.output and "已损坏" in damaged.output
    assert not photo_dir.exists()
    with owner_db.engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('public.reports')")).scalar_one() is None
    (tmp_path / "not-a-backup.tar").write_bytes(b"hello")
    assert "不是 geoapp 备份" in _cli(app, "restore", str(tmp_path / "not-a-backup.tar")).output
    assert "找不到备份文件" in _cli(app, "restore", str(tmp_path / "nowhere.tar")).output

    restored = _cli(app, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    after = _state(owner_db, photo_dir)
    assert after == before
    for path in photo_dir.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o750 if path.is_dir() else 0o640), path

    # the app's role has its rows back, and only them (geoapp/db_roles.py)
    app_role = app_role_for(settings.owner_database_url, settings.database_url)
    if app_role:
        with owner_db.engine.connect() as conn:
            can = lambda table, what: conn.execute(  # noqa: E731
                text("SELECT has_table_privilege(:r, :t, :w)"), {"r": app_role, "t": table, "w": what}).scalar_one()
            assert can("reports", "UPDATE") and can("report_events", "INSERT")
            assert not can("report_events", "UPDATE") and not can("report_events", "DELETE")
    client = app.test_client()
    assert client.get("/readyz").status_code == 200


def test_a_file_the_database_names_but_the_store_lacks_is_reported_not_skipped(
        make_app, owner_db, settings, tmp_path):
    app = make_app(demo=True)
    assert _cli(app, "demo", "load", "--reports", "3").exit_code == 0
    with owner_db.engine.connect() as conn:
        lost = conn.execute(text("SELECT published_path FROM photos ORDER BY id LIMIT 1")).scalar_one()
    (settings.photo_dir / lost).unlink()
    made = _cli(app, "backup", "--output", str(tmp_path / "b.tar"))
    assert made.exit_code == 1 and lost in made.output, made.output
    with tarfile.open(tmp_path / "b.tar") as tar:
        manifest = json.load(tar.extractfile(MANIFEST))
        assert manifest["missing"] == [lost] and manifest["complete"] is False
        assert "files/" + lost not in tar.getnames()
    assert stat.S_IMODE(os.stat(tmp_path / "b.tar").st_mode) == 0o640
