"""The point-in-time recovery drill (docs/backup-and-pitr.md): a throwaway PostgreSQL archiving its WAL
into pgBackRest (scripts/pgbackrest.sh), the app's schema and demo loaded through its own CLI, a full
backup, then a mistaken mass `void` of every report; the cluster is restored to the moment just before
it, and every report's status and the history are as they were, and the cluster takes writes again.

It needs root (the cluster runs as the postgres user, as in production) and pgbackrest on PATH; it uses
none of the suite's database fixtures, and touches no other cluster."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from geoapp.config import PROJECT_ROOT

LIB = PROJECT_ROOT / "scripts" / "pgbackrest.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
GEOAPP = PROJECT_ROOT / ".venv" / "bin" / "geoapp"
STANZA = "pitr"
DEMO_REPORTS = 40

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("pgbackrest") is None or not (PG_BIN / "initdb").exists(),
    reason="the PITR drill needs root, pgbackrest on PATH and PostgreSQL 15")


def _run(cmd, **kw):
    """Run cmd; on failure show what it said (pgbackrest and pg_ctl explain themselves on stderr)."""
    done = subprocess.run(cmd, capture_output=True, text=True, cwd="/", **kw)
    if done.returncode != 0:
        raise AssertionError(f"{cmd} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _as_postgres(*cmd):
    return _run(["runuser", "-u", "postgres", "--", *map(str, cmd)])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The throwaway cluster and its pgBackRest repository, all under one temp dir."""

    def __init__(self, root: Path):
        self.root = root
        self.pgdata = root / "pgdata"
        self.conf = root / "pgbackrest.conf"
        self.repo = root / "repo"
        self.port = _free_port()
        self.url = f"postgresql://postgres@/postgres?host={root}&port={self.port}"
        self.env = {**os.environ, "GEOAPP_PGBACKREST_LOG_PATH": str(root / "pgbackrest-log"),
                    "GEOAPP_PGBACKREST_LOCK_PATH": str(root / "pgbackrest-lock")}

    def lib(self, func, *args) -> str:
        """One function of scripts/pgbackrest.sh, as the install would call it."""
        return _run(["bash", "-c", 'set -euo pipefail; source "$0"; "$@"', str(LIB), func, *map(str, args)],
                    env=self.env)

    def start(self):
        _as_postgres(PG_BIN / "pg_ctl", "-D", self.pgdata, "-l", self.root / "server.log", "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        _as_postgres(PG_BIN / "pg_ctl", "-D", self.pgdata, "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata),
                               "status"], capture_output=True, cwd="/").returncode == 0

    def sql(self, query, args=None):
        """One autocommitted statement; its rows."""
        conn = psycopg2.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def geoapp(self, *args):
        env = {**os.environ, "DATABASE_URL": self.url, "OWNER_DATABASE_URL": self.url, "GEOAPP_DEMO": "1",
               "GEOAPP_VAR_DIR": str(self.root / "var"), "PHOTO_DIR": str(self.root / "var" / "photos"),
               "GEOAPP_RUN_DIR": str(self.root / "var" / "run"), "SECRET_KEY": "pitr-drill"}
        return _run([str(GEOAPP), *args], env=env)


@pytest.fixture
def cluster():
    root = Path(tempfile.mkdtemp(prefix="geoapp-pitr-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    c = Cluster(root)
    try:
        # trust: only because this cluster is a throwaway one of this test, reached on no TCP port at
        # all (listen_addresses = '') and only through a socket in a 0700 folder of postgres's (and root's)
        _as_postgres(PG_BIN / "initdb", "-D", c.pgdata, "-U", "postgres", "-A", "trust", "--no-sync",
                     "-E", "UTF8", "--locale=C.UTF-8")
        settings = (f"listen_addresses = ''\nunix_socket_directories = '{root}'\nport = {c.port}\n"
                    + c.lib("pgbackrest_archiving_conf", c.conf, STANZA))
        with open(c.pgdata / "postgresql.conf", "a") as f:
            f.write("\n" + settings)
        c.lib("pgbackrest_configure", c.conf, c.repo, STANZA, c.pgdata, c.port, root)
        c.start()
        yield c
    finally:
        if c.running():
            c.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def _state(c: Cluster):
    return (sorted(c.sql("SELECT id, status FROM reports")),
            c.sql("SELECT count(*) FROM report_events")[0][0])


def _wait(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_restore_to_just_before_a_mass_void(cluster):
    c = cluster
    c.sql("CREATE EXTENSION postgis")
    c.geoapp("db", "upgrade")
    c.geoapp("gis", "load")
    c.geoapp("demo", "load", "--reports", str(DEMO_REPORTS))

    c.lib("pgbackrest_stanza_create", c.conf, STANZA)
    t0 = time.monotonic()
    c.lib("pgbackrest_backup", c.conf, STANZA, "full")
    backup_s = time.monotonic() - t0

    # work done after the backup and before the mistake must come back too: it lives only in the WAL
    c.sql("INSERT INTO report_events (report_id, actor_id, action, data) "
          "SELECT min(r.id), min(u.id), 'comment', '{\"text\": \"after the backup\"}'::jsonb "
          "FROM reports r, users u WHERE u.username = 'dispatcher'")
    before, events_before = _state(c)
    assert len(before) == DEMO_REPORTS and any(s != "void" for _, s in before)
    time.sleep(1)
    target = c.sql("SELECT now()::text")[0][0]
    time.sleep(1)

    # the mistake: a dispatcher's script voids every report, with its history events as the app writes
    # them (merged reports keep their status: the schema requires merged_into_id with it)
    c.sql("""
        WITH old AS (SELECT id, status FROM reports WHERE status NOT IN ('void', 'merged') FOR UPDATE),
             v AS (UPDATE reports r SET status = 'void', version = r.version + 1, updated_at = now()
                     FROM old WHERE r.id = old.id RETURNING r.id, old.status AS from_status)
        INSERT INTO report_events (report_id, actor_id, action, from_status, to_status, data)
        SELECT v.id, (SELECT id FROM users WHERE username = 'dispatcher'), 'void', v.from_status, 'void',
               '{"reason": "清理测试数据"}'::jsonb
          FROM v""")
    voided, _ = _state(c)
    assert {s for _, s in voided} <= {"void", "merged"}

    # the mistake's WAL must reach the repository before the machine "dies"
    segment = c.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
    _wait("the WAL with the void to be archived",
          lambda: (c.sql("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] or "") >= segment)
    c.stop()

    t0 = time.monotonic()
    c.lib("pgbackrest_restore_to_time", c.conf, STANZA, c.pgdata, target)
    c.start()
    _wait("recovery to reach the target and promote", lambda: not c.sql("SELECT pg_is_in_recovery()")[0][0])
    restore_s = time.monotonic() - t0
    print(f"\nPITR drill: full backup {backup_s:.1f} s, restore to {target} + recovery {restore_s:.1f} s")

    assert _state(c) == (before, events_before)  # every status back, the void's events gone
    log = (c.root / "server.log").read_text()
    assert "recovery stopping before commit of transaction" in log, log[-3000:]
    # a cluster open for writes again (on a new timeline), and its WAL archived as before
    report_id = before[0][0]
    c.sql("INSERT INTO report_events (report_id, actor_id, action, data) "
          "SELECT %s, id, 'comment', '{\"text\": \"after PITR\"}'::jsonb FROM users WHERE username = 'dispatcher'",
          (report_id,))
    assert c.sql("SELECT count(*) FROM report_events")[0][0] == events_before + 1
    assert c.sql("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")[0][0] == "00000002"
    info = c.lib("pgbackrest_info", c.conf, STANZA)
    assert "full backup" in info
