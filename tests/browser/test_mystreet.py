"""/my on a 375 px phone (Debian chromium): the representative lands on their street, sees the
quota, their reports and their walks, and a report's page shows its history. Nothing leaves the
server (page.blocked) and nothing fails in the console (page.errors)."""
import io
import time

from tests.browser.conftest import PHONE, offline_page, sign_in, until
from tests.conftest import report_body


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 160, 90)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _photos_are_served(app) -> bool:
    """The photos helper's GET /api/v1/photos/<id> (a thumbnail that 404s would be a console error)."""
    return any(str(rule).startswith("/api/v1/photos/") for rule in app.url_map.iter_rules())


def _post_report(app, auth, streets):
    """A report of rep03's on S03: multipart with a JPEG when photos are served, else JSON."""
    client = app.test_client()
    body = report_body(*streets.point("S03", 0.35), description="井盖缺失")
    if _photos_are_served(app):
        data = {k: str(v) for k, v in body.items()} | {"photo": (io.BytesIO(_jpeg()), "p.jpg", "image/jpeg")}
        r = client.post("/api/v1/reports", data=data, content_type="multipart/form-data", headers=auth("rep03"))
    else:
        r = client.post("/api/v1/reports", json=body, headers=auth("rep03"))
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json


def _geo(lon, lat, accuracy=8):
    return {"latitude": lat, "longitude": lon, "accuracy": accuracy}


def test_my_street_on_a_phone(browser, live_server, app, users, auth, streets, tmp_path):
    page = offline_page(browser, live_server, viewport=PHONE, geolocation=_geo(*streets.point("S03", 0.3)))
    sign_in(page, live_server, "rep03")
    assert page.url.endswith("/my")
    page.wait_for_selector("#my-map path.my-street-line", state="attached")
    page.wait_for_selector("#my-map[data-reports]", state="attached")
    until(page, "document.getElementById('geo-status').textContent.indexOf('定位精度') >= 0")
    quota = page.text_content("#quota-text")
    assert quota.startswith("已拍 0 / ") and quota.endswith(" 张")
    assert page.is_visible("#pin-link") and page.is_visible("#walk-toggle")
    # no horizontal scroll on a phone; the map is the top part of the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = page.locator("#my-map").bounding_box()
    assert 0.3 * PHONE["height"] <= box["height"] <= 0.55 * PHONE["height"]
    page.screenshot(path=str(tmp_path / "my-empty.png"))

    report = _post_report(app, auth, streets)
    page.reload()
    page.wait_for_selector(f'li[data-report-id="{report["id"]}"]')
    page.wait_for_selector("#my-map path.report-mine", state="attached")
    if report.get("photos"):
        assert page.text_content("#quota-text").startswith("已拍 1 / ")
        until(page, "document.querySelector('#my-reports img.thumb').naturalWidth > 0")
    page.screenshot(path=str(tmp_path / "my-report.png"))

    page.click(f'li[data-report-id="{report["id"]}"] a')
    page.wait_for_selector("#history li")
    assert "提交上报" in page.text_content("#history")
    assert "解放路，距起点" in page.text_content("#position")
    page.wait_for_selector("#report-map path.report-point", state="attached")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    # the narrowest phone the programme supports, and a desktop: the same markup, no sideways scroll
    for width, height, path in ((360, 640, "/my"), (360, 640, f"/reports/{report['id']}"), (1280, 800, "/my")):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server}{path}")
        page.wait_for_selector(".leaflet-container path", state="attached")
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (width, path)
    page.screenshot(path=str(tmp_path / "my-desktop.png"))
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server}/account/api-key")
    page.click(".key-page button[type=submit]")
    assert page.text_content("#new-key").startswith("ga_")
    page.screenshot(path=str(tmp_path / "api-key.png"))
    assert page.errors == [] and page.blocked == []


def test_a_walk_along_my_street_is_drawn(browser, live_server, app, users, auth, streets, tmp_path):
    length = streets.line("S03").length
    start = 0.2
    page = offline_page(browser, live_server, viewport=PHONE, geolocation=_geo(*streets.point("S03", start)))
    sign_in(page, live_server, "rep03")
    page.wait_for_selector("#my-map path.my-street-line", state="attached")
    until(page, "!document.getElementById('walk-toggle').disabled")
    assert page.text_content("#walked") in ("本月还没有巡街记录", "")
    page.click("#walk-toggle")
    page.wait_for_selector('#walk-box[data-recording="1"]')
    # walk ~140 m along S03, 10 m every 2 s (5 m/s: under the speed a walk may have)
    for step in range(15):
        page.context.set_geolocation(_geo(*streets.point("S03", start + step * 10.0 / length)))
        time.sleep(2.0)
    page.screenshot(path=str(tmp_path / "walk-recording.png"))
    page.click("#walk-toggle")
    page.wait_for_selector('#walk-box[data-recording="0"]')
    until(page, "Number(document.getElementById('my-map').getAttribute('data-walked') || 0) >= 1", 30)
    page.wait_for_selector("#my-map path.walked-line", state="attached")
    assert "本月走过" in page.text_content("#walked")
    page.screenshot(path=str(tmp_path / "walk-done.png"))
    stretches = app.test_client().get("/api/v1/walks?street=S03", headers=auth("rep03")).json["stretches"]
    assert stretches and sum(s["length_m"] for s in stretches) >= 60
    assert page.errors == [] and page.blocked == []
