"""The console map with 100,000 reports in the database: it shows clusters counted on the server (not
100,000 markers), and a pan asks only for the tiles that came into view."""
import re
import sys
import time
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from tests.browser.conftest import offline_page, sign_in

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from console_map import generate_reports  # noqa: E402

N = 100_000


@pytest.fixture
def many_reports(db, owner_db, users):
    t0 = time.perf_counter()
    with owner_db.engine.begin() as conn:  # a bulk load pauses the triggers: the schema owner's job
        generate_reports(conn, N)  # set-based, the map's aggregates recounted once at the end
    with owner_db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE reports"))
        conn.execute(text("ANALYZE report_cells"))
    return time.perf_counter() - t0


def cell_requests(page):
    """Every /api/v1/map/cells request the page makes, as (z, x0, y0, x1, y1)."""
    seen = []

    def record(request):
        if "/api/v1/map/cells" in request.url:
            q = parse_qs(urlparse(request.url).query)
            seen.append((int(q["z"][0]), *map(int, q["tiles"][0].split(","))))
    page.on("request", record)
    return seen


def tiles(requests, z):
    return {(x, y) for rz, x0, y0, x1, y1 in requests if rz == z
            for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}


def viewport_tiles(page):
    return page.evaluate("""() => {
        // the tiles of the whole zoom level at or below the map's (which may be fractional)
        const m = window.geoappMap, z = Math.floor(m.getZoom() + 1e-6), last = Math.pow(2, z) - 1;
        const b = m.getBounds(), nw = m.project(b.getNorthWest(), z), se = m.project(b.getSouthEast(), z);
        const c = v => Math.max(0, Math.min(last, v));
        return [z, c(Math.floor(nw.x / 256)), c(Math.floor(nw.y / 256)),
                c(Math.ceil(se.x / 256) - 1), c(Math.ceil(se.y / 256) - 1)];
    }""")


def test_the_console_map_clusters_100k_reports_and_a_pan_loads_only_new_tiles(many_reports, live_server,
                                                                                 browser, tmp_path):
    assert many_reports < 60  # the fixture's own bulk load (a benchmark measures; this only guards a hang)
    page = offline_page(browser, live_server, viewport={"width": 1400, "height": 900})
    requests = cell_requests(page)
    sign_in(page, live_server, "dispatcher", next_path="/map")
    page.wait_for_url(f"{live_server}/map**")
    page.wait_for_selector(".map-cluster", timeout=20_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => /100,000|100000/.test(document.getElementById('report-count').textContent)")
    clusters = page.locator(".map-cluster").count()
    singles = page.locator(".report-marker").count()
    assert 0 < clusters < 2000 and singles < 2000  # clusters, not 100,000 markers
    total = page.evaluate("""() => { let n = 0; window.geoappMap.eachLayer(l => {
        const t = l.options && l.options.icon && l.options.icon.options.html;
        if (t && t.textContent) n += Number(t.textContent.replace(/[^0-9]/g, '')); else if (l.reportId) n += 1; });
        return n; }""")
    assert total == N  # the whole city is in view: every report is in a cluster or shown alone
    page.screenshot(path=str(tmp_path / "console-100k.png"))

    z, *before = viewport_tiles(page)
    loaded = tiles(requests, z)
    assert loaded >= {(x, y) for x in range(before[0], before[2] + 1) for y in range(before[1], before[3] + 1)}
    asked = len(requests)

    # a pan two tiles to the east: only the tiles that came into view are asked for
    page.evaluate("() => window.geoappMap.panBy([512, 0], {animate: false})")
    page.wait_for_function(f"() => window.geoappMapRequests.length > {asked}")
    page.wait_for_load_state("networkidle")
    new = requests[asked:]
    assert new and all(r[0] == z for r in new)
    z2, *after = viewport_tiles(page)
    in_view = {(x, y) for x in range(after[0], after[2] + 1) for y in range(after[1], after[3] + 1)}
    assert tiles(new, z) == in_view - loaded  # exactly the new tiles, none twice
    assert len(new) <= 2  # one request per rectangle of missing tiles

    # filters travel in the URL, and a filter change asks again with them
    asked = len(requests)
    page.check("input[name=status][value=submitted]")
    page.wait_for_function("() => /status=submitted/.test(location.search)")
    page.wait_for_selector(".map-cluster, .report-marker")  # drawn again, from the filtered tiles
    assert requests[asked:] and all(r[0] == z for r in requests[asked:])
    assert tiles(requests[asked:], z) == in_view  # the new filter: the tiles in view, once each
    submitted = page.evaluate("() => fetch('/api/v1/map/count?status=submitted').then(r => r.json())")["count"]
    assert 0 < submitted < N
    page.wait_for_function("(n) => document.getElementById('report-count').textContent.includes(n)",
                           arg=f"{submitted:,}")
    assert re.search(r"#[\d.]+/[\d.]+/[\d.]+$", page.url)
    page.screenshot(path=str(tmp_path / "console-100k-submitted.png"))
    assert page.errors == [] and page.blocked == []
