"""/map in a real headless Chromium with every request off 127.0.0.1 blocked."""
from geoapp.demo import DEMO_PASSWORD
from tests.conftest import report_body
from tests.test_map import HOSTILE, TEMPLATE_PROBES


def open_map(browser, live_server, viewport):
    page = browser.new_page(viewport=viewport, locale="zh-CN")
    page.set_default_timeout(15_000)
    page.blocked, page.errors, page.dialogs = [], [], []

    def only_loopback(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            page.blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    # a Content-Security-Policy violation is reported as a console error too
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server}/map", wait_until="load")  # sends us to the sign-in form first
    page.fill("#username", "dispatcher")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/map")
    page.wait_for_selector(".marker-cluster", timeout=10_000)
    return page


def open_popup_of(page, needle: str) -> str:
    """Show the report whose description contains `needle` (out of its cluster), open its popup,
    and return the popup's description text."""
    # Jump (no animation) to the report at the deepest zoom, where it stands on its own, then wait
    # until the cluster group has put it on the map (a circle marker: it has a _path, not an _icon);
    # zoomToShowLayer's callback can be lost when an animation is cut short.
    found = page.evaluate("""(needle) => {
        const map = window.geoappMap;
        let group = null;
        map.eachLayer(l => { if (l instanceof L.MarkerClusterGroup) group = l; });
        const hits = group.getLayers().filter(m => m.report && m.report.description.includes(needle));
        if (hits.length !== 1) return hits.length;
        window.__target = hits[0];
        map.setView(hits[0].getLatLng(), map.getMaxZoom(), {animate: false});
        return 1;
    }""", needle)
    assert found == 1, needle
    # (re-issued while waiting: a view change still running from the page's start can undo the first)
    page.wait_for_function("""() => {
        const m = window.__target, map = window.geoappMap;
        if (m._map) return true;
        if (map.getZoom() < map.getMaxZoom()) map.setView(m.getLatLng(), map.getMaxZoom(), {animate: false});
        return false;
    }""", timeout=10_000)
    page.evaluate("() => window.__target.openPopup()")
    page.wait_for_selector(".leaflet-popup .report-popup", state="attached", timeout=10_000)
    text = page.locator(".report-popup .desc").inner_text()
    page.evaluate("() => window.geoappMap.closePopup()")
    return text


def test_map_renders_streets_and_clusters_offline(client, auth, streets, live_server, browser, tmp_path):
    for i in range(12):  # close together: they must cluster at the initial zoom
        body = report_body(*streets.point("S03", 0.3 + i * 0.01, 5))
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201
    for i, text in enumerate([HOSTILE] + TEMPLATE_PROBES):
        body = report_body(*streets.point("S12", 0.2 + i * 0.1), description=text)
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201

    page = open_map(browser, live_server, {"width": 1280, "height": 900})
    assert page.blocked == [] and page.errors == [] and page.dialogs == []
    assert page.locator("path.street-line").count() == 29
    assert page.locator(".street-label").count() == 29
    assert page.locator(".marker-cluster").count() >= 1
    assert page.evaluate("typeof L") == "object"
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".leaflet-control-layers").count() == 1
    # the credit is plain text, without Leaflet's flag icon
    assert page.locator(".leaflet-control-attribution svg").count() == 0
    page.screenshot(path=str(tmp_path / "map-desktop.png"))

    # each hostile or template-like description shows literally; nothing runs, nothing is evaluated
    assert "<script>alert('x')</script>" in open_popup_of(page, "__pwned")
    for probe in TEMPLATE_PROBES:
        assert open_popup_of(page, probe) == probe
    assert page.evaluate("window.__pwned") is None and page.dialogs == [] and page.errors == []


def test_map_fits_a_phone(client, auth, streets, live_server, browser, tmp_path):
    for i in range(5):
        body = report_body(*streets.point("S03", 0.3 + i * 0.01, 5))
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201
    page = open_map(browser, live_server, {"width": 375, "height": 812})
    assert page.errors == [] and page.blocked == []
    bar = page.locator("header.topbar").bounding_box()
    assert bar["height"] < 100  # one or two lines, not a column of wrapped characters
    title = page.locator(".topbar-title").bounding_box()
    assert title["width"] > title["height"]  # the title reads across, not down
    zoom = page.locator(".leaflet-control-zoom").bounding_box()
    assert zoom["y"] >= bar["y"] + bar["height"]  # the header does not cover the zoom buttons
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(tmp_path / "map-phone.png"))
