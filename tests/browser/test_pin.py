"""/my/pin on a 375 px phone (Debian chromium): pin a problem with GPS, with a photo's EXIF GPS when
location is refused, see a refusal kept in the outbox, and send offline — exactly once when the
network comes back. Nothing leaves the server (page.blocked), nothing fails in the console."""
import io
import re

from sqlalchemy import text

from tests.browser.conftest import PHONE, offline_page, sign_in
from tests.conftest import report_body

S03_NAME = "解放路"


def _dms(value: float) -> tuple:
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), round(((value - d) * 60 - m) * 60, 4)


def _jpeg(lon: float | None = None, lat: float | None = None) -> bytes:
    """A real JPEG as a phone camera writes it: rotated by its EXIF orientation, with GPS when given."""
    from PIL import Image
    from PIL.ExifTags import GPS, IFD

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    if lon is not None:
        gps = exif.get_ifd(IFD.GPSInfo)
        gps[GPS.GPSLatitudeRef], gps[GPS.GPSLatitude] = "N", _dms(lat)
        gps[GPS.GPSLongitudeRef], gps[GPS.GPSLongitude] = "E", _dms(lon)
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 160, 90)).save(buf, "JPEG", quality=85, exif=exif)
    return buf.getvalue()


def _geo(lon, lat, accuracy=8):
    return {"latitude": lat, "longitude": lon, "accuracy": accuracy}


def _open_pin(page, live_server):
    sign_in(page, live_server, "rep03")
    page.goto(f"{live_server}/my/pin")
    page.wait_for_selector("#pin-map path.pin-street-own", state="attached")


def _fill_form(page, photo: bytes, name="p.jpg", description="人行道井盖缺失，行人易踩空"):
    page.fill("#category-search", "jg")
    page.wait_for_selector("#category-results button.choice")
    assert "井盖" in page.text_content("#category-results button.choice")
    page.click("#category-results button.choice")
    assert "井盖" in page.text_content("#category-chosen")
    page.set_input_files("#photo-camera", files=[{"name": name, "mimeType": "image/jpeg", "buffer": photo}])
    page.wait_for_selector("#photos li.photo")
    page.fill("#description", description)


def _rows(db, client_id: str) -> list:
    with db.sessionmaker() as s:
        return s.execute(text("""SELECT r.id, count(p.id) AS photos FROM reports r LEFT JOIN photos p ON p.report_id = r.id
                                 WHERE r.client_id = CAST(:c AS uuid) GROUP BY r.id"""), {"c": client_id}).all()


def _queue_item(page, state: str):
    page.wait_for_selector(f'#queue li[data-state="{state}"]', timeout=30_000)
    return page.locator(f'#queue li[data-state="{state}"]').first


def _earlier_report(app, auth, lon, lat) -> int:
    """Someone already reported a missing manhole cover here (multipart, with a photo)."""
    body = report_body(lon, lat, category="0103", description="井盖缺失")
    data = {k: str(v) for k, v in body.items()} | {"photo": (io.BytesIO(_jpeg()), "e.jpg", "image/jpeg")}
    r = app.test_client().post("/api/v1/reports", data=data, content_type="multipart/form-data", headers=auth("rep03"))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json["id"]


def test_pin_and_send_with_gps(browser, live_server, app, db, users, auth, streets, tmp_path):
    lon, lat = streets.point("S03", 0.4, 5)
    earlier = _earlier_report(app, auth, *streets.point("S03", 0.4, 2))
    page = offline_page(browser, live_server, viewport=PHONE, geolocation=_geo(lon, lat))
    _open_pin(page, live_server)
    page.wait_for_function("() => document.getElementById('snap-text').textContent.indexOf('距街路') >= 0")
    assert page.text_content("#snap-text").startswith(S03_NAME + "，距街路 ")
    assert page.get_attribute("#snap", "data-state") == "ok"
    assert page.get_attribute("#pin-map", "data-source") == "gps"
    assert "定位精度" in page.text_content("#geo-status")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "pin-empty.png"))

    _fill_form(page, _jpeg(lon, lat))
    page.wait_for_function("() => document.querySelector('#photos img') && document.querySelector('#photos img').naturalWidth > 0")
    # the same kind of problem is already reported here: said, with its photo; sending stays possible
    page.wait_for_function("() => document.getElementById('nearby-text').textContent === '附近已有 1 条同类问题'")
    assert page.get_attribute("#nearby a", "href") == f"/reports/{earlier}"
    page.wait_for_function("() => document.querySelector('#nearby img').naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "pin-filled.png"), full_page=True)
    page.click("#send")
    item = _queue_item(page, "sent")
    assert "已发送" in item.text_content()
    client_id = item.get_attribute("data-client-id")
    rows = _rows(db, client_id)
    assert len(rows) == 1 and rows[0].photos == 1
    report_id = rows[0].id
    assert item.locator("a").get_attribute("href") == f"/reports/{report_id}"
    r = app.test_client().get(f"/api/v1/reports/{report_id}", headers=auth("rep03"))
    assert r.status_code == 200 and r.json["category"]["code"] == "0103" and len(r.json["photos"]) == 1
    # the form is empty again, and the item just used is offered first next time
    assert page.locator("#photos li").count() == 0 and page.input_value("#description") == ""
    assert "0103" in page.text_content("#category-recent")
    page.screenshot(path=str(tmp_path / "pin-sent.png"), full_page=True)
    assert page.errors == [] and page.blocked == []


def test_position_from_the_photo_when_location_is_refused(browser, live_server, app, db, users, streets, tmp_path):
    lon, lat = streets.point("S03", 0.6, 3)
    page = offline_page(browser, live_server, viewport=PHONE)  # no geolocation permission
    _open_pin(page, live_server)
    page.wait_for_function("() => document.getElementById('geo-status').textContent.indexOf('地图上点选') >= 0")
    page.set_input_files("#photo-gallery", files=[{"name": "g.jpg", "mimeType": "image/jpeg", "buffer": _jpeg(lon, lat)}])
    page.wait_for_selector("#pin-map[data-source=photo]", state="attached")
    assert "位置取自照片" in page.text_content("#geo-status")
    assert abs(float(page.get_attribute("#pin-map", "data-lat")) - lat) < 1e-5
    assert abs(float(page.get_attribute("#pin-map", "data-lon")) - lon) < 1e-5
    page.wait_for_function("() => document.getElementById('snap-text').textContent.indexOf('距街路') >= 0")
    assert page.text_content("#snap-text").startswith(S03_NAME)
    page.screenshot(path=str(tmp_path / "pin-photo-position.png"))
    assert page.errors == [] and page.blocked == []


def test_a_refused_report_stays_in_the_outbox(browser, live_server, app, db, users, streets, tmp_path):
    lon, lat = streets.point("S03", 0.5)
    page = offline_page(browser, live_server, viewport=PHONE, geolocation=_geo(lon, lat))
    _open_pin(page, live_server)
    page.wait_for_function("() => document.getElementById('snap-text').textContent.indexOf('距街路') >= 0")
    garbage = b"\x89PNG\r\n\x1a\n" + b"not really an image" * 50
    _fill_form(page, garbage, name="x.jpg", description="照片坏了")
    page.click("#send")
    item = _queue_item(page, "refused")
    state = item.locator(".queue-state").text_content()
    assert state.startswith("被退回：") and len(state) > len("被退回：")
    client_id = item.get_attribute("data-client-id")
    assert _rows(db, client_id) == []
    page.screenshot(path=str(tmp_path / "pin-refused.png"), full_page=True)
    # still there after a reload; 修改 puts it back into the form
    page.reload()
    item = _queue_item(page, "refused")
    item.locator("button.queue-edit").click()
    page.wait_for_selector("#photos li.photo")
    assert page.input_value("#description") == "照片坏了"
    assert "0103" in page.text_content("#category-chosen")
    # the browser itself reports the refused POST's status in the console: that one is expected
    errors = [e for e in page.errors if not re.search(r"status of 4\d\d", e)]
    assert errors == [] and page.blocked == []


def test_offline_then_sent_exactly_once(browser, live_server, app, db, users, streets, tmp_path):
    lon, lat = streets.point("S03", 0.3, 4)
    page = offline_page(browser, live_server, viewport=PHONE, geolocation=_geo(lon, lat))
    _open_pin(page, live_server)
    # the service worker is installed and controls the page (so the page opens with no network)
    page.evaluate("navigator.serviceWorker.ready.then(function () { return true; })")
    page.reload()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_function("() => document.getElementById('snap-text').textContent.indexOf('距街路') >= 0")

    _fill_form(page, _jpeg(lon, lat), description="路灯不亮")
    page.context.set_offline(True)
    page.click("#send")
    item = _queue_item(page, "queued")
    assert "已保存在手机，待发送" in item.text_content()
    client_id = item.get_attribute("data-client-id")
    assert _rows(db, client_id) == []
    page.screenshot(path=str(tmp_path / "pin-offline.png"), full_page=True)

    page.reload()  # with no network: the service worker's copy of the page, the outbox from IndexedDB
    item = _queue_item(page, "queued")
    assert item.get_attribute("data-client-id") == client_id
    assert _rows(db, client_id) == []

    page.context.set_offline(False)  # the `online` event sends it
    item = _queue_item(page, "sent")
    assert item.get_attribute("data-client-id") == client_id
    rows = _rows(db, client_id)
    assert len(rows) == 1 and rows[0].photos == 1
    # another page with the outbox open resends nothing: still one report
    page.goto(f"{live_server}/my/pin")
    _queue_item(page, "sent")
    page.wait_for_timeout(500)
    assert len(_rows(db, client_id)) == 1
    with db.sessionmaker() as s:
        assert s.execute(text("SELECT count(*) FROM reports WHERE client_id = CAST(:c AS uuid)"),
                         {"c": client_id}).scalar_one() == 1
    assert page.errors == [] and page.blocked == []
