"""/map in a real headless Chromium with every request off 127.0.0.1 blocked."""
import shutil
import threading

import pytest
from werkzeug.serving import make_server

from geoapp.demo import DEMO_PASSWORD
from tests.conftest import report_body
from tests.test_map import HOSTILE

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium is not installed")
# scripts/test installs chromium, so in CI this never skips; the skip only spares a bare pytest run.


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


def test_map_renders_streets_and_clusters_offline(client, auth, streets, live_server, browser):
    for i in range(12):  # close together: they must cluster at the initial zoom
        body = report_body(*streets.point("S03", 0.3 + i * 0.01, 5))
        assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201
    body = report_body(*streets.point("S12", 0.5), description=HOSTILE)
    assert client.post("/api/v1/reports", json=body, headers=auth()).status_code == 201

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked, errors, dialogs = [], [], []

    def only_loopback(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server}/map", wait_until="load")  # sends us to the sign-in form first
    page.fill("#username", "dispatcher")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/map")
    page.wait_for_selector(".marker-cluster", timeout=10_000)

    assert blocked == [] and errors == [] and dialogs == []
    assert page.locator("path.street-line").count() == 29
    assert page.locator(".street-label").count() == 29
    assert page.locator(".marker-cluster").count() >= 1
    assert page.evaluate("typeof L") == "object"
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".leaflet-control-layers").count() == 1

    # open the hostile report's popup: its text shows literally, nothing runs
    found = page.evaluate("""() => {
        const map = Object.values(window).find(v => v instanceof L.Map);
        let found = 0;
        map.eachLayer(l => { if (l instanceof L.MarkerClusterGroup) {
            l.getLayers().forEach(m => {
                if (m.report && m.report.description.includes('__pwned')) {
                    found += 1;
                    map.setView(m.getLatLng(), 19, {animate: false});
                    window.__hostile = m;
                }
            });
        }});
        return found;
    }""")
    assert found == 1
    page.wait_for_timeout(300)  # let the cluster group re-render at the new zoom
    page.evaluate("() => window.__hostile.openPopup()")
    page.wait_for_selector(".leaflet-popup .report-popup", state="attached", timeout=10_000)
    assert "<script>alert('x')</script>" in page.locator(".report-popup .desc").inner_text()
    assert page.evaluate("window.__pwned") is None and dialogs == []
