"""/stats and the monthly bulletin in Debian's chromium: the ECharts charts render (SVG inside the
chart boxes) under the CSP (no 'unsafe-eval', no inline script), nothing is fetched from outside
127.0.0.1, the tables fit a 375 px phone without a sideways page scroll, and the bulletin prints to
A4 PDF pages (Playwright's page.pdf) that carry the title, the figures and the chart."""
from __future__ import annotations

import subprocess
from urllib.parse import quote

from tests.browser.conftest import offline_page, sign_in, until
from tests.test_stats import world  # noqa: F401 - the hand-computed data set

DESKTOP = {"width": 1280, "height": 900}
SHOTS = "/tmp/geoapp-stats"


def _charts_drawn(page) -> None:
    until(page, "document.documentElement.getAttribute('data-charts') !== null")
    n = int(page.evaluate("document.documentElement.getAttribute('data-charts')"))
    assert n == page.locator(".stats-chart").count() and n >= 1
    for box in page.locator(".stats-chart").all():
        assert box.locator("svg").count() >= 1
        assert box.locator("svg path, svg rect").count() > 5          # bars, lines and axes were drawn


def test_stats_page_charts_render_offline(world, live_server, browser):
    import os
    os.makedirs(SHOTS, exist_ok=True)
    for viewport, name in ((DESKTOP, "desktop"), ({"width": 375, "height": 812}, "phone")):
        page = offline_page(browser, live_server, viewport=viewport)
        sign_in(page, live_server, "leader", next_path=quote("/stats?from=2026-08-01&to=2026-10-31"))
        assert page.url.endswith("/stats?from=2026-08-01&to=2026-10-31")
        _charts_drawn(page)
        assert page.locator(".stats-card").count() == 12
        assert page.locator("[data-figure=completion_rate] .stats-value").inner_text() == "62.5%"
        assert page.locator("[data-figure=completion_rate] .stats-ratio").inner_text() == "5 / 8"
        # the page itself never scrolls sideways; a wide table scrolls inside its own box
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=f"{SHOTS}/stats-{name}.png", full_page=True)
        assert page.errors == [] and page.blocked == []
        page.context.close()


def test_bulletin_on_a_phone(world, live_server, browser):
    page = offline_page(browser, live_server)
    sign_in(page, live_server, "leader", next_path=quote("/stats/bulletin?month=2026-09&lang=en"))
    _charts_drawn(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert "monthly bulletin" in page.locator("h1").inner_text()
    page.screenshot(path=f"{SHOTS}/bulletin-phone-en.png", full_page=True)
    assert page.errors == [] and page.blocked == []
    page.context.close()


def test_bulletin_prints_to_a4(world, live_server, browser, tmp_path):
    page = offline_page(browser, live_server, viewport=DESKTOP)
    sign_in(page, live_server, "leader", next_path="/stats/bulletin?month=2026-09")
    _charts_drawn(page)
    page.screenshot(path=f"{SHOTS}/bulletin-screen.png", full_page=True)
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden()                        # no navigation on paper
    pdf = tmp_path / "bulletin.pdf"
    page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    assert page.errors == [] and page.blocked == []
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "(A4)" in next(line for line in info.splitlines() if line.startswith("Page size:")), info
    pages = int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1])
    assert 2 <= pages <= 6
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "锦州市人大代表“随手拍”工作月报" in words and "2026年9月" in words
    flat = "".join(words.split())
    assert "办结率" in flat and "4/6" in flat and "已办结÷交办" in flat
    assert "导航" not in words and "退出" not in words                   # the header did not print
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), f"{SHOTS}/bulletin-page"], check=True)
    subprocess.run(["cp", str(pdf), f"{SHOTS}/bulletin.pdf"], check=True)
    page.context.close()
