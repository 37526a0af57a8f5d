"""/map in a real headless Chromium with every request off the live server blocked: the console map
draws streets and reports from local assets only, and report text shows literally in popups."""
from tests.browser.conftest import PHONE, offline_page, sign_in
from tests.conftest import report_body
from tests.test_map import HOSTILE, TEMPLATE_PROBES


def open_map(browser, live_server, viewport, path="/map"):
    page = offline_page(browser, live_server, viewport=viewport)
    sign_in(page, live_server, "dispatcher", next_path=path)
    page.wait_for_url(f"{live_server}/map**")
    page.wait_for_function("() => window.geoappMap && document.querySelectorAll('.report-marker, .map-cluster').length > 0",
                           timeout=10_000)
    return page


def popup_text(page, report) -> str:
    """Go to one report (the API's JSON of it), open its marker's popup and return its description
    as the page shows it."""
    page.evaluate("([lat, lon]) => window.geoappMap.setView([lat, lon], 18, {animate: false})",
                  [report["lat"], report["lon"]])
    report_id = report["id"]
    page.wait_for_function("""(id) => {
        let found = null;
        window.geoappMap.eachLayer(l => { if (l.reportId === id) found = l; });
        if (found) { found.openPopup(); return true; }
        return false;
    }""", arg=report_id, timeout=10_000)
    page.wait_for_selector(f'.leaflet-popup .report-popup[data-report-id="{report_id}"]', state="attached",
                           timeout=10_000)
    text = page.locator(".leaflet-popup .report-popup .desc").inner_text()
    page.evaluate("() => window.geoappMap.closePopup()")
    return text


def test_map_renders_streets_and_reports_offline(client, auth, streets, live_server, browser, tmp_path):
    for i in range(12):
        body = report_body(*streets.point("S03", 0.3 + i * 0.01, 5))
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201
    ids = {}
    for i, text in enumerate([HOSTILE] + TEMPLATE_PROBES):
        body = report_body(*streets.point("S12", 0.2 + i * 0.1), description=text)
        r = client.post("/api/v1/reports", json=body, headers=auth())
        assert r.status_code == 201
        ids[text] = r.json

    page = open_map(browser, live_server, {"width": 1280, "height": 900})
    assert page.blocked == [] and page.errors == [] and page.dialogs == []
    assert page.locator("path.street-line").count() == 29
    assert page.locator(".street-label").count() == 29
    assert page.evaluate("typeof L") == "object"
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".leaflet-control-attribution svg").count() == 0  # a plain text credit
    page.wait_for_function("() => /18/.test(document.getElementById('report-count').textContent)")
    page.screenshot(path=str(tmp_path / "map-desktop.png"))

    # each hostile or template-like description shows literally; nothing runs, nothing is evaluated
    assert "<script>alert('x')</script>" in popup_text(page, ids[HOSTILE])
    for probe in TEMPLATE_PROBES:
        assert popup_text(page, ids[probe]) == probe
    assert page.evaluate("window.__pwned") is None and page.dialogs == [] and page.errors == []
    assert page.blocked == []


def test_map_fits_a_phone(client, auth, streets, live_server, browser, tmp_path):
    for i in range(5):
        body = report_body(*streets.point("S03", 0.3 + i * 0.01, 5))
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201
    page = open_map(browser, live_server, PHONE)
    assert page.errors == [] and page.blocked == []
    bar = page.locator("header.topbar").bounding_box()
    assert bar["height"] < 110  # two rows at most, not a column of wrapped characters
    title = page.locator(".topbar-title").bounding_box()
    assert title["width"] > title["height"]  # the title reads across, not down
    zoom = page.locator(".leaflet-control-zoom").bounding_box()
    assert zoom["y"] >= bar["y"] + bar["height"]  # the header does not cover the zoom buttons
    assert not page.locator("#filters").is_visible()  # folded away on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(tmp_path / "map-phone.png"))
    page.click("#filters-toggle")
    assert page.locator("#filters").is_visible()
    assert page.locator("#filters").bounding_box()["width"] <= 375
    page.screenshot(path=str(tmp_path / "map-phone-filters.png"))
    page.click("#filters-toggle")
    # a street's open problems: a bottom sheet with its list
    page.evaluate("""() => window.geoappMap.eachLayer(l => {
        if (l.feature && l.feature.properties && l.feature.properties.code === 'S03') l.fire('click'); })""")
    page.wait_for_selector("#street-list .street-item")
    assert page.locator("#street-list .street-item").count() == 5
    sheet = page.locator("#street-panel").bounding_box()
    assert sheet["width"] <= 375 and sheet["y"] > 300
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(tmp_path / "map-phone-street.png"))
    assert page.errors == [] and page.blocked == []
