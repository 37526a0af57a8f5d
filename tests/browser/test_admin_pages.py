"""The system administrator's pages in chromium: a sysadmin creates a handler's account and reads its
one-time password, the new person signs in with it and is made to choose their own; the sysadmin
disables an account after confirming, edits a unit's contacts — at a desktop's width and a phone's;
and the other two administrators see no account pages."""
import re

import pytest

from tests.browser.conftest import PHONE, offline_page, sign_in

DESKTOP = {"width": 1280, "height": 900}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_system_administrator_keeps_accounts_and_units(browser, live_server, users, tmp_path, viewport):
    name = "desktop" if viewport is DESKTOP else "phone"
    page = offline_page(browser, live_server, viewport=viewport)
    sign_in(page, live_server, "sysadmin")
    assert page.url.endswith("/admin/users")
    assert page.locator("#users tbody tr").count() >= 50
    page.screenshot(path=str(tmp_path / f"users-{name}.png"), full_page=True)

    page.click("text=新建账号")
    page.fill("input[name=username]", f"zhao.{name}")
    page.fill("input[name=display_name]", "赵敏")
    page.select_option("select[name=role]", "unit_handler")
    page.select_option("select[name=unit]", "M02")
    page.click("#new-user button[type=submit]")
    page.wait_for_load_state("load")
    password = page.locator("#one-time-password").inner_text()
    assert re.fullmatch(r"\S{16}", password)
    page.screenshot(path=str(tmp_path / f"one-time-{name}.png"))

    # disable rep05: asked first, then done; the list says so
    page.goto(f"{live_server}/admin/users/rep05")
    page.click("#disable")
    page.wait_for_load_state("load")
    assert "确定停用“rep05”吗" in page.locator("#confirm").inner_text()
    page.screenshot(path=str(tmp_path / f"confirm-{name}.png"))
    page.click("#confirm button[type=submit]")
    page.wait_for_load_state("load")
    assert page.locator("#state").inner_text().startswith("已停用")
    assert page.locator(".admin-done").inner_text() == "账号已停用。"

    page.goto(f"{live_server}/admin/units/M04")
    page.fill("input[name=contact_name]", "钱科长")
    page.fill("input[name=phone]", "0416-2345678")
    page.click("#unit-form button[type=submit]")
    page.wait_for_load_state("load")
    assert page.locator(".admin-done").is_visible()
    page.click(".admin-nav a:has-text('责任单位')")
    page.wait_for_load_state("load")
    assert "钱科长" in page.locator("#units tr[data-code=M04]").inner_text()
    assert page.locator("body").bounding_box()["width"] <= viewport["width"]
    page.screenshot(path=str(tmp_path / f"units-{name}.png"), full_page=True)
    assert page.errors == [] and page.blocked == []

    # the new person: the one-time password works once, then their own must be chosen
    other = offline_page(browser, live_server, viewport=viewport)
    sign_in(other, live_server, f"zhao.{name}", password=password)
    assert "/account/password" in other.url
    # and the disabled one cannot sign in at all
    sign_in(other, live_server, "rep05")
    assert "/login" in other.url


def test_the_security_and_audit_administrators_keep_no_accounts(browser, live_server, users):
    page = offline_page(browser, live_server, viewport=DESKTOP)
    for who in ("secadmin", "auditor"):
        sign_in(page, live_server, who)
        response = page.goto(f"{live_server}/admin/users")
        assert response.status == 403, who
        page.context.clear_cookies()  # the next one signs in afresh
