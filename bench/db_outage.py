"""What 20 phones see while PostgreSQL is down for 10 s. Prints figures, asserts nothing.

    bench/run db_outage [--clients 20] [--before 5] [--down 10] [--after 10] [--pause 0.5]

It runs the real server (`geoapp serve` on a free port) against DATABASE_URL, which must be this
checkout's project-local cluster (bench/run provisions database geoapp_bench on it), because it stops
and starts that cluster with pg_ctl (as the data directory's owner, `postgres`, when run as root).
Every client posts reports for rep01 and, like the phone, resends the SAME client_id after a short
pause on any non-2xx answer or connection error. Printed: the answers before, during and after the
outage (5xx with their Content-Type and error code), whether 503s carry Retry-After, how long after
PostgreSQL came back the first 201 arrived, and whether every acknowledged client_id is stored
exactly once. The server is always stopped and PostgreSQL always started again (if it was running).
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from geoapp.config import PROJECT_ROOT, VAR_DIR
from geoapp.db import make_engine

PG_CTL = "/usr/lib/postgresql/15/bin/pg_ctl"


@dataclass
class Answer:
    client: int
    client_id: str
    attempt: int
    sent: float  # time.monotonic()
    done: float
    outcome: str  # "201", "500 text/html", "503 application/json database_unavailable", "connection error (…)"
    status: int | None
    retry_after: str | None


def geoapp_command() -> str:
    return shutil.which("geoapp") or str(Path(sys.executable).with_name("geoapp"))


def run_geoapp(*args: str) -> str:
    out = subprocess.run([geoapp_command(), *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Cluster:
    """The project-local cluster behind DATABASE_URL, stopped and started with pg_ctl."""

    def __init__(self, engine):
        with engine.connect() as conn:
            served = conn.execute(text("SHOW data_directory")).scalar_one()
        local = os.path.realpath(PROJECT_ROOT / "var" / "pg")
        if os.path.realpath(served) != local:
            sys.exit(f"DATABASE_URL is served from {served}, not this checkout's cluster ({local}); "
                     "this benchmark only stops the project-local cluster (run it with bench/run)")
        self.data = local
        owner = Path(local).owner()
        self.prefix = ["runuser", "-u", owner, "--"] if os.geteuid() == 0 else []

    def pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, PG_CTL, "-D", self.data, *args], capture_output=True, text=True)

    def running(self) -> bool:
        return self.pg_ctl("status").returncode == 0

    def stop(self) -> None:
        r = self.pg_ctl("-m", "fast", "-w", "stop")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {r.stderr or r.stdout}")

    def start(self) -> None:
        r = self.pg_ctl("-l", f"{self.data}/server.log", "-w", "-t", "60", "start")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr or r.stdout}")


class Server:
    """`geoapp serve` as a subprocess on a free port; its log goes to a file."""

    def __init__(self, threads: int, log_path: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [geoapp_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(threads)],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.monotonic() + 60
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"geoapp serve did not start (exit {self.proc.returncode}); its log:\n"
                         + log_path.read_text()[-3000:])

    def _read_stdout(self):
        for line in self.proc.stdout:
            if "serving on" in line:  # printed by geoapp serve once it listens
                self.ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def post(port: int, key: str, body: bytes) -> tuple[str, int | None, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/reports", body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"connection error ({type(exc).__name__})", None, None
    finally:
        conn.close()
    outcome = str(resp.status)
    if resp.status >= 400:
        ctype = (resp.getheader("Content-Type") or "no Content-Type").split(";")[0]
        code = ""
        if ctype == "application/json":
            try:
                code = " " + str(json.loads(data).get("error"))
            except (ValueError, AttributeError):
                code = " (unparsable JSON)"
        outcome = f"{resp.status} {ctype}{code}"
    return outcome, resp.status, resp.getheader("Retry-After")


def client_loop(n, port, key, points, pause, think, stop, answers, acked, pending, lock):
    rng = random.Random(n)
    while not stop.is_set():
        cid = str(uuid.uuid4())
        lon, lat = rng.choice(points)
        body = json.dumps({"client_id": cid, "lon": lon, "lat": lat, "crs": "wgs84",
                           "category": "0401", "description": "停库测试"}, ensure_ascii=False).encode()
        attempt = 0
        while True:
            attempt += 1
            sent = time.monotonic()
            outcome, status, retry_after = post(port, key, body)
            with lock:
                answers.append(Answer(n, cid, attempt, sent, time.monotonic(), outcome, status, retry_after))
                if status is not None and 200 <= status < 300:
                    acked[cid] = status
            if status is not None and 200 <= status < 300:
                break
            if stop.is_set():
                with lock:
                    pending.add(cid)  # the phone would keep resending it
                break
            time.sleep(pause)  # then resend the same client_id, as the phone does
        time.sleep(think)


def fmt_s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--before", type=float, default=5, help="seconds of traffic before PostgreSQL stops")
    ap.add_argument("--down", type=float, default=10, help="seconds PostgreSQL stays stopped")
    ap.add_argument("--after", type=float, default=10, help="seconds of traffic after it is started again")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds a client waits before resending")
    ap.add_argument("--think", type=float, default=0.1, help="seconds between a client's reports")
    ap.add_argument("--threads", type=int, default=8, help="waitress threads (scripts/serve uses 8)")
    ap.add_argument("--points", type=int, default=300)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally blocks on kill, too

    # the database, as scripts/serve prepares it
    run_geoapp("db", "upgrade")
    run_geoapp("gis", "load", str(PROJECT_ROOT / "gis_data"))
    run_geoapp("demo", "load", "--reports", "0")
    key = run_geoapp("users", "api-key", "rep01").splitlines()[-1]

    engine = make_engine(os.environ.get("DATABASE_URL", ""))
    with engine.connect() as conn:
        street = conn.execute(text("""
            SELECT s.code FROM users u JOIN representatives r ON r.id = u.representative_id
            JOIN streets s ON s.id = r.street_id WHERE u.username = 'rep01'""")).scalar_one()
        points = [tuple(p) for p in conn.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT ST_LineInterpolatePoint(ST_GeometryN(geom, 1), random() * 0.9 + 0.05) AS p
              FROM streets, generate_series(1, :n) WHERE code = :code) q"""),
            {"n": args.points, "code": street}).all()]
    cluster = Cluster(engine)
    engine.dispose()
    was_running = cluster.running()

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = Server(args.threads, VAR_DIR / "bench_db_outage_server.log")
    answers: list[Answer] = []
    acked: dict[str, int] = {}
    pending: set[str] = set()
    lock, stop = threading.Lock(), threading.Event()
    marks: dict[str, float] = {}
    threads = [threading.Thread(target=client_loop, daemon=True,
                                args=(n, server.port, key, points, args.pause, args.think, stop,
                                      answers, acked, pending, lock))
               for n in range(args.clients)]
    try:
        marks["clients start"] = time.monotonic()
        for t in threads:
            t.start()
        try:
            time.sleep(args.before)
            marks["pg stop issued"] = time.monotonic()
            cluster.stop()
            marks["pg stopped"] = time.monotonic()
            # down for args.down seconds, unless something else starts it (the scripts start a stopped
            # cluster: a scripts/test run in the same checkout would); then the figures say so
            while time.monotonic() < marks["pg stopped"] + args.down:
                time.sleep(0.25)
                if cluster.running():
                    marks["pg started by someone else"] = marks["pg start issued"] = marks["pg ready"] = time.monotonic()
                    break
        finally:
            if not cluster.running():
                marks["pg start issued"] = time.monotonic()
                cluster.start()
                marks["pg ready"] = time.monotonic()
        time.sleep(args.after)
    finally:
        stop.set()
        for t in threads:
            t.join(35)
        marks["clients stopped"] = time.monotonic()
        server.stop()
        if was_running and not cluster.running():
            cluster.start()

    report(args, server, cluster, street, points, answers, acked, pending, marks)


def report(args, server, cluster, street, points, answers, acked, pending, marks) -> None:
    t0 = marks["clients start"]
    down_from, up_at = marks["pg stop issued"], marks["pg ready"]

    def phase(a: Answer) -> str:
        return "before" if a.done < down_from else "during" if a.done < up_at else "after"

    print(f"db_outage: {args.clients} clients POST /api/v1/reports as rep01 (street {street}, {len(points)} points) "
          f"to `geoapp serve --threads {args.threads}` on port {server.port}")
    print(f"  resend the same client_id {args.pause:g} s after any non-2xx/connection error; "
          f"{args.think:g} s between reports; data directory {cluster.data}")
    print("timeline (s since clients started): "
          + ", ".join(f"{k} {v - t0:.2f}" for k, v in marks.items() if k != "clients start"))
    if "pg started by someone else" in marks:
        print(f"NOTE: PostgreSQL was started by another process after {marks['pg started by someone else'] - marks['pg stopped']:.1f} s "
              f"of the {args.down:g} s outage (another scripts/ or bench/ run on this checkout?); figures below are for that shorter outage")
    print()

    phases = ("before", "during", "after")
    spans = {"before": down_from - t0, "during": up_at - down_from, "after": marks["clients stopped"] - up_at}
    counts = collections.defaultdict(collections.Counter)
    latency = collections.defaultdict(list)
    for a in answers:
        counts[a.outcome][phase(a)] += 1
        latency[phase(a)].append(a.done - a.sent)
    width = max([len(o) for o in counts] + [30])
    head = [f"before ({spans['before']:.1f} s)", f"PG down ({spans['during']:.1f} s)", f"after ({spans['after']:.1f} s)"]
    print(f"{'answer':<{width}} | " + " | ".join(f"{h:>16}" for h in head) + " | outside outage")
    print("-" * width + "-+-" + "-+-".join("-" * 16 for _ in head) + "-+-" + "-" * 14)

    def order(outcome: str):
        return (outcome.startswith("connection"), outcome)
    for outcome in sorted(counts, key=order):
        c = counts[outcome]
        print(f"{outcome:<{width}} | " + " | ".join(f"{c[p]:>16}" for p in phases) + f" | {c['before'] + c['after']:>14}")
    totals = [sum(counts[o][p] for o in counts) for p in phases]
    print(f"{'all answers':<{width}} | " + " | ".join(f"{n:>16}" for n in totals) + f" | {totals[0] + totals[2]:>14}")
    lat = [f"{statistics.median(latency[p]) * 1000:.0f} / {max(latency[p]) * 1000:.0f} ms" if latency[p] else "—"
           for p in phases]
    print(f"{'answer time, median / max':<{width}} | " + " | ".join(f"{x:>16}" for x in lat))
    print()

    five = [a for a in answers if a.status is not None and a.status >= 500]
    s503 = [a for a in five if a.status == 503]
    if s503:
        with_ra = [a for a in s503 if a.retry_after is not None]
        values = sorted({a.retry_after for a in with_ra})
        print(f"503 answers: {len(s503)}, with Retry-After: {len(with_ra)}"
              + (f" (values: {', '.join(values)})" if values else ""))
    else:
        print("503 answers: none (so no Retry-After either)")
    others = collections.Counter(f"{a.status}" + (" with Retry-After" if a.retry_after else " without Retry-After")
                                 for a in five if a.status != 503)
    if others:
        print("other 5xx: " + ", ".join(f"{n} × {k}" for k, n in sorted(others.items())))

    first_ok = min((a.done for a in answers if a.status == 201 and a.done >= up_at), default=None)
    last_err = max((a.done for a in answers if (a.status is None or a.status >= 300)), default=None)
    first_err = min((a.done for a in answers if (a.status is None or a.status >= 300)), default=None)
    print(f"first error answer: {fmt_s(first_err - down_from if first_err else None)} after `pg_ctl stop` was issued")
    print(f"recovery: first 201 {fmt_s(first_ok - marks['pg start issued'] if first_ok else None)} after "
          f"`pg_ctl start` was issued, {fmt_s(first_ok - up_at if first_ok else None)} after it returned (server ready)")
    if last_err is not None:
        gap = last_err - up_at
        print(f"last error answer: {fmt_s(abs(gap))} {'after' if gap >= 0 else 'before'} PostgreSQL was ready")
    per_client_first = {}
    for a in answers:
        if a.status is not None and 200 <= a.status < 300 and a.done >= up_at:
            per_client_first.setdefault(a.client, a.done)
    if len(per_client_first) == args.clients:
        print(f"all {args.clients} clients had a 2xx again {fmt_s(max(per_client_first.values()) - up_at)} "
              "after PostgreSQL was ready")
    else:
        print(f"only {len(per_client_first)} of {args.clients} clients had a 2xx after PostgreSQL was ready")
    print()

    # integrity: every acknowledged client_id stored exactly once; no client_id twice
    all_ids = sorted({a.client_id for a in answers})
    engine = make_engine(os.environ["DATABASE_URL"])
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "SELECT client_id::text, count(*) FROM reports WHERE client_id = ANY(CAST(:ids AS uuid[])) "
            "GROUP BY client_id"), {"ids": all_ids}).all())
        dup_anywhere = conn.execute(text(
            "SELECT count(*) FROM (SELECT client_id FROM reports GROUP BY client_id HAVING count(*) > 1) d"
        )).scalar_one()
    engine.dispose()
    acked_ok = sum(1 for cid in acked if rows.get(cid) == 1)
    acked_missing = [cid for cid in acked if cid not in rows]
    twice = {cid: n for cid, n in rows.items() if n > 1}
    got_200 = sum(1 for a in answers if a.status == 200)
    retried_then_ok = sum(1 for cid in acked if any(a.client_id == cid and a.attempt > 1 for a in answers))
    pending_stored = sum(1 for cid in pending if cid in rows)
    print(f"integrity: {len(all_ids)} client_ids sent, {len(acked)} acknowledged (2xx), "
          f"{retried_then_ok} of them only after resending")
    print(f"  acknowledged and stored exactly once: {acked_ok} of {len(acked)}; "
          f"acknowledged but missing: {len(acked_missing)}"
          + (f" (e.g. {', '.join(acked_missing[:3])})" if acked_missing else ""))
    print(f"  client_ids with more than one row: {len(twice)} among ours, {dup_anywhere} in the whole table")
    print(f"  200 answers (a resend found the report an earlier attempt had stored): {got_200}")
    print(f"  still unacknowledged when the clients stopped: {len(pending)}, of which already stored: {pending_stored} "
          "(the phone's next resend would get 200)")
    log = server.log_path.read_text(errors="replace")
    print(f"server log: {server.log_path} ({len(log.splitlines())} lines, {log.count('Traceback')} tracebacks)")
    print(f"PostgreSQL now: {'running' if cluster.running() else 'stopped'}; server subprocess exit code "
          f"{server.proc.returncode}")


if __name__ == "__main__":
    main()
