"""/console/duplicates at a desktop's 1280 px (Debian chromium): a dispatcher sees two reports of the
same item 12 m apart on one street as one group, with their photos, picks the later one to keep, and
merges the group with one click; the group disappears and a line says what went into what. Nothing
leaves the server (page.blocked), nothing fails in the console (page.errors)."""
import io

from tests.browser.conftest import offline_page, sign_in
from tests.conftest import jpeg, report_body

DESKTOP = {"width": 1280, "height": 900}


def _file(client, auth, streets, rep: str, along: float, colour, description: str) -> dict:
    lon, lat = streets.point("S03", along / streets.line("S03").length, 3)
    data = {k: str(v) for k, v in report_body(lon, lat, description=description).items()}
    data["photo"] = (io.BytesIO(jpeg(colour)), "IMG.JPG")
    r = client.post("/api/v1/reports", data=data, headers=auth(rep), content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    return r.json


def test_a_dispatcher_merges_a_group_of_two(browser, live_server, client, auth, streets, tmp_path):
    first = _file(client, auth, streets, "rep03", 300, (180, 90, 40), "路边垃圾堆积，已有异味")
    second = _file(client, auth, streets, "rep04", 312, (60, 120, 170), "垃圾堆在人行道上")
    page = offline_page(browser, live_server, viewport=DESKTOP)
    sign_in(page, live_server, "dispatcher", next_path="/console/duplicates")
    page.goto(f"{live_server}/console/duplicates")
    group = page.locator(".dup-group")
    assert group.count() == 1
    assert page.locator(f'.dup-member[data-id="{first["id"]}"] input[type=radio]').is_checked()  # the earliest
    page.wait_for_function("Array.from(document.querySelectorAll('.dup-photos img')).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".dup-photos img").count() == 2
    assert "12 米" in page.text_content(f'.dup-member[data-id="{second["id"]}"] .dup-gap')
    page.screenshot(path=str(tmp_path / "duplicates-before.png"), full_page=True)

    page.click(f'.dup-member[data-id="{second["id"]}"] .dup-facts')  # the whole card chooses it
    assert page.locator(f'.dup-member[data-id="{second["id"]}"] input[type=radio]').is_checked()
    page.click(".dups-merge")
    page.wait_for_selector(".merge-log p")
    assert page.text_content(".merge-log p") == f"已将 #{first['id']} 合并到 #{second['id']}。"
    assert page.locator(".dup-group").count() == 0
    assert page.is_visible("#none-left")
    page.screenshot(path=str(tmp_path / "duplicates-after.png"), full_page=True)

    merged = client.get(f"/api/v1/reports/{first['id']}", headers=auth("dispatcher")).json
    assert (merged["status"], merged["merged_into"]) == ("merged", second["id"])
    assert len(merged["photos"]) == 1  # the merged report keeps its photo
    survivor = client.get(f"/api/v1/reports/{second['id']}", headers=auth("dispatcher")).json
    assert survivor["status"] == "submitted"
    assert page.errors == [] and page.blocked == []
    print("screenshots:", tmp_path)


def test_the_page_on_a_phone(browser, live_server, client, auth, streets, tmp_path):
    _file(client, auth, streets, "rep03", 300, (180, 90, 40), "路边垃圾堆积，已有异味")
    _file(client, auth, streets, "rep04", 312, (60, 120, 170), "垃圾堆在人行道上")
    page = offline_page(browser, live_server)
    sign_in(page, live_server, "dispatcher", next_path="/console/duplicates")
    page.goto(f"{live_server}/console/duplicates")
    page.wait_for_selector(".dup-group")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    box = page.locator(".dups-merge").bounding_box()
    assert box["height"] >= 44
    page.screenshot(path=str(tmp_path / "duplicates-phone.png"), full_page=True)
    assert page.errors == [] and page.blocked == []
    print("screenshots:", tmp_path)
