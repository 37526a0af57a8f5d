"""/map as HTML: every asset local, its data as JSON (never template source, never inline script);
reports come from the API (tests/test_map_cells.py counts them), their text only ever as data."""
import json
import re

import pytest

from tests.conftest import report_body
from tests.test_auth import login

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> `${window.__pwned=1}` \\u{"
# Template syntax that branca/folium would once have compiled and run on the server.
TEMPLATE_PROBES = ["PROBE {{ 7*7 }}", "{% raw %}", "{# x", "{{ config }}",
                   "{{ cycler.__init__.__globals__.os.popen('id').read() }}"]


@pytest.fixture
def client(client, users):
    login(client)
    return client


def map_data(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(block)


def test_the_map_uses_only_local_assets_and_no_inline_script(client):
    html = client.get("/map").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    files = [u.split("?v=")[0] for u in urls]  # static URLs carry the release (web/assets.py)
    assert any(u.endswith("leaflet.js") for u in files)
    assert any(u.endswith("map.js") for u in files) and any(u.endswith("report_popup.js") for u in files)
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    assert "cdn" not in html.lower()
    for url in urls:
        if url.startswith(("/vendor/", "/static/")):
            assert client.get(url).status_code == 200, url
    # every <script> either loads a file or carries JSON data: nothing for a CSP to allow inline
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert 'src="' in attrs or 'type="application/json"' in attrs, attrs
    assert " style=" not in html and "<style" not in html


def test_streets_zones_and_reports_travel_as_data(client, auth, streets):
    assert client.post("/api/v1/reports", json=report_body(*streets.point("S03", 0.5)), headers=auth()).status_code == 201
    data = map_data(client.get("/map").get_data(as_text=True))
    assert len(data["streets"]["features"]) == 29
    labels = {f["properties"]["label"] for f in data["streets"]["features"]}
    assert {"解放路", "中央大街", "滨河路"} <= labels
    assert {f["properties"]["code"]: f["properties"]["open"] for f in data["streets"]["features"]}["S03"] == 1
    assert data["zones"]["features"]
    assert "reports" not in data  # no report travels in the page: the map asks for the tiles it shows
    assert {s["code"]: s["label"] for s in data["statuses"]}["submitted"] == "已提交"
    assert all(s["colour"].startswith("#") for s in data["statuses"])
    en = map_data(client.get("/map?lang=en").get_data(as_text=True))
    assert {s["code"]: s["label"] for s in en["statuses"]}["submitted"] == "Submitted"
    assert "Jiefang Road" in {f["properties"]["label"] for f in en["streets"]["features"]}
    assert client.get("/api/v1/map/count").json == {"count": 1}  # the page's own session


@pytest.mark.parametrize("probe", TEMPLATE_PROBES + [HOSTILE])
def test_report_text_is_never_compiled_as_a_template(client, auth, streets, probe):
    lon, lat = streets.point("S03", 0.5)
    r = client.post("/api/v1/reports", json=report_body(lon, lat, description=probe), headers=auth())
    assert r.status_code == 201, r.json
    page = client.get("/map")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "PROBE 49" not in html and "uid=" not in html
    assert "<script>alert" not in html and "<img src=x" not in html
    # the popup's text comes from the API, exactly as written, as JSON data
    assert client.get(f"/api/v1/reports/{r.json['id']}").json["description"] == probe
    cells = client.get("/api/v1/map/cells?z=16&tiles=" + ",".join(map(str, _tile(16, lon, lat) * 2))).get_data(as_text=True)
    assert str(r.json["id"]) in cells and "PROBE" not in cells and "alert" not in cells


def _tile(z, lon, lat):
    import math
    n, s = 2 ** z, math.sin(math.radians(lat))
    return (int((lon + 180) / 360 * n), int((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n))


def test_city_data_names_are_data_too(client, db):
    """Street names come from gis_data/, which a city replaces: they must not be code either."""
    from sqlalchemy import text

    with db.transaction() as s:
        s.execute(text("UPDATE streets SET name = :n WHERE code = 'S03'"), {"n": "解放路{{ 7*7 }}</script><b>"})
    try:
        page = client.get("/map")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        labels = {f["properties"]["label"] for f in map_data(html)["streets"]["features"]}
        assert "解放路{{ 7*7 }}</script><b>" in labels and "解放路49" not in html
    finally:
        with db.transaction() as s:
            s.execute(text("UPDATE streets SET name = '解放路' WHERE code = 'S03'"))


def test_the_language_choice_is_remembered(client):
    assert 'lang="en"' in client.get("/map?lang=en").get_data(as_text=True)
    assert 'lang="en"' in client.get("/map").get_data(as_text=True)
    assert 'lang="zh-CN"' in client.get("/map?lang=zh").get_data(as_text=True)
    assert 'lang="zh-CN"' in client.get("/map").get_data(as_text=True)


def test_no_template_engine_meets_user_text_in_the_map_code():
    """The map view does not import folium or branca at all (they compile their output as Jinja)."""
    from pathlib import Path

    import geoapp.web.maps as maps

    source = Path(maps.__file__).read_text()
    assert "import folium" not in source and "branca" not in source.replace("branca compiles", "")
