"""/my/pin (the phone's pin form), its category search keys, the service worker and the manifest."""
import json
import re

from geoapp.domain.category_search import matches, search, search_keys
from geoapp.domain.taxonomy import category_tree


def _data_block(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="pin-data">(.*?)</script>', html, re.S)
    assert found, "the page has its data block"
    return json.loads(found.group(1))


def test_pin_page_needs_sign_in(client, users):
    r = client.get("/my/pin")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_pin_page_for_a_representative(client, users, signin):
    signin.login("rep03")
    r = client.get("/my/pin")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<meta name="csrf-token" content="' in html
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    # no inline script or style: every <script> is either a file or the JSON data block
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert " style=" not in html and "<style" not in html
    assert "vendor/exifr-7.1.3/lite.legacy.umd.js" in html

    data = _data_block(html)
    assert data["own_street"] == "S03"
    assert data["crs"] == "wgs84"
    assert data["max_photos"] == 3 and data["max_description"] == 2000
    assert any(f["properties"]["code"] == "S03" for f in data["streets"]["features"])
    assert data["labels"]["from_photo"].startswith("位置取自照片")
    assert data["queue_labels"]["queued"] == "已保存在手机，待发送"
    assert data["queue_labels"]["refused"] == "被退回：{message}"
    items = [i for c in data["categories"] for k in c["children"] for i in k["children"]]
    assert len(data["categories"]) == 3 and sum(len(c["children"]) for c in data["categories"]) == 7
    assert len(items) == 59
    manhole = next(i for i in items if i["code"] == "0103")
    assert manhole["name"] == "井盖缺失"
    assert {"0103", "井盖缺失", "jinggaiqueshi", "jgqs"} <= set(manhole["keys"])


def test_pin_page_in_english(client, users, signin):
    signin.login("rep03")
    data = _data_block(client.get("/my/pin?lang=en").get_data(as_text=True))
    items = {i["code"]: i for c in data["categories"] for k in c["children"] for i in k["children"]}
    assert items["0103"]["name"] == "Missing manhole cover"
    assert "jgqs" in items["0103"]["keys"]  # pinyin still works on an English page


def test_dispatcher_may_use_it(client, users, signin):
    signin.login("dispatcher")
    r = client.get("/my/pin")
    assert r.status_code == 200
    assert _data_block(r.get_data(as_text=True))["own_street"] is None


def test_category_search_keys(app):
    from geoapp.web import read_session

    with app.test_request_context():
        tree = category_tree(read_session())
    found = [i["name"] for i in search(tree, "jg")]
    assert "井盖缺失" in found and "井盖破损、移位" in found
    assert found[0].startswith("井盖")  # initials that start with the query come first
    assert [i["code"] for i in search(tree, "0103")] == ["0103"]
    assert "井盖缺失" in [i["name"] for i in search(tree, "jinggai")]
    assert "井盖缺失" in [i["name"] for i in search(tree, "井盖")]
    assert "井盖缺失" in [i["name"] for i in search(tree, "JG QS")]
    assert search(tree, "") == []
    keys = search_keys({"code": "0104", "name": "井盖破损、移位", "name_en": "Damaged manhole cover"})
    assert "jgpsyw" in keys and "damaged manhole cover" in keys
    assert matches(keys, "jg") and not matches(keys, "xyz")


def test_service_worker_is_served_for_the_whole_site(client):
    r = client.get("/sw.js")
    assert r.status_code == 200
    assert r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in r.headers["Cache-Control"]
    body = r.get_data(as_text=True)
    version = re.search(r'var VERSION = "([0-9a-f]+)";', body)
    assert version, "the server stamps the worker with the static files' digest"
    assert '"/my/pin"' in body and '"/api/v1/streets"' in body


def test_manifest(client):
    r = client.get("/manifest.webmanifest")
    assert r.status_code == 200
    assert r.mimetype == "application/manifest+json"
    m = r.get_json(force=True)
    assert m["name"] == "随手拍" and m["start_url"] == "/my" and m["display"] == "standalone"
    sizes = {i["sizes"]: i["src"] for i in m["icons"]}
    assert set(sizes) == {"192x192", "512x512"}
    for size, src in sizes.items():
        icon = client.get(src)
        assert icon.status_code == 200 and icon.mimetype == "image/png"
        from PIL import Image
        import io
        assert Image.open(io.BytesIO(icon.data)).size == tuple(int(n) for n in size.split("x"))


def test_pin_static_files_exist(client):
    for path in ("/static/js/pin.js", "/static/js/queue.js", "/static/js/sw-register.js", "/static/css/pin.css",
                 "/static/vendor/exifr-7.1.3/lite.legacy.umd.js", "/static/vendor/exifr-7.1.3/LICENSE"):
        assert client.get(path).status_code == 200, path
