"""The bimonthly album for a full period: N flagged problems with photos (default 100), issued
through the real app. Figures, printed, never asserted; the issue says "minutes at most".

    bench/run album [--problems 100] [--handled 0.4] [--photo-px 3000]

Set-up (not timed): N reports posted through POST /api/v1/reports, each with one camera-like JPEG
(noise and structure, so it compresses like a photo; 3000×2250 by default) through the real photo
pipeline (decode, upright, resize to PHOTO_MAX_PX = 1600 px, watermark, store), spread over the 29
streets and the three classes; a share of them dispatched and handled by their unit with an
after photo (the same pipeline); every one accepted and flagged for the album through the
lifecycle API. Then timed: POST /api/v1/albums (select, number, snapshot, small maps, HTML,
WeasyPrint PDF, store), its phases on their own (the draft's SQL, the HTML, the PDF), and
downloading the stored PDF. Printed: the times, the PDF's size, pages and images.
Run by bench/run in its own database (GEOAPP_BENCH_DB_NAME, default geoapp_bench), which it empties.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import io
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_db import fresh_city  # noqa: E402
from photo_memory import camera_like  # noqa: E402

from geoapp import create_app  # noqa: E402
from geoapp.config import Settings  # noqa: E402
from geoapp.demo import DEMO_PASSWORD  # noqa: E402

ITEMS = ("0102", "0103", "0201", "0301", "0401", "0403", "0501", "0601", "0602", "0701")


def jpeg(px: int, rng: random.Random) -> bytes:
    img = camera_like((px, px * 3 // 4))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue() + rng.randbytes(16)  # each upload its own original


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--handled", type=float, default=0.4, help="share handled with an after photo")
    ap.add_argument("--photo-px", type=int, default=3000, help="long edge of the uploaded photos")
    args = ap.parse_args()
    rng = random.Random(7)

    base = Settings()
    if "bench" not in (make_url(base.database_url).database or ""):
        sys.exit(f"refusing to empty {make_url(base.database_url).database!r}: run me with bench/run album")
    photo_dir = Path(tempfile.mkdtemp(prefix="geoapp-bench-album-"))
    try:
        settings = dataclasses.replace(base, photo_dir=photo_dir)
        app = create_app(settings)
        db = app.extensions["geoapp_db"]
        with fresh_city(app) as (s, users, _key):
            s.execute(text("DELETE FROM album_entries; DELETE FROM albums"))
            points = s.execute(text("""
                SELECT r.code, ST_X(p), ST_Y(p) FROM (
                  SELECT st.code, ST_Transform(ST_LineInterpolatePoint(ST_GeometryN(st.geom_m, 1), 0.05 + 0.9 * random()), 4326) p
                  FROM streets st, generate_series(1, :n)) q JOIN streets r ON r.code = q.code
                ORDER BY random() LIMIT :n"""), {"n": args.problems}).all()
            reps = {u.representative.street.code: name for name, u in users.items() if u.representative is not None}
            handlers = {}
            for name, u in users.items():
                if u.role == "unit_handler":
                    handlers.setdefault(u.unit.code, name)
        from geoapp.domain.accounts import issue_api_key
        with db.transaction() as s:
            keys = {name: issue_api_key(s, name) for name in set(reps.values()) | set(handlers.values()) | {"dispatcher"}}
        client = app.test_client()

        def call(who, method, path, **kw):
            r = getattr(client, method)(path, headers={"Authorization": f"Bearer {keys[who]}"}, **kw)
            if r.status_code not in (200, 201):
                raise SystemExit(f"{method.upper()} {path} as {who}: {r.status_code} {r.get_data(as_text=True)[:300]}")
            return r.get_json()

        def act(who, rid, action, photo=None, **fields):
            version = call(who, "get", f"/api/v1/reports/{rid}")["version"]
            if photo is not None:
                return call(who, "post", f"/api/v1/reports/{rid}/actions", content_type="multipart/form-data",
                            data={"action": action, "version": str(version), **fields,
                                  "photo": (io.BytesIO(photo), "after.jpg")})
            return call(who, "post", f"/api/v1/reports/{rid}/actions", json={"action": action, "version": version, **fields})

        t0 = time.perf_counter()
        sample = jpeg(args.photo_px, rng)
        ids = []
        for i, (code, lon, lat) in enumerate(points):
            body = {"client_id": str(uuid.uuid4()), "lat": str(lat), "lon": str(lon), "crs": "wgs84",
                    "category": ITEMS[i % len(ITEMS)],
                    "description": f"第 {i + 1} 个问题：{code} 路段发现问题，影响市民出行，请尽快处理。"}
            rec = call(reps[code], "post", "/api/v1/reports", content_type="multipart/form-data",
                       data={**body, "photo": (io.BytesIO(sample + rng.randbytes(16)), "IMG.JPG")})
            ids.append(rec["id"])
            act("dispatcher", rec["id"], "accept")
            act("dispatcher", rec["id"], "album", flag=True)
            if rng.random() < args.handled:
                rec = act("dispatcher", rec["id"], "dispatch", unit=rec["unit"]["code"])
                handler = handlers[rec["unit"]["code"]]
                act(handler, rec["id"], "unit_accept")
                act(handler, rec["id"], "handled", photo=jpeg(args.photo_px, rng), text="已处置完毕")
        setup_s = time.perf_counter() - t0
        with db.sessionmaker() as s:
            n_photos, published = s.execute(text("SELECT count(*), avg(width) FROM photos")).one()
        print(f"set-up: {len(ids)} flagged problems, {n_photos} published photos (long edge {published:.0f} px) "
              f"through the photo pipeline in {setup_s:.0f} s (not timed below)")

        tz = ZoneInfo(settings.display_tz)
        first = dt.datetime.now(tz).date().replace(day=1)
        start = (first - dt.timedelta(days=1)).replace(day=1)
        from geoapp.domain.album import Period
        period = Period.starting(start)

        # the phases on their own, inside the app (nothing stored)
        from geoapp.domain import album as albums
        from geoapp.web import albums as web_albums
        with app.test_request_context():
            with db.sessionmaker() as s:
                t = time.perf_counter()
                draft = albums.draft(s, period, settings.display_tz, 1, dt.datetime.now(dt.timezone.utc))
                t_draft = time.perf_counter() - t
            from flask import render_template
            from geoapp.domain.album_pdf import photo_url, write_pdf
            t = time.perf_counter()
            html = render_template("albums/print.html", lang="zh", album=web_albums.album_view(
                draft, "zh", settings.display_tz, lambda p: photo_url(p["path"])))
            t_html = time.perf_counter() - t
            t = time.perf_counter()
            pdf, refused = write_pdf(html, Path(app.static_folder) / web_albums.PRINT_CSS, photo_dir)
            t_pdf = time.perf_counter() - t
        print(f"phases: draft (selection, records, photos, 300 m maps: SQL) {t_draft * 1000:.0f} ms; "
              f"HTML {t_html * 1000:.0f} ms ({len(html) / 1e6:.1f} MB); PDF (WeasyPrint) {t_pdf:.1f} s; "
              f"URLs refused {len(refused)}")

        t = time.perf_counter()
        listed = call("dispatcher", "post", "/api/v1/albums", json={"from": period.start.isoformat(),
                                                                     "to": period.end.isoformat()})
        t_issue = time.perf_counter() - t
        pages = listed["pdf"]["pages"]
        print(f"POST /api/v1/albums (issue 第{listed['number']}期, {listed['counts']['total']} problems, "
              f"{listed['counts']['handled']} handled): {t_issue:.1f} s; PDF {listed['pdf']['bytes'] / 1e6:.1f} MB, "
              f"{pages} pages")

        reader = app.test_client()
        page = reader.get("/login")
        import re
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True)) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf_token"', page.get_data(as_text=True))
        reader.post("/login", data={"csrf_token": token.group(1), "username": "leader", "password": DEMO_PASSWORD})
        t = time.perf_counter()
        got = reader.get(listed["pdf"]["url"])
        t_get = time.perf_counter() - t
        t = time.perf_counter()
        html_page = reader.get(listed["html"])
        t_page = time.perf_counter() - t
        print(f"GET {listed['pdf']['url']} (stored, SHA-256 checked): {t_get * 1000:.0f} ms, status {got.status_code}; "
              f"GET {listed['html']}: {t_page * 1000:.0f} ms ({len(html_page.data) / 1e6:.1f} MB)")
        if shutil.which("pdfimages"):
            path = photo_dir / "bench.pdf"
            path.write_bytes(got.data)
            images = len(subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True)
                         .stdout.splitlines()[2:])
            print(f"pdfimages: {images} images in the PDF ({n_photos} photos stored)")
        db.dispose()
    finally:
        shutil.rmtree(photo_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
