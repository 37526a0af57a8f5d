"""What 20 phones see when the primary PostgreSQL dies and pg_auto_failover promotes the standby.
Prints figures, asserts nothing.

    bench/run failover [--clients 20] [--before 10] [--failover-max 90] [--after 15] [--sync-interval 2]

Everything lives in one temporary folder and on free loopback ports of this machine, and is removed at
the end (also on Ctrl-C or an error): a pg_auto_failover monitor and two PostgreSQL 15 nodes
(`pg_autoctl create monitor` / `create postgres`, run as the OS user `postgres`, listening on
127.0.0.1 only), PostGIS, the migrations run by an owner role and the city data and demo users loaded
by the app's role (as tests/conftest.py `migrated` does), and the real server (`geoapp serve`, waitress)
with DATABASE_URL a multi-host URL, `target_session_attrs=read-write`, so libpq connects to whichever
node is the primary.

Authentication: pg_auto_failover's own connections (its monitor, the replication between the nodes)
use `--auth trust`, only inside this throwaway drill: loopback only, a folder removed at the end, and
no password of pg_auto_failover's to keep anywhere; a real install gives them scram-sha-256 and a
password (`pg_autoctl config set replication.password`, a ~/.pgpass). The app's two roles
(geoapp_owner, geoapp_app) authenticate as in production, by scram-sha-256 with a random password
made for this run (put first in pg_hba.conf, so `trust` never applies to them).

Every phone (its own representative, rep01…rep20, posting on its own street) sends reports with a
small JPEG photo and, as the phone's outbox does, resends the SAME client_id after a pause on any
non-2xx answer or connection error. After --before seconds the primary's postmaster is killed
(`kill -9`, the PID from postmaster.pid). The photo store is a folder of the "primary machine"; a
second folder, the "standby machine's" store, is kept in step by `sync_photo_store` (what `geoapp
photos sync` runs) every --sync-interval seconds during the load. Printed: the time without an
acknowledged write, the 503s (and whether each had Retry-After), any 500, acknowledged vs stored on
the promoted node (each acknowledged client_id exactly once), that writes resumed there, and that every
acknowledged report's photo is served after the failover, by the server that ran through it and by a
second server pointed at the standby's store.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import http.client
import io
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from db_outage import Answer, Server  # noqa: E402  (the same `geoapp serve` subprocess and answer record)

from geoapp.cli import alembic_config  # noqa: E402
from geoapp.config import PROJECT_ROOT, Settings  # noqa: E402
from geoapp.db import Database  # noqa: E402
from geoapp.demo import _ensure_users  # noqa: E402
from geoapp.domain.accounts import issue_api_key  # noqa: E402
from geoapp.domain.photo_sync import sync_photo_store  # noqa: E402
from geoapp.gis.loader import load_city_data  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"
DB = "geoapp"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the pg_auto_failover formation ------------------------------------------------------------------

@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    proc: subprocess.Popen | None = None

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def connect(self, user="postgres", password=None, dbname=DB, timeout=3):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=user, password=password, dbname=dbname,
                                connect_timeout=timeout)

    def is_primary(self) -> bool | None:
        """True read-write, False not (a standby, or promoted but still read-only while pg_auto_failover
        waits for the old primary's demotion), None not answering. The test libpq's
        target_session_attrs=read-write makes."""
        try:
            with contextlib.closing(self.connect(timeout=1)) as conn, conn.cursor() as cur:
                cur.execute("SHOW transaction_read_only")
                return cur.fetchone()[0] == "off"
        except psycopg2.Error:
            return None


@dataclass
class Formation:
    root: Path
    monitor: Node = None
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self):
        self.monitor = Node("monitor", free_port(), self.root / "monitor")
        self.nodes = [Node(f"node{i}", free_port(), self.root / f"node{i}") for i in (1, 2)]
        # pg_autoctl keeps its state under XDG_CONFIG_HOME/XDG_DATA_HOME: here, not in ~postgres
        self.env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "XDG_CONFIG_HOME": str(self.root / "config"),
                    "XDG_DATA_HOME": str(self.root / "share"), "HOME": str(self.root), "LANG": "C.UTF-8"}

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/pg_auto_failover?sslmode=disable"

    def autoctl(self, *args: str, log: Path | None = None, check=True) -> subprocess.CompletedProcess:
        out = open(log, "a") if log else subprocess.PIPE
        # its own session: on a timeout, `create` and the postgres it started are stopped together
        proc = subprocess.Popen(self._as_postgres(PG_AUTOCTL, *args), stdout=out, stderr=subprocess.STDOUT,
                                text=True, cwd=self.root, start_new_session=True)
        try:
            stdout, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"pg_autoctl {' '.join(args[:2])} took more than 120 s"
                               + (f"; its log:\n{log.read_text()[-3000:]}" if log else "")) from None
        finally:
            if log:
                out.close()
        r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout or "")
        if check and r.returncode != 0:
            detail = log.read_text()[-3000:] if log else r.stdout
            raise RuntimeError(f"pg_autoctl {' '.join(args[:2])} failed (exit {r.returncode}):\n{detail}")
        return r

    def _as_postgres(self, *cmd: str) -> list[str]:
        env = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items())]
        return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + env + list(cmd)

    def run(self, node: Node) -> None:
        """`pg_autoctl run` for a node, in its own session (so it and its postgres are stopped together)."""
        log = open(self.root / f"{node.name}.log", "a")
        node.proc = subprocess.Popen(self._as_postgres(PG_AUTOCTL, "run", "--pgdata", str(node.pgdata)),
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        log.close()

    def create_monitor(self) -> None:
        m = self.monitor
        self.autoctl("create", "monitor", "--pgdata", str(m.pgdata), "--pgport", str(m.port),
                     "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl",
                     log=self.root / "create-monitor.log")
        self.run(m)
        wait_for(lambda: _pg_isready(m), 30, "the monitor to accept connections")

    def create_node(self, node: Node) -> None:
        self.autoctl("create", "postgres", "--pgdata", str(node.pgdata), "--pgport", str(node.port),
                     "--hostname", "127.0.0.1", "--listen", "127.0.0.1", "--name", node.name, "--dbname", DB,
                     "--monitor", self.monitor_uri, "--auth", "trust", "--no-ssl",
                     log=self.root / f"create-{node.name}.log")
        self.run(node)
        wait_for(lambda: _pg_isready(node), 60, f"{node.name} to accept connections")

    def states(self) -> dict[str, tuple[str, str]]:
        """{node name: (reported state, assigned state)} as the monitor sees them."""
        r = self.autoctl("show", "state", "--pgdata", str(self.monitor.pgdata), "--json", check=False)
        try:
            rows = json.loads(r.stdout)
        except ValueError:
            return {}
        return {row["nodename"]: (row["current_group_state"], row["assigned_group_state"]) for row in rows}

    def events(self, count: int = 12) -> str:
        r = self.autoctl("show", "events", "--pgdata", str(self.monitor.pgdata), "--count", str(count),
                         check=False)
        return r.stdout

    def stop(self) -> None:
        """SIGTERM each pg_autoctl session (it stops its postgres, fast); then SIGKILL what is left."""
        procs = [n.proc for n in (*self.nodes, self.monitor) if n.proc is not None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for n in (*self.nodes, self.monitor):  # a postgres whose supervisor died first
            pid = n.postmaster_pid()
            if pid and _alive(pid) and _cmdline(pid).find(str(n.pgdata)) >= 0:
                os.kill(pid, signal.SIGKILL)


def _pg_isready(node: Node) -> bool:
    return subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(node.port)]).returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(check, seconds: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise RuntimeError(f"timed out after {seconds:g} s waiting for {what}")


# --- the database, as provisioning and tests/conftest.py make it -------------------------------------

def prepare_database(f: Formation, passwords: dict[str, str]) -> None:
    """On the primary, before the standby is cloned from it: the two roles (scram-sha-256), PostGIS,
    the database's ownership, and pg_hba.conf lines that make the roles' logins scram, not trust."""
    primary = f.nodes[0]
    conn = primary.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = 'scram-sha-256'")
        for role, password in passwords.items():
            cur.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                        "PASSWORD %s", (password,))
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute(f"ALTER DATABASE {DB} OWNER TO geoapp_owner")
        cur.execute(f"REVOKE ALL ON DATABASE {DB} FROM PUBLIC")
        cur.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {DB} TO geoapp_app")
        cur.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cur.execute("GRANT USAGE ON SCHEMA public TO geoapp_app")
        cur.execute("GRANT ALL ON SCHEMA public TO geoapp_owner")
        hba = primary.pgdata / "pg_hba.conf"
        cur.execute("SELECT pg_read_file(%s)", (str(hba),))
        text = cur.fetchone()[0]
        first = ("# geoapp's roles: scram-sha-256 always (first match wins)\n"
                 "local all geoapp_owner,geoapp_app scram-sha-256\n"
                 "host  all geoapp_owner,geoapp_app 127.0.0.1/32 scram-sha-256\n")
        # written by the postgres user that owns the file (runuser), then reloaded
        subprocess.run(f._as_postgres("sh", "-c", f"cat > {hba}"), input=first + text, text=True, check=True)
        cur.execute("SELECT pg_reload_conf()")
        # pg_basebackup (the standby's clone) waits for a *spread* checkpoint: PostGIS's pages written
        # now make that one short, not minutes
        cur.execute("CHECKPOINT")
    conn.close()


def multi_host_url(f: Formation, role: str, password: str) -> str:
    hosts = ",".join("127.0.0.1" for _ in f.nodes)
    ports = ",".join(str(n.port) for n in f.nodes)
    return (f"postgresql://{role}:{password}@/{DB}?host={hosts}&port={ports}"
            "&target_session_attrs=read-write")


def migrate_and_load(owner_url: str, app_url: str, n_reps: int) -> dict[str, str]:
    """Migrations by the owner (granting the app role), then gis_data/ and the demo users by the app
    role; returns an API key per representative."""
    from alembic import command

    command.upgrade(alembic_config(owner_url, "geoapp_app"), "head")
    db = Database(app_url)
    try:
        with db.transaction() as session:
            load_city_data(session, PROJECT_ROOT / "gis_data", Settings(database_url=app_url).city_bbox)
        with db.transaction() as session:
            _ensure_users(session)
        keys = {}
        with db.transaction() as session:
            for i in range(1, n_reps + 1):
                keys[f"rep{i:02d}"] = issue_api_key(session, f"rep{i:02d}")
        return keys
    finally:
        db.dispose()


def street_points(app_url: str, reps: list[str], per_rep: int) -> dict[str, list[tuple[float, float]]]:
    db = Database(app_url)
    try:
        with db.transaction() as session:
            rows = session.execute(sql_text("""
                SELECT username, ST_X(p), ST_Y(p) FROM (
                  SELECT u.username, ST_Transform(ST_LineInterpolatePoint(ST_GeometryN(s.geom_m, 1),
                                                                          0.1 + 0.8 * random()), 4326) AS p
                  FROM users u JOIN representatives r ON r.id = u.representative_id
                  JOIN streets s ON s.id = r.street_id, generate_series(1, :n)
                  WHERE u.username = ANY(:reps)) q"""),
                {"n": per_rep, "reps": reps}).all()
    finally:
        db.dispose()
    points = collections.defaultdict(list)
    for name, lon, lat in rows:
        points[name].append((lon, lat))
    return points


def sql_text(s: str):
    from sqlalchemy import text
    return text(s)


# --- the phones -------------------------------------------------------------------------------------

def small_jpeg(seed: int) -> bytes:
    """640×480 with noise (a phone sends more; the drill is about the database, not the decoder)."""
    from PIL import Image

    rng = random.Random(seed)
    img = Image.frombytes("RGB", (640, 480), bytes(rng.getrandbits(8) for _ in range(640 * 480 * 3)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def multipart(fields: dict[str, str], photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="IMG_0001.JPG"\r\n'
                 "Content-Type: image/jpeg\r\n\r\n".encode() + photo + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, key: str, body: bytes | None = None,
            ctype: str | None = None, timeout: float = 30):
    """(outcome, status, Retry-After, body bytes, ETag); outcome as bench/db_outage.py words it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {key}"}
    if ctype:
        headers["Content-Type"] = ctype
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"connection error ({type(exc).__name__})", None, None, b"", None
    finally:
        conn.close()
    outcome = str(resp.status)
    if resp.status >= 400:
        rtype = (resp.getheader("Content-Type") or "no Content-Type").split(";")[0]
        code = ""
        if rtype == "application/json":
            with contextlib.suppress(ValueError, AttributeError):
                code = " " + str(json.loads(data).get("error"))
        outcome = f"{resp.status} {rtype}{code}"
    return outcome, resp.status, resp.getheader("Retry-After"), data, (resp.getheader("ETag") or "").strip('"')


@dataclass
class Shared:
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, dict] = field(default_factory=dict)  # client_id -> {rep, photo_urls, at}
    pending: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def phone(n: int, rep: str, port: int, key: str, points, photo: bytes, pause: float, think: float, sh: Shared):
    rng = random.Random(n)
    while not sh.stop.is_set():
        cid = str(uuid.uuid4())
        lon, lat = rng.choice(points)
        body, ctype = multipart({"client_id": cid, "lon": f"{lon:.7f}", "lat": f"{lat:.7f}", "crs": "wgs84",
                                 "category": "0401", "description": "主备切换演练"},
                                photo + uuid.UUID(cid).bytes)  # its own photo bytes: its own file
        attempt = 0
        while True:
            attempt += 1
            sent = time.monotonic()
            outcome, status, retry_after, data, _ = request(port, "POST", "/api/v1/reports", key, body, ctype)
            ok = status is not None and 200 <= status < 300
            with sh.lock:
                sh.answers.append(Answer(n, cid, attempt, sent, time.monotonic(), outcome, status, retry_after))
                if ok:
                    urls = [p["url"] for p in json.loads(data).get("photos", [])]
                    sh.acked[cid] = {"rep": rep, "photos": urls, "at": time.monotonic()}
            if ok:
                break
            if sh.stop.is_set():
                with sh.lock:
                    sh.pending.add(cid)  # the phone's outbox would keep it and resend it
                break
            time.sleep(pause)
        time.sleep(think)


def sync_loop(source: Path, dest: Path, interval: float, stop: threading.Event, runs: list):
    while not stop.wait(interval):
        t0 = time.monotonic()
        try:
            result = sync_photo_store(source, dest)
            runs.append((t0, time.monotonic() - t0, len(result.copied), len(result.damaged)))
        except Exception as exc:  # noqa: BLE001 - a bench keeps going and says so
            runs.append((t0, time.monotonic() - t0, -1, repr(exc)))


# --- the drill --------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--before", type=float, default=10, help="seconds of traffic before the postmaster is killed")
    ap.add_argument("--failover-max", type=float, default=90, help="at most this long waiting for the promotion")
    ap.add_argument("--after", type=float, default=15, help="seconds of traffic after the promotion")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds a phone waits before resending")
    ap.add_argument("--think", type=float, default=0.5, help="seconds between a phone's reports")
    ap.add_argument("--threads", type=int, default=8, help="waitress threads (scripts/serve uses 8)")
    ap.add_argument("--sync-interval", type=float, default=2.0, help="seconds between photo store syncs")
    ap.add_argument("--lose", choices=("postmaster", "machine"), default="postmaster",
                    help="postmaster: kill -9 node1's postmaster (its pg_autoctl keeper lives on); machine: "
                         "kill -9 the keeper too, as if the machine were gone")
    ap.add_argument("--keep", action="store_true", help="leave the temporary folder (for a look at the logs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run me as root (bench/run failover): PostgreSQL runs as the OS user postgres, through runuser")
    if args.clients > 29:
        sys.exit("at most 29 phones (the demo has rep01…rep29)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # the finally blocks run on kill, too

    root = Path(tempfile.mkdtemp(prefix="geoapp-failover-"))
    shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o755)  # postgres writes its clusters here; root's app reads its own folders
    app_root = root / "app"
    app_root.mkdir(mode=0o700)
    store_a, store_b = app_root / "store-primary", app_root / "store-standby"
    f = Formation(root)
    servers: list[Server] = []
    sh = Shared()
    sync_stop = threading.Event()
    t_setup = time.monotonic()
    try:
        f.create_monitor()
        f.create_node(f.nodes[0])
        wait_for(lambda: f.states().get("node1", ("",))[0] == "single", 60, "node1 to be the single primary")
        passwords = {"geoapp_owner": secrets.token_urlsafe(18), "geoapp_app": secrets.token_urlsafe(18)}
        prepare_database(f, passwords)
        f.create_node(f.nodes[1])
        wait_for(lambda: f.states() == {"node1": ("primary", "primary"), "node2": ("secondary", "secondary")},
                 90, "node1 primary and node2 its secondary")
        owner_url = multi_host_url(f, "geoapp_owner", passwords["geoapp_owner"])
        app_url = multi_host_url(f, "geoapp_app", passwords["geoapp_app"])
        reps = [f"rep{i:02d}" for i in range(1, args.clients + 1)]
        keys = migrate_and_load(owner_url, app_url, args.clients)
        points = street_points(app_url, reps, 50)
        hba_ok = all("geoapp_owner,geoapp_app 127.0.0.1/32 scram-sha-256" in (n.pgdata / "pg_hba.conf").read_text()
                     for n in f.nodes)
        setup_s = time.monotonic() - t_setup

        os.environ.update({
            "DATABASE_URL": app_url, "OWNER_DATABASE_URL": owner_url, "PHOTO_DIR": str(store_a),
            "GEOAPP_VAR_DIR": str(app_root / "var"), "GEOAPP_RUN_DIR": str(app_root / "run"),
            "NOTIFY_INTERVAL_S": "0", "GEOAPP_DEMO": "1"})
        server = Server(args.threads, app_root / "server-a.log")
        servers.append(server)
        photo = small_jpeg(1)
        sync_runs: list = []
        sync = threading.Thread(target=sync_loop, args=(store_a, store_b, args.sync_interval, sync_stop, sync_runs),
                                daemon=True)
        phones = [threading.Thread(target=phone, daemon=True,
                                   args=(n, rep, server.port, keys[rep], points[rep], photo, args.pause,
                                         args.think, sh))
                  for n, rep in enumerate(reps)]
        marks = {"start": time.monotonic()}
        sync.start()
        for t in phones:
            t.start()
        time.sleep(args.before)

        old, new = f.nodes
        if old.is_primary() is not True or new.is_primary() is not False:
            raise RuntimeError("node1 is not the primary (or node2 not its standby) before the kill")
        pid = old.postmaster_pid()
        marks["kill"] = time.monotonic()
        if args.lose == "machine":
            os.killpg(old.proc.pid, signal.SIGKILL)  # pg_autoctl and its services: nobody restarts postgres
        os.kill(pid, signal.SIGKILL)
        missing_at_kill = files_missing(store_a, store_b)
        marks["promoted"] = wait_for(lambda: new.is_primary() and time.monotonic(), args.failover_max,
                                     "node2 to be promoted", every=0.2)
        time.sleep(args.after)
        sh.stop.set()
        for t in phones:
            t.join(40)
        marks["clients stopped"] = time.monotonic()
        missing_before_last_sync = files_missing(store_a, store_b)
        time.sleep(args.sync_interval + 1)  # the timer's next run (store A's disk is still there: only PG died)
        sync_stop.set()
        sync.join(30)
        states_after = f.states()

        # the photos after the failover: by the server that ran through it, and by a second one on the
        # standby's store (the primary machine gone with its disk)
        served_a = fetch_photos(server.port, sh, keys)
        os.environ["PHOTO_DIR"] = str(store_b)
        server_b = Server(args.threads, app_root / "server-b.log")
        servers.append(server_b)
        served_b = fetch_photos(server_b.port, sh, keys)
        stored = stored_on(new, passwords["geoapp_owner"], list({a.client_id for a in sh.answers}),
                           marks["promoted"] - marks["start"])
        events = f.events()
        logs = {s.log_path.name: s.log_path.read_text(errors="replace").count("Traceback") for s in servers}
        report(args, f, old, new, pid, marks, sh, stored, served_a, served_b, missing_at_kill, missing_before_last_sync,
               sync_runs, states_after, events, logs, setup_s, hba_ok, store_a, store_b)
    finally:
        sh.stop.set()
        sync_stop.set()
        for s in servers:
            s.stop()
        f.stop()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            print(f"stopped the servers and the formation; removed {root}")


def files_missing(source: Path, dest: Path) -> int:
    """Files of the primary's store (originals, published copies) that the standby's does not have yet."""
    def names(root):
        return {p.relative_to(root) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")} \
            if root.exists() else set()
    return len(names(source) - names(dest))


def fetch_photos(port: int, sh: Shared, keys: dict[str, str]) -> collections.Counter:
    """GET every acknowledged report's photo URL as its reporter; the body must hash to its ETag."""
    counts = collections.Counter()
    for info in sh.acked.values():
        if not info["photos"]:
            counts["acknowledged without a photo"] += 1
        for url in info["photos"]:
            outcome, status, _, data, etag = request(port, "GET", url, keys[info["rep"]])
            if status == 200:
                # published files are named (and ETagged) by their content's SHA-256
                counts["200 and its bytes hash to its ETag" if hashlib.sha256(data).hexdigest() == etag
                       else "200 but the bytes do not match the ETag"] += 1
            else:
                counts[outcome] += 1
    return counts


def stored_on(node: Node, owner_password: str, ids: list[str], promoted_at_s: float) -> dict:
    with contextlib.closing(node.connect("geoapp_owner", owner_password)) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        in_recovery, port = cur.fetchone()
        cur.execute("SELECT client_id::text, count(*) FROM reports WHERE client_id = ANY(%s::uuid[]) "
                    "GROUP BY client_id", (ids,))
        rows = dict(cur.fetchall())
        cur.execute("SELECT count(*) FROM (SELECT client_id FROM reports GROUP BY client_id "
                    "HAVING count(*) > 1) d")
        dup_anywhere = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM reports r LEFT JOIN photos p ON p.report_id = r.id WHERE p.id IS NULL")
        without_photo = cur.fetchone()[0]
    return {"rows": rows, "dup_anywhere": dup_anywhere, "in_recovery": in_recovery, "port": port,
            "without_photo": without_photo}


def report(args, f, old, new, pid, marks, sh, stored, served_a, served_b, missing_at_kill, missing_before_last_sync,
           sync_runs, states_after, events, logs, setup_s, hba_ok, store_a, store_b) -> None:
    t0, kill, promoted = marks["start"], marks["kill"], marks["promoted"]
    answers = sh.answers
    print(f"failover: {args.clients} phones (rep01…rep{args.clients:02d}, each on its own street) POST "
          f"/api/v1/reports with a 640×480 JPEG to `geoapp serve --threads {args.threads}`")
    print(f"  DATABASE_URL postgresql://geoapp_app:…@/{DB}?host=127.0.0.1,127.0.0.1&port={old.port},{new.port}"
          "&target_session_attrs=read-write (scram-sha-256 for the app's roles: "
          f"{'first in both nodes pg_hba.conf' if hba_ok else 'NOT FOUND in pg_hba.conf'})")
    print(f"  pg_auto_failover 2.0: monitor 127.0.0.1:{f.monitor.port}, node1 127.0.0.1:{old.port} (primary), "
          f"node2 127.0.0.1:{new.port} (standby, synchronous); set up, migrated and loaded in {setup_s:.1f} s")
    print(f"  resend the same client_id {args.pause:g} s after any non-2xx/connection error; {args.think:g} s "
          f"between reports; photo store synced to the standby's every {args.sync_interval:g} s")
    what = f"postmaster {pid}" + (" and pg_autoctl" if args.lose == "machine" else "")
    print(f"timeline (s since the phones started): {what} of node1 killed {kill - t0:.2f}, node2 "
          f"read-write {promoted - t0:.2f} ({promoted - kill:.2f} s after the kill), phones stopped "
          f"{marks['clients stopped'] - t0:.2f}")
    print()

    def phase(a):
        return "before" if a.done < kill else "failover" if a.done < promoted else "after"
    counts = collections.defaultdict(collections.Counter)
    for a in answers:
        counts[a.outcome][phase(a)] += 1
    width = max([len(o) for o in counts] + [28])
    print(f"{'answer':<{width}} | {'before kill':>11} | {'kill→promoted':>13} | {'after':>8}")
    for outcome in sorted(counts, key=lambda o: (o.startswith("connection"), o)):
        c = counts[outcome]
        print(f"{outcome:<{width}} | {c['before']:>11} | {c['failover']:>13} | {c['after']:>8}")
    print()

    acks = sorted(a.done for a in answers if a.status is not None and 200 <= a.status < 300)
    # the longest stretch without a 2xx that ends after the kill (a request committed just before it
    # may still be answered just after it)
    gaps = [(b - a, a, b) for a, b in zip(acks, acks[1:]) if b >= kill]
    if gaps:
        gap, a, b = max(gaps)
        print(f"seconds without an acknowledged write: {gap:.2f} s (from {a - kill:+.2f} s to {b - kill:+.2f} s "
              f"around the kill; node2 read-write {promoted - kill:+.2f} s)")
    s503 = [a for a in answers if a.status == 503]
    with_ra = [a for a in s503 if a.retry_after is not None]
    print(f"503 answers: {len(s503)}, with Retry-After: {len(with_ra)}"
          + (f" (values: {', '.join(sorted({a.retry_after for a in with_ra}))})" if with_ra else ""))
    if s503:  # a dead primary must be answered fast (pool_pre_ping, connect_timeout), not hang the phone
        took = sorted(a.done - a.sent for a in s503)
        print(f"  answered in: median {took[len(took) // 2] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms")
    s500 = [a for a in answers if a.status is not None and a.status >= 500 and a.status != 503]
    print(f"other 5xx (500 must be 0): {len(s500)}"
          + (" — " + ", ".join(f"{n} × {o}" for o, n in collections.Counter(a.outcome for a in s500).items())
             if s500 else ""))
    conn_err = sum(1 for a in answers if a.status is None)
    print(f"connection errors (no HTTP answer): {conn_err}")
    print()

    rows = stored["rows"]
    acked = sh.acked
    once = sum(1 for cid in acked if rows.get(cid) == 1)
    missing = [cid for cid in acked if cid not in rows]
    twice = {cid: n for cid, n in rows.items() if n > 1}
    after = [cid for cid, info in acked.items() if info["at"] >= promoted]
    print(f"on the promoted node (node2, port {stored['port']}, pg_is_in_recovery = {stored['in_recovery']}):")
    print(f"  acknowledged {len(acked)}, stored exactly once {once}, acknowledged but missing {len(missing)}, "
          f"client_ids with more than one row {len(twice)} among ours / {stored['dup_anywhere']} in the table")
    print(f"  writes resumed there: {len(after)} reports acknowledged after the promotion, "
          f"{sum(1 for cid in after if rows.get(cid) == 1)} of them stored on node2")
    retried = sum(1 for cid in acked if any(a.client_id == cid and a.attempt > 1 for a in answers))
    pending_stored = sum(1 for cid in sh.pending if cid in rows)
    print(f"  acknowledged only after resending: {retried}; 200 (a resend found an earlier attempt's report): "
          f"{sum(1 for a in answers if a.status == 200)}; unacknowledged when the phones stopped: "
          f"{len(sh.pending)} (already stored: {pending_stored}); reports without a photo row: "
          f"{stored['without_photo']}")
    print()

    copied = sum(r[2] for r in sync_runs if r[2] > 0)
    errors = [r for r in sync_runs if r[2] < 0 or r[3]]
    print(f"photo store sync (sync_photo_store, as `geoapp photos sync`): {len(sync_runs)} runs, {copied} files "
          f"copied, {len(errors)} runs with errors/damage; longest run "
          f"{max((r[1] for r in sync_runs), default=0) * 1000:.0f} ms")
    print(f"  files the standby's store lacked at the kill: {missing_at_kill}, when the phones stopped: "
          f"{missing_before_last_sync} (what a lost primary disk would lose: up to one sync interval's); "
          "then one more timed run")
    print(f"  files: primary store {sum(1 for p in store_a.rglob('*') if p.is_file())}, standby store "
          f"{sum(1 for p in store_b.rglob('*') if p.is_file())}")
    n_photos = sum(len(i["photos"]) for i in acked.values())
    for label, served in (("the server that ran through the failover (primary's store)", served_a),
                          ("a second server on the standby's store", served_b)):
        print(f"  GET of the {n_photos} acknowledged photos from {label}: "
              + ", ".join(f"{n} × {k}" for k, n in served.most_common()))
    print()
    print("monitor after the drill: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(states_after.items())))
    print("tracebacks in the server logs: " + ", ".join(f"{k} {v}" for k, v in logs.items()))
    print("pg_autoctl show events (last ones):")
    for line in events.strip().splitlines():
        print("  " + line)


if __name__ == "__main__":
    main()
