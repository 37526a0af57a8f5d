"""POST /api/v1/reports through the real app (Flask's test client: the whole request path, no
network), with one 12 MP camera JPEG and with no photo. Figures, printed, never asserted; the aim is
a p50 under 300 ms with the photo.

    bench/run post_report [--runs 30] [--threads 1]

With a photo, a request: reads the multipart body, checks the photo by its content, decodes it at
reduced scale, turns it upright, scales it to PHOTO_MAX_PX, writes the original (fsync), inserts the
report, burns the watermark in, encodes and writes the published copy (fsync), inserts the photos
row and commits. Each run sends different bytes (a few after the JPEG's end), so every run writes
its own original, as real uploads do. Photos go to a temporary directory, removed at the end.
Run by bench/run in its own database (GEOAPP_BENCH_DB_NAME, default geoapp_bench), which it empties.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_db import fresh_city  # noqa: E402
from photo_memory import camera_like  # noqa: E402  (the same camera-like picture as the memory bench)

from geoapp import create_app  # noqa: E402
from geoapp.config import Settings  # noqa: E402


def camera_jpeg() -> bytes:
    """4000×3000, sensor-like noise, EXIF orientation 6 and a capture time: what a phone sends."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769)[0x9003] = time.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    camera_like((4000, 3000)).save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def line(label: str, times: list[float]) -> str:
    return (f"{label}: p50 {statistics.median(times) * 1000:.0f} ms, p95 {pct(times, 95) * 1000:.0f} ms, "
            f"min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms ({len(times)} runs)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="concurrent posting clients (each its own runs)")
    args = ap.parse_args()

    base = Settings()
    if "bench" not in (make_url(base.database_url).database or ""):
        sys.exit(f"refusing to empty {make_url(base.database_url).database!r}: run me with bench/run post_report")
    with tempfile.TemporaryDirectory(prefix="geoapp-bench-photos-") as photo_dir:
        settings = dataclasses.replace(base, photo_dir=Path(photo_dir))
        app = create_app(settings)
        db = app.extensions["geoapp_db"]
        with fresh_city(app) as (s, users, key):
            street = users["rep01"].representative.street_id
            points = s.execute(text("""
                SELECT ST_X(p), ST_Y(p) FROM (
                  SELECT ST_Transform(ST_LineInterpolatePoint(ST_GeometryN(geom_m, 1), 0.1 + 0.8 * random()), 4326) p
                  FROM streets, generate_series(1, :n) WHERE id = :street) q"""),
                {"n": 2 * args.runs * args.threads + 2, "street": street}).all()
        photo = camera_jpeg()
        print(f"photo: 4000×3000 JPEG, {len(photo) / 1e6:.1f} MB; published long edge {settings.photo_max_px} px; "
              f"{settings.photo_decode_slots} decode slots; {args.threads} client(s)")
        headers = {"Authorization": f"Bearer {key}"}
        next_point = iter(points)
        lock = threading.Lock()

        def post(with_photo: bool) -> float:
            with lock:
                lon, lat = next(next_point)
            data = {"client_id": str(uuid.uuid4()), "lat": str(lat), "lon": str(lon), "category": "0401",
                    "description": "bench"}
            if with_photo:
                data["photo"] = (io.BytesIO(photo + uuid.uuid4().bytes), "IMG_0001.JPG")  # its own original
            client = app.test_client()
            t0 = time.perf_counter()
            r = client.post("/api/v1/reports", data=data, headers=headers, content_type="multipart/form-data")
            elapsed = time.perf_counter() - t0
            if r.status_code != 201:
                raise SystemExit(f"POST failed: {r.status_code} {r.get_data(as_text=True)[:300]}")
            return elapsed

        post(True), post(False)  # warm-up: connections, the font, Pillow's plugins
        for label, with_photo in (("POST /api/v1/reports, one 12 MP photo", True),
                                  ("POST /api/v1/reports, no photo", False)):
            times: list[float] = []

            def client_runs():
                for _ in range(args.runs):
                    elapsed = post(with_photo)
                    with lock:
                        times.append(elapsed)
            threads = [threading.Thread(target=client_runs) for _ in range(args.threads)]
            t_all = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            total = time.perf_counter() - t_all
            print(line(label, times) + f"; {len(times) / total:.1f} requests/s")
        app.extensions["geoapp_db"].dispose()


if __name__ == "__main__":
    main()
