"""The whole loop in Debian chromium, each person in their own browser and at their own screen: two
representatives report the same problem 12 m apart; the dispatcher (desktop) merges the duplicates
and dispatches the survivor by one click; the unit's handler (phone) signs for it and marks it handled
with an after photo; the reporter (phone) rates it; the dispatcher closes it — and the timeline shows
every step, and the representative whose report was merged sees the outcome on their own page."""
import io

from sqlalchemy import text

from tests.browser.conftest import PHONE, offline_page, sign_in, until
from tests.conftest import jpeg, report_body

DESKTOP = {"width": 1280, "height": 900}


def _report(client, auth, streets, rep: str, along_m: float, description: str) -> int:
    lon, lat = streets.point("S03", along_m / streets.line("S03").length, 3)
    data = {k: str(v) for k, v in report_body(lon, lat, description=description).items()}
    data["photo"] = (io.BytesIO(jpeg((170, 90, 40))), "IMG.JPG")
    r = client.post("/api/v1/reports", data=data, headers=auth(rep), content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_report_merge_dispatch_handle_rate_close(browser, live_server, client, auth, streets, db, tmp_path):
    merged = _report(client, auth, streets, "rep03", 300, "路边垃圾堆积，已有异味")
    survivor = _report(client, auth, streets, "rep04", 312, "垃圾堆在人行道上")

    # the dispatcher, at a desk: merge the two, keep rep04's, dispatch it as suggested
    desk = offline_page(browser, live_server, viewport=DESKTOP)
    sign_in(desk, live_server, "dispatcher", next_path="/console/duplicates")
    desk.goto(f"{live_server}/console/duplicates")
    desk.click(f'.dup-member[data-id="{survivor}"] .dup-facts')
    desk.click(".dups-merge")
    desk.wait_for_selector(".merge-log p")
    desk.goto(f"{live_server}/console/reports/{survivor}")
    until(desk, "!document.getElementById('dispatch-accept').disabled")
    desk.click("#dispatch-accept")
    desk.wait_for_selector("#flash.flash-ok")
    assert desk.text_content("#status-label") == "已派遣"
    desk.screenshot(path=str(tmp_path / "1-dispatched.png"), full_page=True)

    with db.transaction() as session:
        handler = session.execute(text("SELECT u.username FROM users u JOIN reports r ON r.unit_id = u.unit_id "
                                       "WHERE r.id = :id AND u.role = 'unit_handler'"), {"id": survivor}).scalar_one()

    # the unit's handler, on a phone in the street: sign for it, then handled with an after photo
    field = offline_page(browser, live_server, viewport=PHONE)
    sign_in(field, live_server, handler)
    assert field.url.endswith("/unit")
    field.click(f'.queue-row[data-report-id="{survivor}"] a')
    field.wait_for_selector("#report-map .report-point", state="attached")  # the page's script has run
    field.click("#form-unit_accept button[type=submit]")
    field.wait_for_selector('#status[data-status="unit_accepted"]')
    field.click("#act-handled summary")
    field.fill("#handled-text", "垃圾已清运完毕，路面已冲洗")
    field.set_input_files("#handled-photo", files=[{"name": "after.jpg", "mimeType": "image/jpeg",
                                                    "buffer": jpeg((200, 205, 200))}])
    field.click("#form-handled button[type=submit]")
    field.wait_for_selector('#timeline li[data-action="handled"] .event-photos img[data-kind="after"]')
    field.screenshot(path=str(tmp_path / "2-handled-phone.png"), full_page=True)

    # the reporter, on a phone: the unit's reply with its photo, and the rating
    phone = offline_page(browser, live_server, viewport=PHONE)
    sign_in(phone, live_server, "rep04")
    phone.goto(f"{live_server}/reports/{survivor}")
    phone.wait_for_selector("#verify-form")
    assert "垃圾已清运完毕" in phone.text_content("body")
    phone.locator("#reply_rating .rating-option").nth(4).click()
    phone.locator("#result_rating .rating-option").nth(3).click()
    phone.click("#verify-submit")
    phone.wait_for_selector("#verification")
    phone.screenshot(path=str(tmp_path / "3-rated-phone.png"), full_page=True)

    # the representative whose duplicate was merged follows the same outcome on their own page
    other = offline_page(browser, live_server, viewport=PHONE)
    sign_in(other, live_server, "rep03")
    other.goto(f"{live_server}/reports/{merged}")
    body = other.text_content("body")
    assert f"#{survivor}" in body and "垃圾已清运完毕" in body

    # the dispatcher closes it; the timeline has every step, in order
    desk.goto(f"{live_server}/console/reports/{survivor}")
    desk.click('details.action[data-action="close"] summary')
    desk.click('details.action[data-action="close"] button[type=submit]')
    desk.wait_for_selector("#flash.flash-ok")
    assert desk.text_content("#status-label") == "已结案"
    history = desk.text_content("#history")
    steps = ["提交上报", "派遣", "签收", "办结", "评价", "结案"]
    positions = [history.find(step) for step in steps]
    assert all(p >= 0 for p in positions), (steps, history)
    desk.screenshot(path=str(tmp_path / "4-closed.png"), full_page=True)
    r = client.get(f"/api/v1/reports/{survivor}", headers=auth("dispatcher")).json
    assert [e["action"] for e in r["events"]] == ["submit", "dispatch", "unit_accept", "handled", "verify", "close"]
    assert client.get(f"/api/v1/reports/{merged}", headers=auth("dispatcher")).json["status"] == "merged"
    for page in (desk, field, phone, other):
        assert page.errors == [] and page.blocked == []
    print("screenshots:", tmp_path)
