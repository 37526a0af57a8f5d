"""Concurrent intake on one street: several worker processes (as gunicorn's) each submitting reports
with a photo, all at the same spot, so every report lands on the same counter rows (report_cells at
every zoom level, coverage_marks of the one reporter and day). Prints reports/s, latencies and how
much of the run the shared counter row was locked (sampled). Figures, printed, never asserted.

    bench/run parallel_intake [--workers 4] [--runs 8] [--photo-mp 12]

A counter row that stays locked while a photo is watermarked and encoded serialises the workers
behind it; geoapp/domain/intake.py publishes the photos before it inserts the report (whose triggers
lock those rows), so the rows are held only for the last inserts and the commit. The same run with
`--workers 1` is the baseline: the speed-up is what several workers buy on this machine.
Run by bench/run in its own database (GEOAPP_BENCH_DB_NAME, default geoapp_bench), which it empties;
photos go to a temporary directory, removed at the end.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_db import fresh_city  # noqa: E402
from photo_memory import camera_like  # noqa: E402

from geoapp import create_app  # noqa: E402
from geoapp.config import Settings  # noqa: E402
from geoapp.db import make_engine  # noqa: E402


def photo_jpeg(megapixels: float) -> bytes:
    from PIL import Image

    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = time.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    camera_like((w, w * 3 // 4)).save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def worker(settings: Settings, reporter, point, photo: bytes, runs: int, start, out) -> None:
    """One process: its own app (pool, decode slots on the shared run dir), `runs` reports in a row."""
    from geoapp.domain.intake import IntakeRules, Submission, submit_report

    app = create_app(settings)
    db, rules = app.extensions["geoapp_db"], IntakeRules.from_settings(settings)
    times = []
    start.wait()
    for _ in range(runs):
        sub = Submission(client_id=str(uuid.uuid4()), lon=point[0], lat=point[1], crs="wgs84", category="0401",
                         description="bench", photos=[photo + uuid.uuid4().bytes])  # each its own original
        t0 = time.perf_counter()
        with db.transaction() as session:
            submit_report(session, reporter, sub, rules)
        times.append(time.perf_counter() - t0)
    db.dispose()
    out.put(times)


class RowLockProbe(threading.Thread):
    """Samples, every few ms, whether the shared counter row (the spot's report_cells row at the
    finest level, all months) is locked by a writer: `SELECT … FOR UPDATE NOWAIT`, then rollback.
    The locked share of the run is how long intake holds the row that serialises it."""

    def __init__(self, engine):
        super().__init__(daemon=True)
        self.engine, self.stop, self.locked, self.samples = engine, threading.Event(), 0, 0
        with engine.connect() as conn:
            self.key = conn.execute(text("SELECT level, month::text, cx, cy, street_id, unit_id, status, class_id "
                                         "FROM report_cells ORDER BY level DESC, month, n DESC LIMIT 1")).one()

    def run(self) -> None:
        probe = text("SELECT 1 FROM report_cells WHERE (level, month, cx, cy, street_id, unit_id, status, class_id)"
                     " = (:l, CAST(:m AS date), :x, :y, :s, :u, :st, :c) FOR UPDATE NOWAIT")  # month as text: -infinity
        params = dict(zip(("l", "m", "x", "y", "s", "u", "st", "c"), self.key))
        with self.engine.connect() as conn:
            conn.execute(text("SET lock_timeout = '1ms'"))
            while not self.stop.is_set():
                try:
                    conn.execute(probe, params)
                except OperationalError:  # 55P03 lock_not_available: a writer holds the row
                    self.locked += 1
                conn.rollback()
                self.samples += 1
                time.sleep(0.003)


def measure(settings, reporter, point, photo, workers: int, runs: int, probe_engine=None):
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(settings, reporter, point, photo, runs, start, out))
             for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every worker has built its app
    probe = RowLockProbe(probe_engine) if probe_engine is not None else None
    t0 = time.perf_counter()
    start.set()
    if probe:
        probe.start()
    times = [t for _ in procs for t in out.get(timeout=600)]
    total = time.perf_counter() - t0
    if probe:
        probe.stop.set()
        probe.join(10)
    for p in procs:
        p.join(30)
        if p.exitcode != 0:
            raise SystemExit(f"a worker failed (exit {p.exitcode})")
    return total, times, (probe.locked / probe.samples if probe and probe.samples else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=8, help="reports per worker")
    ap.add_argument("--photo-mp", type=float, default=12.0, help="megapixels of each report's photo")
    args = ap.parse_args()

    base = Settings()
    if "bench" not in (make_url(base.database_url).database or ""):
        sys.exit(f"refusing to empty {make_url(base.database_url).database!r}: run me with bench/run parallel_intake")
    from geoapp.domain.intake import Reporter

    with tempfile.TemporaryDirectory(prefix="geoapp-bench-photos-") as tmp:
        # decode slots as many as workers: this bench is about the counter rows, not the decode budget
        settings = dataclasses.replace(base, photo_dir=Path(tmp) / "photos", run_dir=Path(tmp) / "run",
                                       photo_decode_slots=max(args.workers, base.photo_decode_slots))
        app = create_app(settings)
        with fresh_city(app) as (s, users, _key):
            rep = users["rep01"]
            reporter = Reporter(user_id=rep.id, role=rep.role, street_id=rep.representative.street_id)
            point = s.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_LineInterpolatePoint("
                                   "ST_GeometryN(geom_m, 1), 0.5), 4326) p FROM streets WHERE id = :id) q"),
                              {"id": reporter.street_id}).one()
        app.extensions["geoapp_db"].dispose()
        photo = photo_jpeg(args.photo_mp)
        print(f"{args.runs} reports per worker, all at one spot on one street, each with a {args.photo_mp:g} MP "
              f"JPEG ({len(photo) / 1e6:.1f} MB); {settings.photo_decode_slots} decode slots; "
              f"{multiprocessing.cpu_count()} CPUs")
        measure(settings, reporter, point, photo, 1, 1)  # warm-up: the font, Pillow's plugins, the page cache
        probe_engine = make_engine(settings.database_url)
        for workers in sorted({1, args.workers}):
            total, times, locked = measure(settings, reporter, point, photo, workers, args.runs, probe_engine)
            times.sort()
            n = len(times)
            print(f"{workers} worker(s): {n / total:.2f} reports/s; "
                  f"p50 {statistics.median(times) * 1000:.0f} ms, p95 {times[int(0.95 * (n - 1))] * 1000:.0f} ms, "
                  f"max {times[-1] * 1000:.0f} ms ({n} reports in {total:.1f} s); the shared counter row "
                  f"locked {locked:.0%} of the time, ~{locked * total / n * 1000:.0f} ms per report")
        probe_engine.dispose()


if __name__ == "__main__":
    main()
