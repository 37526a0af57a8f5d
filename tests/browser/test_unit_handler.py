"""A unit's handler in Debian chromium, on a 375 px phone in the field and on a 1280 px desktop: the
queue, a report's page with its map, then 签收, 反馈进展 with a photo and 办结 with an after photo,
each sent to the lifecycle API by the page and shown in the timeline; a version gone stale under
the handler's feet is refused and the page shows why and the current state. Nothing leaves the
server (page.blocked) and nothing fails in the console (page.errors; the one 409 is expected)."""
import datetime as dt
import re

import pytest

from tests.browser.conftest import PHONE, offline_page, sign_in
from tests.conftest import jpeg
from tests.test_unit_pages import city, ours  # noqa: F401  (fixtures)

DESKTOP = {"width": 1280, "height": 800}


def as_file(name: str, body: bytes) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": body}


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_handler_accepts_reports_progress_and_handles_with_an_after_photo(
        browser, live_server, city, ours, tmp_path, viewport):  # noqa: F811
    unit, mine, other, theirs = ours
    report = city.submit(0.3, photo=jpeg((150, 120, 90)), description="人行道上堆放建筑垃圾，影响通行")
    city.dispatch(report)
    shot = lambda name: page.screenshot(path=str(tmp_path / f"{viewport['width']}-{name}.png"), full_page=True)

    page = offline_page(browser, live_server, viewport=viewport)
    sign_in(page, live_server, mine, next_path="/unit")
    assert page.url.endswith("/unit")
    page.wait_for_selector(f'.queue-row[data-report-id="{report["id"]}"]')
    assert page.text_content('.tab.current .tab-label') == "新派遣"
    assert re.search(r"剩余", page.text_content(f'.queue-row[data-report-id="{report["id"]}"]'))
    shot("queue")

    page.click(f'.queue-row[data-report-id="{report["id"]}"] a')
    page.wait_for_selector("#report-map .report-point", state="attached")
    page.wait_for_selector("#report-map path.leaflet-interactive, #report-map path", state="attached")
    assert "人行道上堆放建筑垃圾" in page.text_content("#description")
    page.wait_for_selector("#before-photos img")
    shot("report")

    # 签收
    page.click("#form-unit_accept button[type=submit]")
    page.wait_for_selector('#status[data-status="unit_accepted"]')
    page.wait_for_selector("#notice.ok")
    assert page.locator("#form-unit_accept").count() == 0
    assert page.locator('#timeline li[data-action="unit_accept"]').count() == 1

    # 反馈进展 with a photo taken by the camera (a file input that asks for it)
    page.click("#act-progress summary")
    assert page.get_attribute("#progress-photo", "capture") == "environment"
    page.fill("#progress-text", "已安排清运车辆，预计明天清理")
    page.set_input_files("#progress-photo", files=[as_file("progress.jpg", jpeg((90, 140, 200)))])
    page.click("#form-progress button[type=submit]")
    page.wait_for_selector('#status[data-status="in_progress"]')
    page.wait_for_selector('#timeline li[data-action="progress"] .event-photos img')
    assert "已安排清运车辆" in page.text_content('#timeline li[data-action="progress"]')
    shot("progress")

    # meanwhile the dispatcher changes the deadline: the page's version is stale, the refusal is shown
    city.act("dispatcher", report["id"], "edit_deadline",
             deadline=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=9), reason="按领导要求调整")
    page.click("#act-handled summary")
    page.fill("#handled-text", "垃圾已清运完毕")
    page.set_input_files("#handled-photo", files=[as_file("after.jpg", jpeg((210, 210, 200)))])
    page.click("#form-handled button[type=submit]")
    page.wait_for_selector("#notice.error")
    assert "已被他人更新" in page.text_content("#notice")
    page.wait_for_selector('#timeline li[data-action="edit_deadline"]')  # the current state, reloaded
    assert page.get_attribute("#status", "data-status") == "in_progress"
    shot("stale")

    # 办结 with the after photo, again on the current version
    page.click("#act-handled summary")
    page.fill("#handled-text", "垃圾已清运完毕")
    page.set_input_files("#handled-photo", files=[as_file("after.jpg", jpeg((210, 210, 200)))])
    page.click("#form-handled button[type=submit]")
    page.wait_for_selector('#status[data-status="handled"]')
    page.wait_for_selector('#timeline li[data-action="handled"] .event-photos img[data-kind="after"]')
    assert page.locator("form.action-form").count() == 0
    assert page.locator("#timeline li").count() >= 6  # submit, dispatch, accept, progress, deadline, handled
    shot("handled")

    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    errors = [e for e in page.errors if not re.search(r"status of 409", e)]
    assert errors == [] and page.blocked == []
