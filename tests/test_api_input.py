"""Bad input always gets a 4xx with a message in the request's language, never a 500; refusals
keep the {"error", "message"} shape on every path under /api/, routing errors included."""
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from tests.conftest import report_body

REPORTS = "/api/v1/reports"


def post_raw(client, auth, raw: str | bytes, lang="zh"):
    return client.post(f"{REPORTS}?lang={lang}", data=raw, headers=auth() | {"Content-Type": "application/json"})


def count_reports(client, auth) -> int:
    return client.get(REPORTS, headers=auth()).json["numberMatched"]


@pytest.mark.parametrize("name, change, field", [
    ("401-digit integer as lat", {"lat": 10 ** 400}, "lat"),
    ("NUL in description", {"description": "井盖\x00缺失"}, "description"),
    ("NUL in category", {"category": "04\x0001"}, "category"),
    ("other control character", {"description": "井盖\x1b[31m缺失"}, "description"),
    ("only invisible characters", {"description": "\u200b\u3000\u200d \ufeff"}, "description"),
    ("boolean as a number", {"lon": True}, "lon"),
    ("number with underscores", {"lat": "41_116"}, "lat"),
    ("non-ASCII digits", {"lat": "٤١.١"}, "lat"),
    ("nan", {"lat": "nan"}, "lat"),
    ("infinity", {"lon": "Infinity"}, "lon"),
    ("nil UUID", {"client_id": "00000000-0000-0000-0000-000000000000"}, "client_id"),
    ("object as description", {"description": {"a": 1}}, "description"),
    ("list as category", {"category": ["0401"]}, "category"),
    ("missing description", {"description": None}, "description"),
])
def test_bad_fields_are_refused_with_the_field_named(client, auth, streets, name, change, field):
    body = report_body(*streets.point("S03", 0.5)) | change
    r = client.post(f"{REPORTS}?lang=en", data=json.dumps(body), headers=auth() | {"Content-Type": "application/json"})
    assert r.status_code == 400, (name, r.status_code, r.get_data(as_text=True)[:200])
    assert r.json["error"] == "bad_input" and r.json["message"].startswith(f"{field}:"), r.json
    assert field in r.json["details"]["fields"]
    zh = client.post(f"{REPORTS}?lang=zh", data=json.dumps(body), headers=auth() | {"Content-Type": "application/json"})
    assert zh.status_code == 400 and "：" in zh.json["message"]
    assert count_reports(client, auth) == 0


def test_a_lone_surrogate_is_refused(client, auth, streets):
    body = json.dumps(report_body(*streets.point("S03", 0.5), description="PLACEHOLDER"))
    r = post_raw(client, auth, body.replace("PLACEHOLDER", "a\\ud800b"), lang="en")
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    assert "surrogate" in r.json["message"]


def test_json_nested_a_thousand_deep_is_refused(client, auth):
    r = post_raw(client, auth, "[" * 1000 + "]" * 1000)
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    r = post_raw(client, auth, '{"a":' * 1000 + "1" + "}" * 1000)
    assert r.status_code == 400 and r.json["error"] == "bad_input"


@pytest.mark.parametrize("crs, stored", [(" gcj02", "gcj02"), ("wgs84 ", "wgs84"), ("WGS84", "wgs84"),
                                         (None, "wgs84"), ("", "wgs84")])
def test_the_crs_is_normalised_before_it_is_checked_and_stored(client, auth, streets, crs, stored):
    from geoapp.domain.coords import wgs84_to_gcj02

    lon, lat = streets.point("S03", 0.5)
    if stored == "gcj02":
        lon, lat = wgs84_to_gcj02(lon, lat)
    r = client.post(REPORTS, json=report_body(lon, lat, crs=crs), headers=auth())
    assert r.status_code == 201, r.json
    assert r.json["reported"]["crs"] == stored and r.json["street"]["code"] == "S03"


def test_an_unknown_crs_names_the_ones_we_take(client, auth, streets):
    r = client.post(f"{REPORTS}?lang=en", json=report_body(*streets.point("S03", 0.5), crs="bd09"), headers=auth())
    assert r.status_code == 400 and r.json["error"] == "unknown_crs" and "gcj02" in r.json["message"]


def test_a_large_json_body_is_not_called_a_photo(client, auth, streets):
    body = report_body(*streets.point("S03", 0.5), description="x" * (12 * 1024 * 1024))
    r = client.post(f"{REPORTS}?lang=en", json=body, headers=auth())
    assert r.status_code == 413 and r.json["error"] == "body_too_large"
    assert "photo" not in r.json["message"].split(";")[0]
    assert count_reports(client, auth) == 0


def test_a_changed_replay_of_a_client_id_is_409_and_a_true_retry_200(client, auth, streets):
    body = report_body(*streets.point("S03", 0.5))
    first = client.post(REPORTS, json=body, headers=auth())
    assert first.status_code == 201
    assert client.post(REPORTS, json=body, headers=auth()).status_code == 200
    r = client.post(f"{REPORTS}?lang=en", json=body | {"description": "something else"}, headers=auth())
    assert r.status_code == 409 and r.json["error"] == "client_id_reused"
    assert str(first.json["id"]) in r.json["message"]
    assert count_reports(client, auth) == 1


@pytest.mark.parametrize("query", ["bbox=nan,41,121.2,41.2", "bbox=inf,41,121.2,41.2", "bbox=121,41,121.2,-inf",
                                   "limit=1_000", "limit=١٠", "offset=-1", "limit=1001", "limit=0x10",
                                   "bbox=121,41,121.2", "status=lost", "limit=", "bbox=1e999,41,121.2,41.2"])
def test_listing_parameters_are_strict(client, auth, query):
    r = client.get(f"{REPORTS}?{query}&lang=en", headers=auth())
    if query == "limit=":  # empty means "the default"
        assert r.status_code == 200
        return
    assert r.status_code == 400 and r.json["error"] == "bad_input", (query, r.json)


def test_paging_links_do_not_trust_the_host_header(client, auth, streets):
    for i in range(3):
        client.post(REPORTS, json=report_body(*streets.point("S03", 0.2 + i * 0.1)), headers=auth())
    r = client.get(f"{REPORTS}?limit=2", headers=auth() | {"Host": "evil.example"})
    links = r.json["links"]
    assert links and all(link["href"].startswith("/api/v1/reports?") for link in links)
    assert "evil.example" not in r.get_data(as_text=True)


@pytest.mark.parametrize("method, path, status, code", [
    ("get", "/api/v1/nothing-here", 404, "not_found"),
    ("get", "/api/v1/reports/999999", 404, "not_found"),
    ("delete", "/api/v1/reports", 405, "method_not_allowed"),
    ("put", "/api/v1/streets", 405, "method_not_allowed"),
])
def test_routing_errors_under_the_api_are_json_in_the_requests_language(client, auth, method, path, status, code):
    for lang, sample in (("zh", "找不到" if status == 404 else "不支持"), ("en", "nothing" if status == 404 else "accept")):
        r = getattr(client, method)(f"{path}?lang={lang}", headers=auth())
        assert r.status_code == status and r.mimetype == "application/json"
        assert r.json["error"] == code and sample in r.json["message"], r.json


def test_pages_get_a_page_for_a_404(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404 and r.mimetype == "text/html" and "找不到" in r.get_data(as_text=True)


# -- property test: whatever a client sends, the answer is never a 5xx -----------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                         st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-16"), max_size=10))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
field_values = {
    "client_id": st.one_of(st.uuids().map(str), json_values, st.just("00000000-0000-0000-0000-000000000000")),
    "lat": st.one_of(st.floats(40.9, 41.35), st.text(max_size=12), json_values, st.integers()),
    "lon": st.one_of(st.floats(120.85, 121.45), st.text(max_size=12), json_values, st.integers()),
    "crs": st.one_of(st.sampled_from(["wgs84", "gcj02", " GCJ02 ", "bd09", ""]), json_values),
    "category": st.one_of(st.sampled_from(["0401", "0102", "04", "9999"]), json_values),
    "description": st.one_of(st.text(max_size=60), json_values),
}
bodies = st.fixed_dictionaries({}, optional=field_values)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_request_body_yields_a_5xx(client, auth, body):
    try:
        raw = json.dumps(body, allow_nan=True)
    except (ValueError, UnicodeEncodeError):
        return
    r = post_raw(client, auth, raw)
    assert r.status_code < 500, (body, r.status_code, r.get_data(as_text=True)[:300])
    assert set(r.json) >= ({"error", "message"} if r.status_code >= 400 else {"id"})


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.dictionaries(st.sampled_from(["bbox", "status", "limit", "offset", "lang"]),
                            st.text(max_size=30), max_size=4))
def test_no_query_string_yields_a_5xx(client, auth, args):
    r = client.get(REPORTS, query_string=args, headers=auth())
    assert r.status_code in (200, 400), (args, r.status_code, r.get_data(as_text=True)[:300])


def test_a_multipart_submission_goes_through_the_same_schema(client, auth, streets):
    data = {k: str(v) for k, v in report_body(*streets.point("S03", 0.5)).items()} | {"lat": "41_116"}
    r = client.post(REPORTS, data=data, headers=auth(), content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"] == "bad_input"
    data["client_id"] = str(uuid.uuid4())
    data["lat"] = str(report_body(*streets.point("S03", 0.5))["lat"])
    assert client.post(REPORTS, data=data, headers=auth(), content_type="multipart/form-data").status_code == 201
