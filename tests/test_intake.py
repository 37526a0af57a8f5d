"""submit_report(): validate -> snap -> dispatch -> store, transactional and idempotent."""
import io
import uuid

import pytest
from PIL import Image
from sqlalchemy import text

from geoapp.domain.coords import wgs84_to_gcj02
from geoapp.domain.errors import (BadPhoto, ClientIdConflict, NotARepresentative, OffStreet, PhotoTooLarge,
                                  UnknownCategory)
from geoapp.domain.intake import IntakeRules, Reporter, Submission, submit_report


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


def submit(db, reporter, sub, rules):
    with db.transaction() as s:
        return submit_report(s, reporter, sub, rules)


def own_street_code(db, rep):
    with db.transaction() as s:
        return s.execute(text("SELECT code FROM streets WHERE id = :i"), {"i": rep.street_id}).scalar_one()


def test_a_report_is_snapped_dispatched_and_stored_with_its_history(db, rep, rules, streets):
    code = own_street_code(db, rep)
    lon, lat = streets.point(code, 0.5, 12)
    report, created = submit(db, rep, Submission(uuid.uuid4(), lat, lon, "wgs84", "0401", "  垃圾堆积 "), rules)
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
    report, _ = submit(db, rep, Submission(uuid.uuid4(), *reversed(streets.point(other, 0.5)), "wgs84", "0401", "x"),
                       rules)
    assert report["street"]["code"] == other and report["on_own_street"] is False


def test_the_same_client_id_twice_returns_the_first_report(db, rep, rules, streets):
    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    first, created1 = submit(db, rep, Submission(cid, lat, lon, "wgs84", "0401", "first"), rules)
    again, created2 = submit(db, rep, Submission(str(cid), lat + 0.001, lon, "wgs84", "0102", "retry"), rules)
    assert (created1, created2) == (True, False)
    assert again == first
    assert count(db, "reports") == 1 and count(db, "report_events") == 1


def test_another_user_cannot_reuse_a_client_id(db, rep, rules, streets):
    cid = uuid.uuid4()
    lon, lat = streets.point("S03", 0.5)
    submit(db, rep, Submission(cid, lat, lon, "wgs84", "0401", "first"), rules)
    with db.transaction() as s:
        other = s.execute(text("SELECT id FROM users WHERE username = 'rep02'")).scalar_one()
    with pytest.raises(ClientIdConflict):
        submit(db, Reporter(other, "representative", None), Submission(cid, lat, lon, "wgs84", "0401", "x"), rules)


def test_a_gcj02_point_lands_on_the_right_street(db, rep, rules, streets):
    lon, lat = streets.point("S12", 0.5, 3)   # 人民街, a north–south street
    glon, glat = wgs84_to_gcj02(lon, lat)
    report, _ = submit(db, rep, Submission(uuid.uuid4(), glat, glon, "gcj02", "0401", "x"), rules)
    assert report["street"]["code"] == "S12"
    assert report["distance_m"] == pytest.approx(3, abs=0.5)
    assert report["reported"] == {"lat": glat, "lon": glon, "crs": "gcj02"}
    # the premise: taken as WGS-84, the same numbers are ~500 m away and would not be on 人民街
    with pytest.raises(OffStreet):
        submit(db, rep, Submission(uuid.uuid4(), glat, glon, "wgs84", "0401", "x"), rules)


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
               Submission(uuid.uuid4(), *reversed(streets.point("S03", 0.5)), "wgs84", "0401", "x"), rules)


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
    report, _ = submit(db, rep, Submission(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photo=jpeg_with_gps()),
                       rules)
    assert report["has_photo"]
    files = list(settings.photo_dir.rglob("*.jpg"))
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
        submit(db, rep, Submission(uuid.uuid4(), lat, lon, "wgs84", "0401", "x",
                                   photo=b"GIF89a but really a script <script>"), rules)
    assert count(db, "reports") == 0
    assert not list(settings.photo_dir.rglob("*")) if settings.photo_dir.exists() else True


def test_an_oversized_photo_is_refused(db, rep, rules, streets):
    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(PhotoTooLarge):
        submit(db, rep, Submission(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photo=b"\xff" * (3 * 1024 * 1024)),
               rules)


def test_the_photo_file_is_removed_when_the_transaction_fails(db, rep, rules, streets, settings):
    lon, lat = streets.point("S03", 0.5)
    with pytest.raises(RuntimeError):
        with db.transaction() as s:
            submit_report(s, rep, Submission(uuid.uuid4(), lat, lon, "wgs84", "0401", "x", photo=jpeg_with_gps()),
                          rules)
            assert list(settings.photo_dir.rglob("*.jpg"))
            raise RuntimeError("the commit never happens")
    assert not list(settings.photo_dir.rglob("*.jpg"))
    assert count(db, "reports") == 0


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
                created.append(submit_report(s, rep, Submission(cid, lat, lon, "wgs84", "0401", "x"), rules)[1])
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
