"""/map as HTML: every asset local, user strings escaped (HTML and the JS template literals)."""
import re

import pytest

from tests.conftest import report_body
from tests.test_auth import login

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> `${window.__pwned=1}` \\u{"


@pytest.fixture
def client(client, users):
    login(client)
    return client


def test_the_map_uses_only_local_assets(client):
    html = client.get("/map").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(u.endswith("leaflet.js") for u in urls)
    assert any(u.endswith("leaflet.markercluster.js") for u in urls)
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    assert "cdn" not in html.lower()
    for url in urls:
        if url.startswith("/vendor/"):
            assert client.get(url).status_code == 200, url


def test_streets_are_drawn_and_labelled(client):
    html = client.get("/map").get_data(as_text=True)
    assert html.count("L.polyline(") == 29
    for name in ("解放路", "中央大街", "滨河路"):
        assert name in html
    assert "maxZoom" in html  # markercluster needs it when there is no tile layer
    assert 'lang="zh-CN"' in html
    assert 'lang="en"' in client.get("/map?lang=en").get_data(as_text=True)


def test_user_text_is_escaped_in_popups(client, auth, streets):
    r = client.post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5), description=HOSTILE),
                    headers=auth())
    assert r.status_code == 201
    html = client.get("/map").get_data(as_text=True)
    # report text travels only as JSON inside the script, with <, > and ' escaped…
    assert "<script>alert('x')</script>" not in html
    assert "<img src=x" not in html
    assert "\\u003cscript\\u003ealert(\\u0027x\\u0027)\\u003c/script\\u003e" in html
    # …and the popup is built from text nodes, never innerHTML (report_popup.js)
    assert "geoappReportPopup(r, rows)" in html
    js = client.get("/static/js/report_popup.js").get_data(as_text=True)
    assert "textContent" in js and "innerHTML" not in js


def test_street_labels_are_escaped_for_js_template_literals():
    from geoapp.web.maps import js_template_safe
    from markupsafe import escape

    assert js_template_safe(escape("`${x}`<b>\\")) == "&#96;&#36;{x}&#96;&lt;b&gt;&#92;"


def test_the_language_choice_is_remembered(client):
    assert 'lang="en"' in client.get("/map?lang=en").get_data(as_text=True)
    assert 'lang="en"' in client.get("/map").get_data(as_text=True)
    assert 'lang="zh-CN"' in client.get("/map?lang=zh").get_data(as_text=True)
    assert 'lang="zh-CN"' in client.get("/map").get_data(as_text=True)
