"""The header's 工作成效 menu on a phone: a leader opens it and reaches each of the programme's pages;
a representative has no such menu."""
from tests.browser.conftest import PHONE, offline_page, sign_in


def test_a_leader_reaches_the_programme_pages_from_the_menu_on_a_phone(browser, live_server, users, tmp_path):
    page = offline_page(browser, live_server, viewport=PHONE)
    sign_in(page, live_server, "leader")
    assert page.url.endswith("/coverage")
    for label, path in (("统计", "/stats"), ("月报", "/stats/bulletin"), ("问题图册", "/albums"),
                        ("巡街覆盖", "/coverage")):
        page.click(".topbar-programme summary")
        link = page.locator(".topbar-programme nav a", has_text=label).first
        assert link.is_visible(), label
        link.click()
        page.wait_for_load_state("load")
        assert page.url.split("?")[0].endswith(path), (label, page.url)
        assert page.locator("header.topbar").bounding_box()["width"] <= PHONE["width"]
    page.screenshot(path=str(tmp_path / "menu.png"))
    assert page.errors == [] and page.blocked == []


def test_a_representative_has_no_programme_menu(browser, live_server, users):
    page = offline_page(browser, live_server, viewport=PHONE)
    sign_in(page, live_server, "rep03")
    assert page.locator(".topbar-programme").count() == 0
