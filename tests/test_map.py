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
    assert "<script>alert('x')</script>" not in html
    assert "<img src=x" not in html
    assert "${window.__pwned" not in html and "`${" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&#96;&#36;{window.__pwned=1}&#96;" in html
