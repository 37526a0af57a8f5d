"""The representative verifies a handled report on a 375 px phone (Debian chromium): the page shows
where it stands and the unit's replies with the after photo; rating 2 and 2 warns that a comment is
needed before anything is sent; with the comment, the report is reopened and the page says 已退回返工.
Nothing leaves the server (page.blocked) and nothing fails in the console (page.errors)."""
from tests.browser.conftest import PHONE, offline_page, sign_in
from tests.test_notifications import flow  # noqa: F401 - the fixture


def test_the_representative_rates_2_and_2_and_it_is_reopened(browser, live_server, flow, tmp_path):
    rep, handler = flow.handled(text_="已清运完毕，现场已冲洗")
    page = offline_page(browser, live_server, viewport=PHONE)
    sign_in(page, live_server, "rep03")
    page.goto(f"{live_server}/reports/{rep['id']}")
    page.wait_for_selector("#verify-form")
    assert page.text_content(".step-current .step-label") == "办结"
    assert "已清运完毕" in page.text_content("#replies")
    # the 1–5 buttons: five in one row, each a big tap target
    boxes = [page.locator("#reply_rating .rating-option span").nth(i).bounding_box() for i in range(5)]
    assert all(b["height"] >= 44 and b["width"] >= 44 for b in boxes)
    assert len({round(b["y"]) for b in boxes}) == 1 and boxes[-1]["x"] + boxes[-1]["width"] <= PHONE["width"]

    page.locator("#reply_rating .rating-option").nth(1).click()
    page.locator("#result_rating .rating-option").nth(1).click()
    assert page.is_visible("#verify-warning")  # said before sending: a comment is needed
    assert "低于 3 分" in page.text_content("#verify-warning")
    page.click("#verify-submit")  # refused on the page, nothing sent
    assert flow.get(rep["id"])["status"] == "handled"
    page.screenshot(path=str(tmp_path / "verify_form.png"), full_page=True)

    page.fill("#verify-comment", "垃圾还在原地，没有清运")
    page.click("#verify-submit")
    page.wait_for_selector("#side")
    assert page.text_content("#side") == "已退回返工"
    assert not page.is_visible("#verify-form")
    assert "垃圾还在原地" in page.text_content("#verification")
    page.screenshot(path=str(tmp_path / "verify_reopened.png"), full_page=True)
    assert flow.get(rep["id"])["status"] == "reopened"

    # the inbox: the "handled" notice, unread in the header; opening it reads it and goes to the report
    assert page.get_attribute("#inbox-link", "aria-label") == "消息 (1)"
    page.click("#inbox-link")
    page.wait_for_selector("#inbox-list")
    assert "问题已办结，请评价" in page.text_content(".inbox-item.unread")
    page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
    page.click(".inbox-item.unread a")
    page.wait_for_selector("#verification")
    assert page.url.endswith(f"/reports/{rep['id']}") and page.get_attribute("#inbox-link", "aria-label") == "消息 (0)"
    assert page.errors == [] and page.blocked == []
    print("screenshots:", tmp_path)
