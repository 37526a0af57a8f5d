"""The photo pipeline of a report, through the real API and a real PostGIS: up to 3 photos, each
kept byte for byte as the original (admins only) and published as a watermarked, metadata-free JPEG
that the visibility rule guards; files first, rows second, and a sweep for what no row names."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import unittest.mock
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from sqlalchemy import text

from geoapp.domain import photos as photo_domain
from geoapp.domain.photos import Watermark, read_photo
from geoapp.domain.report_photos import sweep_orphan_photos
from tests.conftest import report_body
from tests.test_photos import COM, jpeg_segments

CITY = ZoneInfo("Asia/Shanghai")
UPLOAD_COLOR = (230, 210, 190)  # light: the watermark's dark band must stand out from it
PHONE_NUMBER = b"13812345678"


def camera_jpeg(size=(1600, 1200), *, orientation: int = 6, taken: dt.datetime | None = None,
                offset: str | None = None, color=UPLOAD_COLOR) -> bytes:
    """A phone camera's JPEG: EXIF with GPS, orientation and DateTimeOriginal, and a COM segment."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"                                                  # Make
    exif[0x0112] = orientation                                                   # Orientation
    exif[0x8825] = {1: "N", 2: (41.0, 6.0, 57.6), 3: "E", 4: (121.0, 7.0, 12.0)}  # GPS IFD
    if taken is not None:
        ifd = exif.get_ifd(0x8769)                                               # Exif IFD
        ifd[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")                        # DateTimeOriginal
        if offset is not None:
            ifd[0x9011] = offset                                                 # OffsetTimeOriginal
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", exif=exif, comment=b"Owner " + PHONE_NUMBER, quality=90)
    return out.getvalue()


def local_now() -> dt.datetime:
    return dt.datetime.now(CITY).replace(microsecond=0)


def post(client, headers, lon, lat, uploads, **extra):
    data = {k: str(v) for k, v in report_body(lon, lat, **extra).items()}
    data["photo"] = [(io.BytesIO(body), name) for body, name in uploads]
    return client.post("/api/v1/reports", data=data, headers=headers, content_type="multipart/form-data")


def photo_rows(db, report_id=None):
    with db.transaction() as s:
        return s.execute(text("SELECT * FROM photos WHERE :r IS NULL OR report_id = :r ORDER BY report_id, seq"),
                         {"r": report_id}).all()


def count(db, table):
    with db.transaction() as s:
        return s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def app_markers(data: bytes) -> list[int]:
    """APPn (0xE0–0xEF) and COM segments of a JPEG: where metadata lives."""
    segments, end = jpeg_segments(data)
    assert end == len(data)
    return [m for m, _ in segments if 0xE0 <= m <= 0xEF or m == COM]


@pytest.fixture
def watermarks(monkeypatch):
    """The lines burnt into each published copy, in order."""
    seen = []
    real = photo_domain.burn_watermark

    def spy(image, lines):
        seen.append(lines)
        return real(image, lines)
    monkeypatch.setattr(photo_domain, "burn_watermark", spy)
    return seen


# --- one photo, end to end ------------------------------------------------------------------------

def test_the_original_is_kept_byte_for_byte_and_the_published_copy_is_upright_watermarked_and_clean(
        client, auth, streets, settings, db, watermarks):
    taken = local_now() - dt.timedelta(hours=1)
    upload = camera_jpeg(taken=taken)
    lon, lat = streets.point("S03", 0.5, 5)
    r = post(client, auth("rep03"), lon, lat, [(upload, "IMG_0001.JPG")])
    assert r.status_code == 201, r.json
    [shown] = r.json["photos"]
    assert shown["taken_at_source"] == "exif"
    assert dt.datetime.fromisoformat(shown["taken_at"]) == taken

    [row] = photo_rows(db, r.json["id"])
    assert (row.kind, row.seq) == ("before", 0)
    # the original: the upload itself, byte for byte, under its SHA-256, outside the published tree
    original = (settings.photo_dir / row.original_path).read_bytes()
    assert original == upload
    assert row.sha256 == hashlib.sha256(upload).hexdigest() and row.size_bytes == len(upload)
    assert row.original_path.startswith("original/") and row.sha256 in row.original_path

    published = (settings.photo_dir / row.published_path).read_bytes()
    assert row.published_path.startswith("published/")
    assert app_markers(published) == []  # no EXIF (APP1), no JFIF, no ICC, no XMP, no comment
    assert PHONE_NUMBER not in published and b"PhoneMaker" not in published
    with Image.open(io.BytesIO(published)) as image:
        assert image.format == "JPEG"
        assert image.size == (1200, 1600) == (row.width, row.height)  # orientation 6 applied
        pixels = image.convert("RGB")
    # above the band: the photo; in the band (away from the text's left margin): much darker
    above = pixels.getpixel((1100, 100))
    band = pixels.getpixel((1190, 1595))
    assert all(abs(a - b) <= 6 for a, b in zip(above, UPLOAD_COLOR))
    assert all(b < u * 0.5 for b, u in zip(band, UPLOAD_COLOR))
    # and white text in it, on three lines
    text_rows = [y for y in range(1400, 1600) if max(pixels.getpixel((x, y))[0] for x in range(30, 400)) > 240]
    assert text_rows

    with db.transaction() as s:
        reporter = s.execute(text("SELECT display_name FROM users WHERE username = 'rep03'")).scalar_one()
        street = s.execute(text("SELECT name FROM streets WHERE code = 'S03'")).scalar_one()
    assert watermarks == [[
        f"拍摄 {taken:%Y-%m-%d %H:%M}",
        f"{street}  N {lat:.5f}° E {lon:.5f}°",
        f"{reporter}  编号 {r.json['id']}",
    ]]


@pytest.mark.parametrize("case", ["no_time", "a_year_and_more_ago", "tomorrow"])
def test_without_a_plausible_time_the_photo_says_when_it_was_received(client, auth, streets, db, watermarks,
                                                                      case):
    taken = {"no_time": None, "a_year_and_more_ago": local_now() - dt.timedelta(days=400),
             "tomorrow": local_now() + dt.timedelta(days=1)}[case]
    before = local_now()
    r = post(client, auth("rep03"), *streets.point("S03", 0.4), [(camera_jpeg(taken=taken), "a.jpg")])
    assert r.status_code == 201, r.json
    [shown] = r.json["photos"]
    assert shown["taken_at_source"] == "received"
    received = dt.datetime.fromisoformat(shown["taken_at"])
    assert before - dt.timedelta(seconds=1) <= received <= local_now() + dt.timedelta(seconds=1)
    assert watermarks[0][0] == f"接收 {received.astimezone(CITY):%Y-%m-%d %H:%M}（照片无拍摄时间）"


def test_an_exif_offset_is_honoured_and_a_time_without_one_is_the_citys():
    taken = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(days=2)
    paris = taken.astimezone(dt.timezone(dt.timedelta(hours=1)))
    with_offset = read_photo(camera_jpeg(taken=paris, offset="+01:00"), max_bytes=10 << 20, max_px=800,
                             tz="Asia/Shanghai")
    assert with_offset.exif_taken_at == taken
    city = taken.astimezone(CITY)
    without = read_photo(camera_jpeg(taken=city), max_bytes=10 << 20, max_px=800, tz="Asia/Shanghai")
    assert without.exif_taken_at == taken
    assert photo_domain.taken_at(without, taken + dt.timedelta(minutes=9)) == (taken, "exif")
    assert photo_domain.taken_at(without, taken - dt.timedelta(minutes=11))[1] == "received"


def test_the_watermark_lines_are_chinese_in_the_citys_time():
    mark = Watermark(at=dt.datetime(2026, 11, 25, 6, 3, tzinfo=dt.timezone.utc), at_source="exif",
                     street_name="中央大街", lon=121.130012, lat=41.116014, reporter_name="王代表",
                     report_id=1234, tz="Asia/Shanghai")
    assert mark.lines() == ["拍摄 2026-11-25 14:03", "中央大街  N 41.11601° E 121.13001°", "王代表  编号 1234"]
    received = Watermark(**{**vars(mark), "at_source": "received"})
    assert received.lines()[0] == "接收 2026-11-25 14:03（照片无拍摄时间）"


def test_a_long_line_is_shrunk_to_fit_never_cut():
    image = Image.new("RGB", (300, 400), UPLOAD_COLOR)
    photo_domain.burn_watermark(image, ["拍摄 2026-11-25 14:03", "很长很长的街路名称" * 3 + "  N 41.11601°", "代表"])
    # the text stays inside the image: the right edge of the band has no white (the text's colour)
    assert max(min(image.getpixel((x, y))) for x in range(290, 300) for y in range(400)) < 250
    assert max(min(image.getpixel((x, y))) for x in range(0, 150) for y in range(300, 400)) >= 250


# --- several photos, too many, not a photo ----------------------------------------------------------

def test_three_photos_are_kept_in_order_and_a_fourth_is_refused(client, auth, streets, db, settings):
    uploads = [(camera_jpeg(size=(800 + 10 * i, 600), orientation=1), f"p{i}.jpg") for i in range(4)]
    lon, lat = streets.point("S03", 0.3)
    r = post(client, auth("rep03"), lon, lat, uploads[:3])
    assert r.status_code == 201, r.json
    assert [p["kind"] for p in r.json["photos"]] == ["before"] * 3
    rows = photo_rows(db, r.json["id"])
    assert [row.seq for row in rows] == [0, 1, 2]
    assert [row.sha256 for row in rows] == [hashlib.sha256(body).hexdigest() for body, _ in uploads[:3]]
    assert [row.width for row in rows] == [800, 810, 820]

    files_before = sorted(settings.photo_dir.rglob("*"))
    r = post(client, auth("rep03"), lon, lat, uploads)
    assert r.status_code == 400 and r.json["error"] == "too_many_photos"
    assert "最多 3 张照片" in r.json["message"]
    r_en = client.post("/api/v1/reports?lang=en", headers=auth("rep03"), content_type="multipart/form-data",
                       data={**{k: str(v) for k, v in report_body(lon, lat).items()},
                             "photo": [(io.BytesIO(b), n) for b, n in uploads]})
    assert r_en.status_code == 400 and r_en.json["error"] == "too_many_photos"
    assert count(db, "reports") == 1 and sorted(settings.photo_dir.rglob("*")) == files_before


def test_the_same_photos_in_another_order_are_another_submission(client, auth, streets):
    a, b = camera_jpeg(size=(500, 400)), camera_jpeg(size=(400, 500))
    body = report_body(*streets.point("S03", 0.6))
    fields = {k: str(v) for k, v in body.items()}

    def send(order):
        return client.post("/api/v1/reports", headers=auth("rep03"), content_type="multipart/form-data",
                           data={**fields, "photo": [(io.BytesIO(x), "x.jpg") for x in order]})
    first = send([a, b])
    assert first.status_code == 201
    again = send([a, b])
    assert again.status_code == 200 and again.json["id"] == first.json["id"]  # a retry
    assert send([b, a]).status_code == 409  # not a retry: the client_id was reused


def test_empty_parts_are_ignored_and_no_photo_is_still_a_report(client, auth, streets, db):
    lon, lat = streets.point("S03", 0.7)
    r = post(client, auth("rep03"), lon, lat, [(b"", ""), (camera_jpeg(size=(400, 300)), "a.jpg"), (b"", "")])
    assert r.status_code == 201 and len(r.json["photos"]) == 1
    r = client.post("/api/v1/reports", headers=auth("rep03"), json=report_body(lon, lat))
    assert r.status_code == 201 and r.json["photos"] == [] and r.json["has_photo"] is False


def test_garbage_behind_a_png_signature_named_jpg_is_a_clear_400_and_nothing_is_stored(
        client, auth, streets, db, settings):
    garbage = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    lon, lat = streets.point("S03", 0.5)
    r = post(client, auth("rep03"), lon, lat, [(camera_jpeg(size=(400, 300)), "ok.jpg"), (garbage, "IMG_2.jpg")])
    assert r.status_code == 400 and r.json["error"] == "bad_photo"
    assert "图片" in r.json["message"]
    r = client.post("/api/v1/reports?lang=en", headers=auth("rep03"), content_type="multipart/form-data",
                    data={**{k: str(v) for k, v in report_body(lon, lat).items()},
                          "photo": [(io.BytesIO(garbage), "IMG_2.jpg")]})
    assert r.status_code == 400 and "image" in r.json["message"]
    assert count(db, "reports") == 0
    assert not settings.photo_dir.exists() or not [p for p in settings.photo_dir.rglob("*") if p.is_file()]


def test_a_real_png_named_jpg_is_taken_by_its_content(client, auth, streets, db, users):
    out = io.BytesIO()
    Image.new("RGB", (640, 480), UPLOAD_COLOR).save(out, "PNG")
    png = out.getvalue()
    r = post(client, auth("rep03"), *streets.point("S03", 0.5), [(png, "photo.jpg")])
    assert r.status_code == 201, r.json
    [row] = photo_rows(db, r.json["id"])
    assert row.original_path.endswith(".png") and row.published_path.endswith(".jpg")
    assert r.json["photos"][0]["taken_at_source"] == "received"
    original = client.get(f"/api/v1/photos/{row.id}/original", headers=auth("admin"))
    assert original.status_code == 200 and original.mimetype == "image/png" and original.data == png


# --- who sees which photo -------------------------------------------------------------------------

def test_the_routes_follow_the_visibility_rule(client, auth, streets, db, settings):
    upload = camera_jpeg(size=(600, 400), taken=local_now())
    mine = post(client, auth("rep03"), *streets.point("S03", 0.5), [(upload, "a.jpg")])
    on_my_street = post(client, auth("rep07"), *streets.point("S03", 0.2), [(camera_jpeg(size=(500, 400)), "b.jpg")])
    elsewhere = post(client, auth("rep07"), *streets.point("S07", 0.5), [(camera_jpeg(size=(400, 400)), "c.jpg")])
    assert {mine.status_code, on_my_street.status_code, elsewhere.status_code} == {201}
    mine_id, summary_id, other_id = (r.json["photos"][0]["id"] for r in (mine, on_my_street, elsewhere))

    own = client.get(f"/api/v1/photos/{mine_id}", headers=auth("rep03"))
    assert own.status_code == 200 and own.mimetype == "image/jpeg"
    [row] = photo_rows(db, mine.json["id"])
    assert own.data == (settings.photo_dir / row.published_path).read_bytes()
    assert "private" in own.headers["Cache-Control"] and own.headers["ETag"]
    assert client.get(f"/api/v1/photos/{mine_id}", headers={**auth("rep03"), "If-None-Match": own.headers["ETag"]}
                      ).status_code == 304
    # a summary report on my street: its published photo too (domain/visibility.py)
    assert client.get(f"/api/v1/photos/{summary_id}", headers=auth("rep03")).status_code == 200
    # another street's: as if it did not exist
    hidden = client.get(f"/api/v1/photos/{other_id}", headers=auth("rep03"))
    assert hidden.status_code == 404 and hidden.json["error"]
    assert client.get("/api/v1/photos/999999", headers=auth("rep03")).status_code == 404
    assert client.get(f"/api/v1/photos/{other_id}", headers=auth("dispatcher")).status_code == 200
    assert client.get(f"/api/v1/photos/{mine_id}").status_code == 401

    # the original: admins only, even for the one who took it
    for who in ("rep03", "rep07", "dispatcher"):
        refused = client.get(f"/api/v1/photos/{mine_id}/original", headers=auth(who))
        assert refused.status_code == 404 and refused.json["error"], who
    original = client.get(f"/api/v1/photos/{mine_id}/original", headers=auth("admin"))
    assert original.status_code == 200 and original.mimetype == "image/jpeg" and original.data == upload
    assert original.headers["ETag"].strip('"') == hashlib.sha256(upload).hexdigest()
    assert "private" in original.headers["Cache-Control"]


def test_a_signed_in_page_reaches_the_photo_with_its_session_cookie(client, auth, streets, signin):
    r = post(client, auth("rep03"), *streets.point("S03", 0.5), [(camera_jpeg(size=(400, 300)), "a.jpg")])
    photo_id = r.json["photos"][0]["id"]
    signin.login("rep03")
    assert client.get(f"/api/v1/photos/{photo_id}").status_code == 200
    assert client.get(f"/api/v1/photos/{photo_id}/original").status_code == 404


# --- files first, rows second, the sweep ----------------------------------------------------------

def age(paths, seconds=7200):
    for path in paths:
        st = path.stat()
        os.utime(path, (st.st_atime, st.st_mtime - seconds))


def test_an_ambiguous_commit_keeps_every_file_and_the_sweep_takes_only_orphans(client, auth, streets, db,
                                                                              settings, app):
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    lon, lat = streets.point("S03", 0.5)
    body = {k: str(v) for k, v in report_body(lon, lat).items()}
    uploads = [camera_jpeg(size=(500, 400), orientation=1), camera_jpeg(size=(400, 500), orientation=1)]

    def send():
        return client.post("/api/v1/reports", headers=auth("rep03"), content_type="multipart/form-data",
                           data={**body, "photo": [(io.BytesIO(u), f"{i}.jpg") for i, u in enumerate(uploads)]})

    def lost_ack(_session):  # the COMMIT reached PostgreSQL; its answer did not reach us
        from sqlalchemy.exc import OperationalError
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(Session, "after_commit", lost_ack)
    try:
        failed = send()
    finally:
        event.remove(Session, "after_commit", lost_ack)
    assert failed.status_code == 503
    rows = photo_rows(db)
    assert len(rows) == 2
    named = {p for row in rows for p in (row.original_path, row.published_path)}
    assert all((settings.photo_dir / p).is_file() for p in named)
    retry = send()
    assert retry.status_code == 200 and len(retry.json["photos"]) == 2

    # a submission whose transaction really failed leaves its files: orphans, for the sweep only
    from geoapp.domain import report_photos
    real_publish = report_photos.publish_photos  # intake publishes (writes) the copies, then inserts

    def then_fail(*args, **kwargs):
        real_publish(*args, **kwargs)
        raise RuntimeError("the process dies before the commit")
    with unittest.mock.patch("geoapp.domain.intake.publish_photos", then_fail), pytest.raises(RuntimeError):
        with db.transaction() as s:
            from geoapp.domain.intake import IntakeRules, Reporter, Submission, submit_report
            rep03 = s.execute(text("SELECT id FROM users WHERE username = 'rep03'")).scalar_one()
            submit_report(s, Reporter(rep03, "representative", streets.street_id("S03")),
                          Submission(**report_body(lon, lat), photos=[camera_jpeg(size=(300, 200))]),
                          IntakeRules.from_settings(settings))
    every = {p for p in settings.photo_dir.rglob("*") if p.is_file()}
    orphans = every - {settings.photo_dir / p for p in named}
    assert len(orphans) == 2  # its original and its published copy, kept: a failure is never taken at its word
    with db.transaction() as s:
        assert sweep_orphan_photos(s, settings.photo_dir) == []  # all too young to judge
    age(every)
    runner = app.test_cli_runner()
    with app.app_context():  # as the `geoapp` command (FlaskGroup) runs its commands
        dry = runner.invoke(args=["photos", "sweep", "--dry-run"])
    assert dry.exit_code == 0 and "2 orphan photo file(s) found" in dry.output, dry.output
    assert all(p.exists() for p in every)
    with app.app_context():
        swept = runner.invoke(args=["photos", "sweep"])
    assert swept.exit_code == 0 and "2 orphan photo file(s) removed" in swept.output
    assert {p for p in settings.photo_dir.rglob("*") if p.is_file()} == every - orphans
    assert all((settings.photo_dir / p).is_file() for p in named)


# --- the migration that made photos a table ---------------------------------------------------------

def test_migration_0005_moves_a_reports_photo_path_into_the_photos_table_and_back(client, auth, streets, db,
                                                                                  database_url, owner_database_url):
    from alembic import command

    from geoapp.cli import alembic_config
    from geoapp.db_roles import app_role_for

    r = post(client, auth("rep03"), *streets.point("S03", 0.5), [(camera_jpeg(size=(400, 300)), "a.jpg")])
    [before] = photo_rows(db, r.json["id"])
    db.engine.dispose()
    config = alembic_config(owner_database_url, app_role_for(owner_database_url, database_url))
    try:
        command.downgrade(config, "0004")
        with db.transaction() as s:
            assert s.execute(text("SELECT photo_path FROM reports WHERE id = :i"),
                             {"i": r.json["id"]}).scalar_one() == before.published_path
            assert s.execute(text("SELECT to_regclass('photos')")).scalar_one() is None
    finally:
        db.engine.dispose()
        command.upgrade(config, "head")
    [after] = photo_rows(db, r.json["id"])
    assert (after.kind, after.seq, after.original_path, after.published_path) == (
        "before", 0, None, before.published_path)
    with db.transaction() as s:
        assert s.execute(text("SELECT count(*) FROM information_schema.columns "
                              "WHERE table_name = 'reports' AND column_name = 'photo_path'")).scalar_one() == 0


# --- the watermark's font -----------------------------------------------------------------------------

def test_the_font_is_found_and_without_it_a_report_with_photos_is_a_503_that_stores_nothing(
        client, auth, streets, db, settings, monkeypatch):
    ok, detail = photo_domain.watermark_font_check()
    assert ok and "NotoSansCJK" in detail

    def missing():
        raise photo_domain.WatermarkFontMissing("no font")
    monkeypatch.setattr(photo_domain, "watermark_font_file", missing)
    lon, lat = streets.point("S03", 0.5)
    r = post(client, auth("rep03"), lon, lat, [(camera_jpeg(size=(400, 300)), "a.jpg")])
    assert r.status_code == 503 and "fonts-noto-cjk" in r.json["message"]
    assert count(db, "reports") == 0 and not settings.photo_dir.exists()
    # a report without photos needs no font
    assert client.post("/api/v1/reports", headers=auth("rep03"), json=report_body(lon, lat)).status_code == 201
