"""submit_report(): validate -> snap -> dispatch -> store, transactional and idempotent."""
import io
import os
import uuid

import pytest
from PIL import Image
from sqlalchemy import text

from geoapp.domain.coords import wgs84_to_gcj02
from geoapp import present
from geoapp.domain.errors import (BadPhoto, ClientIdConflict, ClientIdReused, NotARepresentative, OffStreet,
                                  PhotoTooLarge, UnknownCategory)
from geoapp.domain.intake import IntakeRules, Reporter, Submission, submit_report


def sub(client_id, lat, lon, crs, category, description, **extra) -> Submission:
    return Submission(client_id=client_id, lat=lat, lon=lon, crs=crs, category=category, description=description,
                      **extra)


@pytest.fixture
def rules(settings):
    return IntakeRules(city_bbox=settings.city_bbox, snap_tolerance_m=30, photo_dir=settings.photo_dir,
                       photo_max_bytes=2 * 1024 * 1024, photo_max_px=1024)


@pytest.fixture
def rep(db, users, streets):
    with db.transaction() as s:
        row = s.execute(text("""SELECT u.id, r.street_id FROM users u JOIN representatives r
                                ON r.id = u.representative_id WHERE u.username = 'rep01'""")).one()
    return Reporter(user_id=row.id, role="representative", street_id=row.street_id)


def count(db, table):
    with db.transaction() as s:
        return s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def submit(db, reporter, submission, rules):
    """submit_report in its own transaction; the report as the API shows it."""
    with db.transaction() as s:
        record, created = submit_report(s, reporter, submission, rules)
    return present.report(record), created


def own_street_code(db, rep):
    with db.transaction() as s:
        return s.execute(text("SELECT code FROM streets WHERE id = :i"), {"i": rep.street_id}).scalar_one()


def test_a_report_is_snapped_dispatched_and_stored_with_its_history(db, rep, rules, streets):
    code = own_street_code(db, rep)
    lon, lat = streets.point(code, 0.5, 12)
    report, created = submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "  垃圾堆积 "), rules)
    assert created
    assert report["street"]["code"] == code and report["on_own_street"] is True
    assert report["distance_m"] == pytest.approx(12, abs=0.1)
    assert report["status"] == "submitted" and report["description"] == "垃圾堆积"
    assert report["unit"]["code"] and report["dispatch_reason"]
    with db.transaction() as s:
        events = s.execute(text("SELECT action, to_status, data FROM report_events WHERE report_id = :i"),
                           {"i": report["id"]}).all()
    assert [(e.action, e.to_status) for e in events] == [("submit", "submitted")]
    assert events[0].data["street"] == code


def test_reporting_on_another_street_is_recorded(db, rep, rules, streets):
    other = "S11" if own_street_code(db, rep) != "S11" else "S12"
    report, _ = submit(db, rep, sub(uuid.uuid4(), *reversed(streets.point(other, 0.5)), "wgs84", "0401", "x"),
                       rules)
    assert report["street"]["code"] == other and report["on_own_street"] is False


def test_a_retry_of_the_same_submission_returns_the_first_report(db, rep, rules, streets):
    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    first, created1 = submit(db, rep, sub(cid, lat, lon, "wgs84", "0401", "first"), rules)
    # the same submission, as a retry sends it (client_id as text, padding the schema normalises)
    again, created2 = submit(db, rep, sub(str(cid), str(lat), lon, " WGS84", "0401", "first  "), rules)
    assert (created1, created2) == (True, False)
    assert again == first
    assert count(db, "reports") == 1 and count(db, "report_events") == 1


@pytest.mark.parametrize("change", [{"lat_shift": 0.001}, {"category": "0102"}, {"description": "retry"},
                                    {"photo": True}])
def test_a_different_report_under_a_used_client_id_is_refused(db, rep, rules, streets, change):
    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    first, _ = submit(db, rep, sub(cid, lat, lon, "wgs84", "0401", "first"), rules)
    fields = dict(client_id=cid, lat=lat + change.get("lat_shift", 0), lon=lon, crs="wgs84",
                  category=change.get("category", "0401"), description=change.get("description", "first"),
                  photos=[jpeg_with_gps()] if change.get("photo") else [])
    with pytest.raises(ClientIdReused) as refused:
        submit(db, rep, Submission(**fields), rules)
    assert refused.value.status == 409 and refused.value.params["report_id"] == first["id"]
    assert count(db, "reports") == 1


def test_another_user_cannot_reuse_a_client_id(db, rep, rules, streets):
    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    submit(db, rep, sub(cid, lat, lon, "wgs84", "0401", "first"), rules)
    with db.transaction() as s:
        other = s.execute(text("SELECT id FROM users WHERE username = 'rep02'")).scalar_one()
    with pytest.raises(ClientIdConflict):
        submit(db, Reporter(other, "representative", None), sub(cid, lat, lon, "wgs84", "0401", "x"), rules)


def test_a_gcj02_point_lands_on_the_right_street(db, rep, rules, streets):
    lon, lat = streets.point("S12", 0.5, 3)   # 人民街, a north–south street
    glon, glat = wgs84_to_gcj02(lon, lat)
    report, _ = submit(db, rep, sub(uuid.uuid4(), glat, glon, "gcj02", "0401", "x"), rules)
    assert report["street"]["code"] == "S12"
    assert report["distance_m"] == pytest.approx(3, abs=0.5)
    assert report["reported"] == {"lat": glat, "lon": glon, "crs": "gcj02"}
    # the premise: taken as WGS-84, the same numbers are ~500 m away and would not be on 人民街
    with pytest.raises(OffStreet):
        submit(db, rep, sub(uuid.uuid4(), glat, glon, "wgs84", "0401", "x"), rules)


@pytest.mark.parametrize("change, error", [
    ({"category": "9999"}, UnknownCategory),
    ({"category": "04"}, UnknownCategory),  # a category, not an item
])
def test_bad_input_stores_nothing(db, rep, rules, streets, change, error):
    lon, lat = streets.point("S03", 0.5)
    fields = dict(client_id=uuid.uuid4(), lat=lat, lon=lon, crs="wgs84", category="0401", description="x") | change
    with pytest.raises(error):
        submit(db, rep, Submission(**fields), rules)
    assert count(db, "reports") == 0 and count(db, "report_events") == 0


def test_unit_handlers_cannot_submit(db, rules, streets):
    with pytest.raises(NotARepresentative):
        submit(db, Reporter(1, "unit_handler", None),
               sub(uuid.uuid4(), *reversed(streets.point("S03", 0.5)), "wgs84", "0401", "x"), rules)


def jpeg_with_gps(size=(1600, 1200)) -> bytes:
    img = Image.new("RGB", size, (200, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"          # Make
    exif[0x0131] = "secret-firmware-1.2"  # Software
    exif[0x0112] = 6                      # Orientation: rotate 90° CW to display
    exif[0x8825] = {1: "N", 2: (41.0, 6.0, 57.6), 3: "E", 4: (121.0, 7.0, 12.0)}  # GPS IFD
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_a_photo_is_stored_upright_scaled_and_without_metadata(db, rep, rules, streets, settings):
    lon, lat = streets.point("S03", 0.5)
    report, _ = submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[jpeg_with_gps()]),
                       rules)
    assert report["has_photo"]
    files = list((settings.photo_dir / "published").rglob("*.jpg"))
    assert len(files) == 1
    with Image.open(files[0]) as stored:
        assert stored.format == "JPEG"
        assert stored.size == (768, 1024)  # rotated by its orientation tag, longest side 1024
        assert len(stored.getexif()) == 0
        assert "exif" not in stored.info
    assert b"secret-firmware" not in files[0].read_bytes()


def test_a_file_that_is_not_an_image_is_refused_and_nothing_stored(db, rep, rules, streets, settings):
    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(BadPhoto):
        submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x",
                                   photos=[b"GIF89a but really a script <script>"]), rules)
    assert count(db, "reports") == 0
    assert not list(settings.photo_dir.rglob("*")) if settings.photo_dir.exists() else True


def test_an_oversized_photo_is_refused(db, rep, rules, streets):
    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(PhotoTooLarge):
        submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[b"\xff" * (3 * 1024 * 1024)]),
               rules)


def test_a_failed_transaction_leaves_the_photo_for_the_sweep_not_for_a_guess(db, rep, rules, streets, settings):
    from geoapp.domain.intake import sweep_orphan_photos

    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(RuntimeError):
        with db.transaction() as s:
            submit_report(s, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[jpeg_with_gps()]),
                          rules)
            raise RuntimeError("the commit never happens")
    assert count(db, "reports") == 0
    # kept, the original and the published copy: a failure is never taken at its word
    orphans = sorted(settings.photo_dir.rglob("*.jpg"))
    assert len(orphans) == 2
    with db.transaction() as s:
        assert sweep_orphan_photos(s, settings.photo_dir, older_than_s=3600) == []  # too young to judge
    for orphan in orphans:
        os.utime(orphan, (orphan.stat().st_atime, orphan.stat().st_mtime - 7200))
    with db.transaction() as s:
        assert sweep_orphan_photos(s, settings.photo_dir, older_than_s=3600, dry_run=True) == orphans
        assert all(orphan.exists() for orphan in orphans)
        assert sweep_orphan_photos(s, settings.photo_dir, older_than_s=3600) == orphans
    assert not any(orphan.exists() for orphan in orphans)


def test_the_sweep_never_takes_a_photo_that_a_report_names(db, rep, rules, streets, settings):
    from geoapp.domain.intake import sweep_orphan_photos

    lon, lat = streets.point("S03", 0.5)
    submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[jpeg_with_gps()]), rules)
    kept = list(settings.photo_dir.rglob("*.jpg"))
    assert len(kept) == 2  # the original and the published copy
    for path in kept:
        os.utime(path, (0, 0))  # ancient
    with db.transaction() as s:
        assert sweep_orphan_photos(s, settings.photo_dir, older_than_s=60) == []
    assert all(path.exists() for path in kept)


def test_a_commit_whose_acknowledgement_is_lost_keeps_the_row_and_its_photo(db, rep, rules, streets, settings):
    """The COMMIT reaches PostgreSQL, then the connection dies before the answer arrives: the
    caller sees an error, the row is stored — and its photo must be there too."""
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    def lost_ack(_session):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    lon, lat = streets.point("S03", 0.5)
    submission = sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[jpeg_with_gps()])
    event.listen(Session, "after_commit", lost_ack)
    try:
        with pytest.raises(OperationalError):
            submit(db, rep, submission, rules)
    finally:
        event.remove(Session, "after_commit", lost_ack)
    assert count(db, "reports") == 1
    again, created = submit(db, rep, submission, rules)  # the phone's retry
    assert not created and again["has_photo"]
    with db.transaction() as s:
        paths = s.execute(text("SELECT original_path, published_path FROM photos")).one()
    assert all((settings.photo_dir / path).is_file() for path in paths)


@pytest.mark.parametrize("break_store", ["not_a_directory", "disk_full"])
def test_an_unwritable_photo_store_is_a_503_and_stores_nothing(db, rep, rules, streets, tmp_path, monkeypatch,
                                                              break_store):
    import dataclasses
    import errno

    from geoapp.domain import report_photos
    from geoapp.domain.errors import PhotoStoreUnavailable

    if break_store == "not_a_directory":
        (tmp_path / "store").write_text("a file where the photo directory should be")
        rules = dataclasses.replace(rules, photo_dir=tmp_path / "store")
    else:
        def full(*_args):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(report_photos.os, "replace", full)
    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(PhotoStoreUnavailable) as refused:
        submit(db, rep, sub(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photos=[jpeg_with_gps()]), rules)
    assert refused.value.status == 503 and refused.value.params["retry_after"] > 0
    assert count(db, "reports") == 0 and count(db, "report_events") == 0
    assert not list(tmp_path.rglob("*.part"))


def test_concurrent_retries_store_one_report(db, rep, rules, streets):
    import threading

    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    created, errors = [], []
    start = threading.Barrier(4)

    def phone_retry():
        try:
            start.wait()
            with db.transaction() as s:
                created.append(submit_report(s, rep, sub(cid, lat, lon, "wgs84", "0401", "x"), rules)[1])
        except Exception as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=phone_retry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(created) == [False, False, False, True]
    assert count(db, "reports") == 1 and count(db, "report_events") == 1
