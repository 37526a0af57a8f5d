"""/albums and an issued album's page in Debian's chromium: a dispatcher issues the album through
the page's form, the album page shows every problem with its photos loaded (through the API's photo
address) and its small map (inline SVG with the street's name), under the CSP, nothing fetched from
outside 127.0.0.1, and no sideways scroll on a 375 px phone."""
from __future__ import annotations

import os

from tests.browser.conftest import offline_page, sign_in
from tests.test_album import CURRENT, city, flagged  # noqa: F401 - the four flagged problems

DESKTOP = {"width": 1280, "height": 900}
SHOTS = "/tmp/geoapp-album"


def test_issue_from_the_page_and_read_the_album(flagged, live_server, browser):  # noqa: F811
    os.makedirs(SHOTS, exist_ok=True)
    page = offline_page(browser, live_server, viewport=DESKTOP)
    sign_in(page, live_server, "dispatcher", next_path="/albums")
    assert page.url.endswith("/albums")
    assert page.locator(".album-issue-form").is_visible()
    page.screenshot(path=f"{SHOTS}/index-empty.png", full_page=True)
    page.fill("input[name=from]", CURRENT.start.isoformat())
    page.fill("input[name=to]", CURRENT.end.isoformat())
    page.click(".album-issue-button")
    page.wait_for_url("**/albums/1.html")
    assert page.locator("article.problem").count() == 4
    page.wait_for_load_state("networkidle")
    loaded = page.evaluate("[...document.querySelectorAll('.problem img')].map(i => i.complete && i.naturalWidth)")
    assert len(loaded) == 6 and all(w and w > 0 for w in loaded), loaded        # 5 before + 1 after photo
    assert page.locator(".problem-map svg").count() == 4
    assert page.locator(".problem-map svg text").first.text_content()           # a street's name
    assert page.locator(".description").nth(3).inner_text().startswith("<script>alert(1)</script> {{7*7}}")
    page.screenshot(path=f"{SHOTS}/album-desktop.png", full_page=True)
    assert page.errors == [] and page.blocked == []
    page.goto(f"{live_server}/albums")
    assert page.locator(".album-list tbody tr").count() == 1
    page.screenshot(path=f"{SHOTS}/index-desktop.png", full_page=True)
    page.context.close()

    phone = offline_page(browser, live_server)
    sign_in(phone, live_server, "leader", next_path="/albums/1.html")
    assert phone.locator("article.problem").count() == 4
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.screenshot(path=f"{SHOTS}/album-phone.png", full_page=True)
    phone.goto(f"{live_server}/albums")
    assert phone.locator(".album-issue-form").count() == 0                     # a leader reads, issues nothing
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.screenshot(path=f"{SHOTS}/index-phone.png", full_page=True)
    assert phone.errors == [] and phone.blocked == []
