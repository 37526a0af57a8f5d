"""`geoapp backup` and `geoapp restore`: one archive that rebuilds an install.

The archive is a plain tar (photos and PDFs are compressed already; pg_dump's custom format is too):
  database.dump   pg_dump -Fc of the schema public, no owner or ACL statements, so it restores under
                  the roles of whatever install reads it (PostGIS itself is the superuser's, made at
                  provisioning, and is not in it)
  files/<rel>     every photo file (original and published) and album PDF the database names, at its
                  path relative to PHOTO_DIR (they are named by their SHA-256: domain/report_photos.py,
                  domain/album.py)
  manifest.json   last: the schema revision, the time, row counts, and the SHA-256 and size of every
                  other member; files named by the database but absent from the store are listed there
                  (`missing`), never silently left out.

Consistency: one REPEATABLE READ transaction exports its snapshot; the list of files, the counts and
the revision are read in it and pg_dump is run on it (--snapshot), so the dump and the files agree even
while reports keep coming in. Stored files never change (content-addressed), and the orphan sweep only
takes files no row names, so every file the snapshot names is still there unless something is wrong —
and then it is reported.

Restore refuses before touching anything: every member is checked against the manifest first. The
database part runs in ONE transaction (psql --single-transaction: the old objects are dropped and the
dump replayed), so a failed restore leaves the database as it was.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

FORMAT = "geoapp-backup/1"
MANIFEST, DUMP, FILES = "manifest.json", "database.dump", "files/"
ARCHIVE_MODE, FILE_MODE = 0o640, 0o640
# Counted into the manifest (and compared after a restore): the tables a person would check first.
MAIN_TABLES = ("users", "units", "streets", "categories", "reports", "report_events", "photos", "walks",
               "notifications", "albums", "album_entries")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A refusal, said on one line: Chinese first, then English (the CLI prints it as it is)."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} {en}")


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c = self.manifest["counts"]
        return (f"backup written: {self.path} ({self.path.stat().st_size / 1e6:.1f} MB; schema "
                f"{self.manifest['alembic_revision']}; {c.get('reports', 0)} reports, {c.get('photos', 0)} photos, "
                f"{c.get('albums', 0)} albums; {len(self.manifest['files']) - 1} files; "
                f"{len(self.missing)} missing, {len(self.damaged)} damaged)")


@dataclass
class RestoreResult:
    manifest: dict
    files_written: int
    revision_note: str | None       # None: the schema is at the code's head
    granted_to: str | None


def owner_url(settings) -> str:
    # the owner runs migrations and restores; older settings had one URL for everything
    return getattr(settings, "owner_database_url", "") or settings.database_url


# ---------------------------------------------------------------- PostgreSQL client programs

def _libpq(url: str) -> tuple[str, dict]:
    """A libpq URI without the password, and an environment carrying it (never on a command line,
    where every local user could read it in ps)."""
    u = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _engine(url: str) -> Engine:
    # one connection at a time, closed after use; psycopg2, as the app (geoapp/db.py)
    return create_engine(make_url(url).set(drivername="postgresql+psycopg2"), poolclass=NullPool)


def _program(name: str, conn: Connection) -> str:
    """The client program of the server's major version (Debian installs each under its own dir)."""
    major = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    exact = Path(f"/usr/lib/postgresql/{major}/bin/{name}")
    found = str(exact) if exact.is_file() else shutil.which(name)
    if not found:
        raise BackupError(f"找不到 PostgreSQL 程序 {name}（请安装 postgresql-client-{major}）。",
                          f"{name} not found: install postgresql-client-{major}.")
    return found


def _safe_rel(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and all(part not in ("", ".", "..") for part in p.parts) \
        and "\\" not in rel


# ---------------------------------------------------------------- backup

def _referenced_files(conn: Connection) -> list[str]:
    rows = conn.execute(text(
        "SELECT original_path FROM photos WHERE original_path IS NOT NULL "
        "UNION SELECT published_path FROM photos "
        "UNION SELECT pdf_path FROM albums")).scalars().all()
    return sorted(set(rows))


def _counts(conn: Connection) -> dict[str, int]:
    counts = {}
    for table in MAIN_TABLES:
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar_one() is not None:
            counts[table] = conn.execute(text(f'SELECT count(*) FROM public."{table}"')).scalar_one()
    return counts


def _revision(conn: Connection) -> str | None:
    if conn.execute(text("SELECT to_regclass('public.alembic_version')")).scalar_one() is None:
        return None
    return conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar()


class _Hashing(io.RawIOBase):
    """A reader that hashes and counts what passes through (tarfile reads exactly the member's size)."""

    def __init__(self, fh):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path) -> dict:
    st = path.stat()
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = st.st_size, int(st.st_mtime), FILE_MODE
    with open(path, "rb") as fh:
        reader = _Hashing(fh)
        tar.addfile(info, reader)  # streamed in blocks: nothing is held whole in memory
    if reader.size != st.st_size:
        raise BackupError(f"文件在备份过程中被改动：{path}。", f"{path} changed while being archived.")
    return {"path": name, "sha256": reader.sha.hexdigest(), "size": reader.size}


def default_name(now: dt.datetime) -> str:
    return f"geoapp-backup-{now.strftime('%Y%m%dT%H%M%SZ')}.tar"


def create_backup(settings, output: Path | None = None, *, keep: int | None = None) -> BackupResult:
    """Write the archive (into the folder `output`, or at the file path `output`; default
    VAR_DIR/backups) and, with `keep`, remove all but the newest `keep` archives of that folder."""
    from .config import VAR_DIR

    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    output = Path(output) if output else VAR_DIR / "backups"
    if output.is_dir() or not output.suffix:
        output.mkdir(mode=0o750, parents=True, exist_ok=True)
        output = output / default_name(now)
    elif not output.parent.is_dir():
        raise BackupError(f"备份目录不存在：{output.parent}。", f"no such folder: {output.parent}.")
    photo_dir = Path(settings.photo_dir)
    url = owner_url(settings)
    part = output.with_name(f".{output.name}.{uuid.uuid4().hex}.part")
    dump = output.with_name(f".{output.name}.{uuid.uuid4().hex}.dump")
    engine = _engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                                postgresql_readonly=True) as conn, conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            revision, counts, referenced = _revision(conn), _counts(conn), _referenced_files(conn)
            pg_dump = _program("pg_dump", conn)
            uri, env = _libpq(url)
            # the snapshot lives as long as this transaction: pg_dump must finish inside it
            fd = os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            done = subprocess.run([pg_dump, "-Fc", "--schema=public", "--no-owner", "--no-acl",
                                   # PostGIS's own table (its rows come with the extension)
                                   "--exclude-table-data=public.spatial_ref_sys",
                                   f"--snapshot={snapshot}", "--file", str(dump), "--dbname", uri],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError("pg_dump 失败，未写出备份：" + done.stderr.strip().splitlines()[-1],
                                  "(pg_dump failed; no archive written)")
        files, missing, damaged = [], [], []
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ARCHIVE_MODE)
        os.fchmod(fd, ARCHIVE_MODE)  # whatever the umask: the backup holds every original photo
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                files.append(_add(tar, DUMP, dump))
                for rel in referenced:
                    path = photo_dir / rel
                    if not _safe_rel(rel) or not path.is_file():
                        missing.append(rel)
                        continue
                    entry = _add(tar, FILES + rel, path)
                    stem = PurePosixPath(rel).name.split(".", 1)[0]
                    if len(stem) == 64 and stem != entry["sha256"]:
                        damaged.append(rel)  # archived as it is, and said: its name is its hash
                    files.append(entry)
                manifest = {
                    "format": FORMAT, "created_at": now.isoformat(), "alembic_revision": revision,
                    "counts": counts, "photo_dir": str(photo_dir), "files": files,
                    "missing": missing, "damaged": damaged, "complete": not missing and not damaged,
                }
                data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mtime, info.mode = len(data), int(now.timestamp()), FILE_MODE
                tar.addfile(info, io.BytesIO(data))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, output)
    finally:
        engine.dispose()
        dump.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    if keep:
        for old in sorted(output.parent.glob("geoapp-backup-*.tar"))[:-keep]:
            old.unlink()
    return BackupResult(output, manifest, missing, damaged)


# ---------------------------------------------------------------- restore

def _open(archive: Path) -> tuple[tarfile.TarFile, dict]:
    if not archive.is_file():
        raise BackupError(f"找不到备份文件：{archive}。", f"no such archive: {archive}.")
    try:
        tar = tarfile.open(archive, "r:")
        member = tar.getmember(MANIFEST)
        manifest = json.load(tar.extractfile(member))
    except (tarfile.TarError, KeyError, ValueError, OSError):
        raise BackupError(f"{archive} 不是 geoapp 备份（没有可读的 {MANIFEST}）。",
                          f"{archive} is not a geoapp backup (no readable {MANIFEST}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} 不是本版本 geoapp 的备份（格式 {manifest.get('format')!r}）。",
                          f"{archive} is not a {FORMAT} archive.")
    return tar, manifest


def verify_archive(archive: Path) -> dict:
    """The manifest, once every member has been read and matches its SHA-256 and size; a damaged,
    missing or unexpected member is refused, named."""
    tar, manifest = _open(Path(archive))
    with tar:
        expected = {f["path"]: f for f in manifest["files"]}
        if DUMP not in expected or not all(p == DUMP or (p.startswith(FILES) and _safe_rel(p[len(FILES):]))
                                           for p in expected):
            raise BackupError(f"{archive} 的清单无效。", f"{archive}: the manifest is not valid.")
        seen = set()
        for member in tar:
            if member.name == MANIFEST:
                continue
            want = expected.get(member.name)
            if want is None or not member.isreg() or member.name in seen:
                raise BackupError(f"备份中有清单之外的内容：{member.name}，未做任何恢复。",
                                  f"{member.name} is not in the manifest: nothing restored.")
            sha, size, fh = hashlib.sha256(), 0, tar.extractfile(member)
            while chunk := fh.read(_CHUNK):
                sha.update(chunk)
                size += len(chunk)
            if sha.hexdigest() != want["sha256"] or size != want["size"]:
                raise BackupError(f"备份已损坏：{member.name} 的 SHA-256 与清单不符，未做任何恢复。",
                                  f"damaged archive: {member.name} does not match its SHA-256; nothing restored.")
            seen.add(member.name)
        lacking = sorted(set(expected) - seen)
        if lacking:
            raise BackupError(f"备份不完整：缺少 {lacking[0]}，未做任何恢复。",
                              f"incomplete archive: {lacking[0]} is missing; nothing restored.")
    return manifest


# Everything of the owner's in the schema public, PostGIS's objects excepted (they belong to the
# extension, which the superuser made). Names are rendered before anything is dropped.
_DROP_OWN_OBJECTS = r"""
DO $$
DECLARE stmts text[];
        s text;
BEGIN
  SELECT array_agg(stmt) INTO stmts FROM (
    SELECT format('DROP %s IF EXISTS %s CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                                 WHEN 'c' THEN 'TYPE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                  c.oid::regclass) AS stmt, 1 AS pass
      FROM pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f')
       AND c.relowner = current_user::regrole
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                  AND d.deptype = 'e')
    UNION ALL
    SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure), 2
      FROM pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = current_user::regrole
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                                  AND d.deptype = 'e')
    UNION ALL
    SELECT format('DROP TYPE IF EXISTS %s CASCADE', t.oid::regtype), 3
      FROM pg_type t
     WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r')
       AND t.typowner = current_user::regrole
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                                  AND d.deptype = 'e')
    ORDER BY pass) q;
  FOREACH s IN ARRAY coalesce(stmts, '{}') LOOP
    EXECUTE s;
  END LOOP;
END $$;
"""


def _put_file(photo_dir: Path, rel: str, fh, want: dict) -> None:
    """One store file written as the app writes it (report_photos.store_file): a temporary file,
    fsync, rename; 0640 in 0750 folders. Checked again on the way in (the archive is read twice)."""
    from .domain.report_photos import make_private_dirs

    path = photo_dir / rel
    make_private_dirs(photo_dir, path.parent)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        sha = hashlib.sha256()
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            while chunk := fh.read(_CHUNK):
                sha.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if sha.hexdigest() != want["sha256"]:
            raise BackupError(f"备份在恢复过程中被改动：{want['path']}。", f"{want['path']} changed during the restore.")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _revision_note(url: str, revision: str | None) -> str | None:
    from alembic.script import ScriptDirectory

    from .db import alembic_config

    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    if revision == head:
        return None
    known = {r.revision for r in script.walk_revisions()}
    if revision not in known:
        return (f"备份的数据库结构版本 {revision} 比本程序新（本程序为 {head}）：请安装做出该备份的 geoapp 版本。 "
                f"The backup's schema {revision} is newer than this code's {head}: install the geoapp that made it.")
    return (f"数据库结构版本为 {revision}，本程序为 {head}：请运行 geoapp db upgrade。 "
            f"The schema is at {revision}, this code at {head}: run `geoapp db upgrade`.")


def restore_backup(settings, archive: Path, *, force: bool = False) -> RestoreResult:
    """Rebuild the database and the photo store from `archive` (see the module's docstring)."""
    archive = Path(archive)
    manifest = verify_archive(archive)  # before anything is touched
    url = owner_url(settings)
    photo_dir = Path(settings.photo_dir)
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            has_reports = conn.execute(text("SELECT to_regclass('public.reports')")).scalar_one() is not None
            if has_reports and conn.execute(text("SELECT EXISTS (SELECT 1 FROM public.reports)")).scalar_one() \
                    and not force:
                raise BackupError("数据库不是空的（已有问题上报），拒绝恢复；确需覆盖请加 --force。",
                                  "The database is not empty (reports exist): refused; --force replaces it.")
            psql, pg_restore = _program("psql", conn), _program("pg_restore", conn)
        uri, env = _libpq(url)
        with tempfile.TemporaryDirectory(prefix="geoapp-restore-") as tmp, tarfile.open(archive, "r:") as tar:
            dump = Path(tmp) / DUMP
            with tar.extractfile(DUMP) as src, open(dump, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            # the dump's SQL (schema public's objects only: not the schema itself, which the install
            # made) is replayed by psql in the same transaction that drops the old objects
            sql = subprocess.Popen([pg_restore, "--no-owner", "--no-acl", "--schema=public", "--file=-", str(dump)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            replay = subprocess.run([psql, "-X", "-q", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1",
                                     "-c", _DROP_OWN_OBJECTS, "-f", "-", "--dbname", uri],
                                    stdin=sql.stdout, capture_output=True, text=True, env=env)
            sql.stdout.close()
            sql_err = sql.stderr.read().decode(errors="replace")
            sql.wait()
            if sql.returncode != 0 or replay.returncode != 0:
                detail = (sql_err or replay.stderr).strip().splitlines()
                raise BackupError("数据库恢复失败，数据库保持原样：" + (detail[-1] if detail else "?"),
                                  "(restore failed; the database is unchanged)")
            written = 0
            photo_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            for entry in manifest["files"]:
                if entry["path"].startswith(FILES):
                    with tar.extractfile(entry["path"]) as src:
                        _put_file(photo_dir, entry["path"][len(FILES):], src, entry)
                    written += 1
        with engine.connect() as conn:
            restored = _revision(conn)
            counts = _counts(conn)
        if restored != manifest["alembic_revision"] or any(counts.get(t) != n for t, n in manifest["counts"].items()):
            raise BackupError("恢复后的数据库与备份清单不符（结构版本或行数）。",
                              f"the restored database does not match the manifest (schema {restored}, counts {counts}).")
        granted = _grant_app_role(settings, engine)
    finally:
        engine.dispose()
    return RestoreResult(manifest, written, _revision_note(url, restored), granted)


def _grant_app_role(settings, engine) -> str | None:
    """The app's role gets its rows' privileges back on the restored tables (geoapp/db_roles.py)."""
    try:
        from .db_roles import app_role_for, grant_app_role
    except ImportError:  # an install from before the roles were split: one role, nothing to grant
        return None
    role = app_role_for(owner_url(settings), settings.database_url)
    if role:
        with engine.begin() as conn:
            grant_app_role(conn, role)
    return role
