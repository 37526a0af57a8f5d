"""The coverage page in Debian's chromium: the table of 29 streets, the map drawn bin by bin (covered,
not covered, by others only), sorting by a column, the period's walks on demand, the street's own page
on a phone — with no console error and nothing fetched outside 127.0.0.1. Screenshots are kept in
/tmp (coverage-desktop.png, coverage-phone.png) to be looked at."""
import datetime as dt
import uuid

from tests.browser.conftest import offline_page, sign_in, until

CST = dt.timezone(dt.timedelta(hours=8))


def _walk(client, headers, streets, code, f0, f1, start):
    length = streets.line(code).length
    n = max(int(abs(f1 - f0) * length / 7), 1)
    points = [streets.point(code, f0 + (f1 - f0) * k / n) for k in range(n + 1)]
    body = {"walk_id": str(uuid.uuid4()), "chunk": 0, "crs": "wgs84",
            "trace": {"type": "LineString", "coordinates": [list(p) for p in points]},
            "times": [(start + dt.timedelta(seconds=5 * k)).isoformat() for k in range(len(points))],
            "accuracies": [8.0] * len(points)}
    assert client.post("/api/v1/walks", json=body, headers=headers).status_code == 201


def test_the_coverage_table_and_map_sort_and_draw(app, client, auth, streets, live_server, browser):
    start = dt.datetime(2026, 11, 10, 9, 0, tzinfo=CST)
    _walk(client, auth("rep03"), streets, "S03", 0.0, 0.5, start)
    _walk(client, auth("rep01"), streets, "S01", 0.0, 1.0, start)
    _walk(client, auth("rep04"), streets, "S02", 0.3, 0.7, start)     # someone else's walk on S02
    page = offline_page(browser, live_server, viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, "leader", next_path="/coverage?from=2026-11-01&to=2026-11-30")
    until(page, "document.body.dataset.coverageRuns > 0")
    assert page.locator("#coverage-table tbody tr").count() == 29
    # the map: one path per run of bins, in three colours
    strokes = page.evaluate("""() => Array.from(document.querySelectorAll('#coverage-map path'))
                                 .map(p => p.getAttribute('stroke'))""")
    assert {"#0072b2", "#d55e00", "#e69f00"} <= set(strokes)
    assert int(page.evaluate("document.body.dataset.coverageRuns")) == len(strokes)
    # sorting by coverage: largest first, then smallest first
    page.click("#coverage-table th:nth-child(3) button")
    first = page.locator("#coverage-table tbody tr").first
    assert first.get_attribute("data-code") == "S01"
    shares = page.evaluate("""() => Array.from(document.querySelectorAll('#coverage-table tbody tr'))
                                .map(r => Number(r.cells[2].dataset.value))""")
    assert shares == sorted(shares, reverse=True) and shares[0] == 1.0
    assert page.get_attribute("#coverage-table th:nth-child(3)", "aria-sort") == "descending"
    page.click("#coverage-table th:nth-child(3) button")
    assert page.get_attribute("#coverage-table th:nth-child(3)", "aria-sort") == "ascending"
    assert page.locator("#coverage-table tbody tr").last.get_attribute("data-code") == "S01"
    # the period's walks, on demand
    page.check("#show-walks")
    until(page, "document.body.dataset.coverageWalks === '3'")
    page.screenshot(path="/tmp/coverage-desktop.png", full_page=True)
    assert page.blocked == [] and page.errors == []

    phone = offline_page(browser, live_server)
    sign_in(phone, live_server, "rep03", next_path="/coverage/S03?from=2026-11-01&to=2026-11-30")
    until(phone, "document.body.dataset.coverageRuns > 0")
    assert phone.locator("#gap-list li").count() == 1
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width               # nothing wider than the phone
    phone.screenshot(path="/tmp/coverage-phone.png", full_page=True)
    assert phone.blocked == [] and phone.errors == []
