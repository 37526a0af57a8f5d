"""Load through nginx and TLS on the production install, beside one waitress process; figures printed,
never asserted ([5] item 6). Loopback only, bounded in clients and seconds. Run as root:

    bench/run load [--seconds 60] [--phones 200] [--dispatchers 20] [--leaders 5] [--slow 100]
                   [--capacity-clients 48] [--capacity-seconds 15] [--no-install]

1. It installs (or upgrades) the production install with the demo's users on the production test's
   ports (scripts/install-production, GEOAPP_DEMO=1, https://127.0.0.1:18443), issues API keys for
   the demo's representatives, the dispatcher and the leader (their old keys stop working: a demo
   install only), and starts one waitress process (`geoapp serve`, 8 threads, as the user geoapp
   with the installed settings) on 127.0.0.1:18091, the same database and photo folder.
2. Capacity: a closed loop of JSON report posts (no photo) from --capacity-clients clients, each on
   its own loopback address (127.0.2.x: nginx limits intake per address), for --capacity-seconds
   against waitress (plain HTTP, straight to the app), then through nginx + TLS to gunicorn. Prints
   reports/s of each and their ratio.
3. The mix, through nginx + TLS, for --seconds: phones (each its own address 127.0.1.x; every third
   sends one 12 MP photo with its report; think times drawn from an exponential law, means
   --json-think / --photo-think), dispatchers (map cells for a random view at zoom 13–17, then one
   report in three of those shown), leaders (statistics and coverage), and slow clients (each its own
   address 127.0.5.x, sending a request's headers one byte every 5 s: nginx must cut them off after
   client_header_timeout while nobody else waits). Prints p50/p95/p99 per kind, every non-2xx, the CPU
   each process group used, and how long nginx let the slow clients hang on.

The load generator runs on the same 2 cores as nginx, gunicorn and PostgreSQL; its own CPU share is
printed, so the figures are a floor of what the server would do alone.
"""
from __future__ import annotations

import argparse
import collections
import http.client
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

HTTPS_PORT, HTTP_PORT, WAITRESS_PORT = 18443, 18080, 18091
HOST = "127.0.0.1"
SLOW_HEADER_INTERVAL_S = 5.0

KEYS_SCRIPT = """
import json
from geoapp import create_app
from geoapp.domain.accounts import issue_api_key
app = create_app()
db = app.extensions["geoapp_db"]
names = [f"rep{n:02d}" for n in range(1, 30)] + ["dispatcher", "leader"]
keys = {}
with db.transaction() as s:
    for name in names:
        keys[name] = issue_api_key(s, name)
print(json.dumps(keys))
"""


def as_geoapp(argv: list[str], **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    """A command as the user geoapp with the installed settings (as scripts/geoapp-admin runs the CLI)."""
    cmd = ["runuser", "-u", "geoapp", "--", "bash", "-c",
           'set -a; . /etc/geoapp/geoapp.env; set +a; cd /var/lib/geoapp; exec "$@"', "geoapp", *argv]
    if kw.pop("background", False):
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open("/tmp/geoapp-load-waitress.log", "w"),
                                start_new_session=True, **kw)
    return subprocess.run(cmd, capture_output=True, text=True, check=True, **kw)


def install() -> None:
    env = dict(os.environ, GEOAPP_HTTPS_PORT=str(HTTPS_PORT), GEOAPP_HTTP_PORT=str(HTTP_PORT), GEOAPP_DEMO="1")
    for name in ("DATABASE_URL", "OWNER_DATABASE_URL", "TEST_DATABASE_URL", "TEST_OWNER_DATABASE_URL"):
        env.pop(name, None)
    t0 = time.monotonic()
    done = subprocess.run([str(ROOT / "scripts" / "install-production")], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit("install-production failed:\n" + done.stdout[-2000:] + done.stderr[-2000:])
    print(f"production install (demo) ready in {time.monotonic() - t0:.0f} s: https://{HOST}:{HTTPS_PORT}")


# ---------------------------------------------------------------------------------------------- clients
class Target:
    def __init__(self, name: str, port: int, tls: bool):
        self.name, self.port, self.tls = name, port, tls
        self.context = ssl._create_unverified_context() if tls else None  # the install's self-signed pair

    def connect(self, source: str) -> http.client.HTTPConnection:
        if self.tls:
            return http.client.HTTPSConnection(HOST, self.port, context=self.context, timeout=30,
                                               source_address=(source, 0))
        return http.client.HTTPConnection(HOST, self.port, timeout=30, source_address=(source, 0))


NGINX = Target("nginx + TLS → gunicorn", HTTPS_PORT, True)
WAITRESS = Target("waitress, one process", WAITRESS_PORT, False)


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = collections.defaultdict(list)
        self.bad: collections.Counter = collections.Counter()
        self.codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def add(self, kind: str, status, seconds: float) -> None:
        with self.lock:
            self.codes[kind][status] += 1
            if isinstance(status, int) and 200 <= status < 300:
                self.samples[kind].append(seconds)
            else:
                self.bad[(kind, status)] += 1


class Client:
    """One keep-alive connection from its own loopback address, reopened after an error."""

    def __init__(self, target: Target, source: str, headers: dict):
        self.target, self.source, self.headers = target, source, headers
        if not target.tls:  # straight to the app, as nginx would forward it (ProxyFix trusts one hop)
            self.headers = dict(headers, **{"X-Forwarded-For": source, "X-Forwarded-Proto": "https"})
        self.conn = None

    def request(self, rec: Recorder, kind: str, method: str, path: str, body=None, headers=None):
        t0 = time.perf_counter()
        for attempt in (1, 2):
            reused = self.conn is not None
            try:
                if self.conn is None:
                    self.conn = self.target.connect(self.source)
                self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
                r = self.conn.getresponse()
                data = r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                break
            except (OSError, http.client.HTTPException) as e:
                status, data = type(e).__name__, b""
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                # a keep-alive connection the server closed while this client was idle (nginx's
                # keepalive_timeout): sent again once on a new one, as browsers and urllib3 do; safe,
                # as a report's client_id makes its retry a no-op
                if not reused:
                    break
        rec.add(kind, status, time.perf_counter() - t0)
        return status, data


def multipart(fields: dict, photo: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
              f'Content-Type: image/jpeg\r\n\r\n'.encode())
    out.write(photo)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# ------------------------------------------------------------------------------------------- the city
class City:
    """Points on each representative's own street (in the metric CRS, as intake measures them) and the
    map's tile range, read through the API."""

    def __init__(self, keys: dict[str, str]):
        from pyproj import Transformer
        from shapely import transform
        from shapely.geometry import shape
        
        c = Client(NGINX, HOST, {"Authorization": f"Bearer {keys['dispatcher']}"})
        rec = Recorder()
        _, data = c.request(rec, "setup", "GET", "/api/v1/streets")
        features = json.loads(data)["features"]
        to_m = Transformer.from_crs(4326, 4549, always_xy=True).transform
        self.to_deg = Transformer.from_crs(4549, 4326, always_xy=True).transform
        lines = {}
        for f in features:
            sid = f.get("id", f["properties"].get("id"))
            lines[int(sid)] = transform(shape(f["geometry"]), to_m, interleaved=False)
        self.street_of: dict[str, object] = {}
        for name, key in keys.items():
            if not name.startswith("rep"):
                continue
            c = Client(NGINX, HOST, {"Authorization": f"Bearer {key}"})
            _, data = c.request(rec, "setup", "GET", "/api/v1/me")
            self.street_of[name] = lines[json.loads(data)["street"]["id"]]
        bounds = [transform(g, self.to_deg, interleaved=False).bounds for g in lines.values()]
        self.lon0, self.lat0 = min(b[0] for b in bounds), min(b[1] for b in bounds)
        self.lon1, self.lat1 = max(b[2] for b in bounds), max(b[3] for b in bounds)

    def point_on(self, rep: str, rng: random.Random) -> tuple[float, float]:
        line = self.street_of[rep]
        p = line.interpolate(rng.uniform(0.02, 0.98), normalized=True)
        return self.to_deg(p.x + rng.uniform(-4, 4), p.y + rng.uniform(-4, 4))

    @staticmethod
    def tile(lon: float, lat: float, z: int) -> tuple[int, int]:
        """Web-Mercator tile numbers (the slippy-map scheme Leaflet asks for)."""
        n = 2 ** z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    def view(self, rng: random.Random) -> tuple[int, str]:
        z = rng.randint(13, 17)
        lon, lat = rng.uniform(self.lon0, self.lon1), rng.uniform(self.lat0, self.lat1)
        x, y = self.tile(lon, lat, z)
        return z, f"{x - 2},{y - 1},{x + 2},{y + 2}"  # a phone-to-desktop screen of 256 px tiles


def report_fields(city: City, rep: str, rng: random.Random) -> dict:
    lon, lat = city.point_on(rep, rng)
    return {"client_id": str(uuid.uuid4()), "lon": f"{lon:.7f}", "lat": f"{lat:.7f}", "crs": "wgs84",
            "category": "0401", "description": "压测 load bench"}


# ------------------------------------------------------------------------------------------ the roles
def capacity(target: Target, keys, city: City, clients: int, seconds: float) -> tuple[float, Recorder]:
    rec, stop = Recorder(), threading.Event()
    reps = sorted(k for k in keys if k.startswith("rep"))

    def loop(n: int):
        rng = random.Random(n)
        rep = reps[n % len(reps)]
        c = Client(target, f"127.0.2.{n + 1}", {"Authorization": f"Bearer {keys[rep]}",
                                                 "Content-Type": "application/json"})
        while not stop.is_set():
            c.request(rec, "POST report (JSON)", "POST", "/api/v1/reports",
                      body=json.dumps(report_fields(city, rep, rng)))

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=40)
    elapsed = time.monotonic() - t0
    return len(rec.samples["POST report (JSON)"]) / elapsed, rec


def phone(n: int, keys, city: City, photos: list[bytes], args, rec: Recorder, stop: threading.Event):
    rng = random.Random(1000 + n)
    reps = sorted(k for k in keys if k.startswith("rep"))
    rep = reps[n % len(reps)]
    c = Client(NGINX, f"127.0.1.{n + 1}", {"Authorization": f"Bearer {keys[rep]}"})
    with_photo = n % 3 == 0
    stop.wait(rng.uniform(0, args.json_think))  # phones do not all start in the same millisecond
    while not stop.is_set():
        fields = report_fields(city, rep, rng)
        if with_photo:
            body, ctype = multipart(fields, photos[n % len(photos)])
            c.request(rec, "POST report + 12 MP photo", "POST", "/api/v1/reports", body=body,
                      headers={"Content-Type": ctype})
        else:
            c.request(rec, "POST report (JSON)", "POST", "/api/v1/reports", body=json.dumps(fields),
                      headers={"Content-Type": "application/json"})
        stop.wait(rng.expovariate(1 / (args.photo_think if with_photo else args.json_think)))


def dispatcher(n: int, keys, city: City, args, rec: Recorder, stop: threading.Event):
    rng = random.Random(2000 + n)
    c = Client(NGINX, f"127.0.4.{n + 1}", {"Authorization": f"Bearer {keys['dispatcher']}"})
    while not stop.is_set():
        z, tiles = city.view(rng)
        status, data = c.request(rec, "GET map cells", "GET", f"/api/v1/map/cells?z={z}&tiles={tiles}")
        if status == 200 and rng.random() < 1 / 3:
            ids = [r[0] for tile in json.loads(data)["cells"].values() for r in tile["r"]]
            if ids:
                c.request(rec, "GET report", "GET", f"/api/v1/reports/{rng.choice(ids)}")
        stop.wait(rng.expovariate(1 / args.dispatcher_think))


def leader(n: int, keys, args, rec: Recorder, stop: threading.Event):
    rng = random.Random(3000 + n)
    c = Client(NGINX, f"127.0.6.{n + 1}", {"Authorization": f"Bearer {keys['leader']}"})
    while not stop.is_set():
        c.request(rec, "GET stats", "GET", "/api/v1/stats")
        c.request(rec, "GET coverage", "GET", "/api/v1/coverage")
        stop.wait(rng.expovariate(1 / args.leader_think))


def slow_client(n: int, held: list, stop: threading.Event):
    """Headers one byte every 5 s, reconnecting when cut off, until the run ends; how long each
    connection was held open before nginx closed it."""
    context = ssl._create_unverified_context()
    request = b"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            raw = socket.create_connection((HOST, HTTPS_PORT), timeout=30, source_address=(f"127.0.5.{n + 1}", 0))
            sock = context.wrap_socket(raw, server_hostname=HOST)
            for i in range(len(request)):
                sock.sendall(request[i:i + 1])
                sock.settimeout(SLOW_HEADER_INTERVAL_S)
                try:
                    if sock.recv(1024) == b"":
                        break  # closed by the server
                    break  # answered (408): closed next
                except socket.timeout:
                    pass
                if stop.is_set():
                    sock.close()
                    return
            sock.close()
            held.append(time.monotonic() - t0)
        except OSError:
            held.append(time.monotonic() - t0)


# ------------------------------------------------------------------------------------------- CPU split
def cpu_ticks() -> dict[int, tuple[str, int]]:
    """CPU ticks (user + system) so far of each process, with its group, from /proc."""
    me = os.getpid()
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if int(pid) == me:
            group = "load generator (this script)"
        elif "gunicorn" in cmd:
            group = "gunicorn workers"
        elif "geoapp serve" in cmd:
            group = "waitress"
        elif comm == "nginx":
            group = "nginx"
        elif comm.startswith("postgres") or cmd.startswith("postgres"):
            group = "PostgreSQL"
        else:
            group = "other"
        out[int(pid)] = (group, ticks)
    return out


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per group between two readings (a process that started in between counts from 0;
    one that ended in between is not seen: short-lived helpers land in no group)."""
    used: collections.Counter = collections.Counter()
    for pid, (group, ticks) in after.items():
        used[group] += ticks - before.get(pid, (group, 0))[1]
    return {k: v / os.sysconf("SC_CLK_TCK") for k, v in used.items()}


def profile(pid: int, seconds: float, py_spy: str, out: Path) -> subprocess.Popen:
    """py-spy sampling every gunicorn worker (the master's children) for `seconds`, as collapsed stacks."""
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)),
                             "--rate", "50", "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_profile(path: Path, top: int = 25) -> None:
    """Share of the workers' samples (idle threads excluded) spent in each of geoapp's and its libraries'
    functions, callees included: where a JSON report's time goes."""
    incl: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            module = where.split(":")[0]
            module = "/".join(module.split("/")[-2:])
            key = f"{name} ({module})"
            if key not in seen:
                seen.add(key)
                incl[key] += int(n)
    print(f"  py-spy, {total} samples of busy worker threads; share of them in (callees included):")
    shown = 0
    for key, n in incl.most_common():
        if any(x in key for x in ("gthread", "threading", "concurrent/", "selectors", "<module>", "run (", "wsgiapp",
                                  "base.py", "arbiter", "_bootstrap", "handle (", "handle_request")):
            continue
        print(f"    {100 * n / total:5.1f}%  {key}")
        shown += 1
        if shown == top:
            break


class WaitSampler:
    """Ten times a second, what the app's database sessions are doing (pg_stat_activity, read as the
    app's role, which sees its own sessions): where the time goes when the CPUs are not the limit."""

    def __init__(self):
        import psycopg2

        env = dict(line.split("=", 1) for line in Path("/etc/geoapp/geoapp.env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
        self.conn = psycopg2.connect(env["DATABASE_URL"].strip("'\""))
        self.conn.autocommit = True
        self.seen: collections.Counter = collections.Counter()
        self.samples = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with self.conn.cursor() as cur:
            while not self.stop.wait(0.1):
                cur.execute("SELECT state, coalesce(wait_event_type || ':' || wait_event, 'on CPU'), "
                            "regexp_replace(left(query, 48), '\\s+', ' ', 'g') FROM pg_stat_activity "
                            "WHERE usename = current_user AND pid <> pg_backend_pid() AND state <> 'idle'")
                self.samples += 1
                for state, wait, query in cur.fetchall():
                    key = (state, wait, query if state == "active" else "")
                    self.seen[key] += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.conn.close()

    def report(self, top: int = 8) -> None:
        if not self.samples:
            return
        busy = sum(self.seen.values()) / self.samples
        print(f"  database sessions not idle, on average {busy:.1f} (pg_stat_activity, {self.samples} samples):")
        for (state, wait, query), n in self.seen.most_common(top):
            print(f"    {n / self.samples:5.2f}  {state:20} {wait:28} {query}")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def table(rec: Recorder, seconds: float) -> None:
    print(f"  {'request':28} {'n':>6} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  not 2xx")
    for kind in sorted(rec.codes):
        xs = rec.samples.get(kind, [])
        bad = {str(s): n for (k, s), n in rec.bad.items() if k == kind}
        if xs:
            print(f"  {kind:28} {len(xs):6d} {len(xs) / seconds:7.1f} {statistics.median(xs) * 1e3:8.0f} "
                  f"{pct(xs, 95) * 1e3:8.0f} {pct(xs, 99) * 1e3:8.0f} {max(xs) * 1e3:8.0f}  {bad or 0}")
        else:
            print(f"  {kind:28} {0:6d}  {bad}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--phones", type=int, default=200)
    ap.add_argument("--dispatchers", type=int, default=20)
    ap.add_argument("--leaders", type=int, default=5)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--json-think", type=float, default=5.0, help="mean seconds between a JSON phone's posts")
    ap.add_argument("--photo-think", type=float, default=60.0, help="mean seconds between a photo phone's posts")
    ap.add_argument("--dispatcher-think", type=float, default=1.0)
    ap.add_argument("--leader-think", type=float, default=5.0)
    ap.add_argument("--capacity-clients", type=int, default=48)
    ap.add_argument("--capacity-seconds", type=float, default=15)
    ap.add_argument("--photo-mp", type=float, default=12)
    ap.add_argument("--py-spy", default=shutil.which("py-spy"),
                    help="py-spy's path: profile the gunicorn workers during the capacity run (pip install py-spy)")
    ap.add_argument("--no-install", action="store_true", help="use the install as it is (demo users needed)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/load.py runs as root: it installs the production install and binds 127.0.x.y")
    for n, limit in ((args.phones, 254), (args.capacity_clients, 254), (args.dispatchers, 254), (args.slow, 254),
                     (args.leaders, 254)):
        if not 0 <= n <= limit:
            raise SystemExit("at most 254 clients of each kind (one loopback /24 each)")
    if not args.no_install:
        install()
    keys = json.loads(as_geoapp(["/opt/geoapp/venv/bin/python", "-c", KEYS_SCRIPT]).stdout.strip().splitlines()[-1])
    city = City(keys)
    from parallel_intake import photo_jpeg

    photos = [photo_jpeg(args.photo_mp) for _ in range(3)]
    print(f"{len(keys)} API keys; photos of {args.photo_mp:g} MP, {statistics.mean(map(len, photos)) / 1e6:.1f} MB each; "
          f"{os.cpu_count()} CPUs, the load generator on the same machine")

    waitress = as_geoapp(["/opt/geoapp/venv/bin/geoapp", "serve", "--host", HOST, "--port", str(WAITRESS_PORT)],
                         background=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection((HOST, WAITRESS_PORT), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        workers = int(subprocess.run(["pgrep", "-c", "-f", "gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py"],
                                     capture_output=True, text=True).stdout.strip() or 1) - 1
        print(f"\n1. JSON intake capacity: {args.capacity_clients} clients in a closed loop, "
              f"{args.capacity_seconds:g} s each")
        results = {}
        for target in (WAITRESS, NGINX):
            before = cpu_ticks()
            spy = None
            if target is NGINX and args.py_spy:
                master = min(int(p) for p in subprocess.run(
                    ["pgrep", "-f", "gunicorn -c /opt/geoapp/deploy/gunicorn.conf.py"],
                    capture_output=True, text=True).stdout.split())
                spy = profile(master, args.capacity_seconds - 2, args.py_spy, Path("/tmp/geoapp-load-profile.txt"))
            with WaitSampler() as waits:
                rate, rec = capacity(target, keys, city, args.capacity_clients, args.capacity_seconds)
            used = {k: v / args.capacity_seconds for k, v in cpu_used(before, cpu_ticks()).items()}
            results[target.name] = rate
            xs = rec.samples["POST report (JSON)"]
            bad = {str(k[1]): n for k, n in rec.bad.items()} or 0
            print(f"  {target.name:30} {rate:7.1f} reports/s  p50 {statistics.median(xs) * 1e3:.0f} ms  "
                  f"p99 {pct(xs, 99) * 1e3:.0f} ms  not 2xx {bad}  CPU (cores): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 0.05))
            waits.report(5)
            if spy is not None:
                spy.wait(timeout=60)
                print_profile(Path("/tmp/geoapp-load-profile.txt"))
        ratio = results[NGINX.name] / results[WAITRESS.name]
        print(f"  ratio: {ratio:.2f}x (gunicorn: {workers} workers x threads, behind nginx; waitress: 1 process, "
              f"8 threads)")
    finally:
        os.killpg(waitress.pid, signal.SIGTERM)  # runuser, bash's exec and waitress: one group
        waitress.wait(timeout=20)

    print(f"\n2. The mix through nginx + TLS, {args.seconds:g} s: {args.phones} phones (a third with a photo; "
          f"think {args.json_think:g} s JSON / {args.photo_think:g} s photo), {args.dispatchers} dispatchers, "
          f"{args.leaders} leaders, {args.slow} slow clients")
    rec, stop, held = Recorder(), threading.Event(), []
    threads = [threading.Thread(target=phone, args=(n, keys, city, photos, args, rec, stop), daemon=True)
               for n in range(args.phones)]
    threads += [threading.Thread(target=dispatcher, args=(n, keys, city, args, rec, stop), daemon=True)
                for n in range(args.dispatchers)]
    threads += [threading.Thread(target=leader, args=(n, keys, args, rec, stop), daemon=True)
                for n in range(args.leaders)]
    threads += [threading.Thread(target=slow_client, args=(n, held, stop), daemon=True) for n in range(args.slow)]
    if args.seconds <= 0:
        return
    before = cpu_ticks()
    t0 = time.monotonic()
    waits = WaitSampler().__enter__()
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    waits.__exit__()
    elapsed = time.monotonic() - t0
    used = cpu_used(before, cpu_ticks())
    for t in threads:
        t.join(timeout=40)
    table(rec, elapsed)
    total = sum(used.values())
    print(f"  CPU over the run: {total / elapsed:.2f} of {os.cpu_count()} cores — "
          + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(used.items(), key=lambda kv: -kv[1])
                      if v / total >= 0.01))
    waits.report()
    if held:
        print(f"  slow clients: {len(held)} connections cut off by nginx, held open p50 {statistics.median(held):.1f} s, "
              f"max {max(held):.1f} s (client_header_timeout)")


if __name__ == "__main__":
    main()
