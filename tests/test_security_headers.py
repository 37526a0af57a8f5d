"""Security headers on every page and API answer: a CSP with no third-party origin and no inline
script, no framing by other sites, no MIME sniffing, a referrer policy."""
import pytest

from geoapp.web.security import content_security_policy, tile_source


def csp(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split(None, 1)[1] if " " in d.strip() else "" for d in header.split(";") if d.strip()}


@pytest.mark.parametrize("path", ["/login", "/api/v1/streets", "/healthz", "/no-such-page"])
def test_every_answer_carries_the_headers(client, path):
    r = client.get(path)
    policy = csp(r)
    assert policy["frame-ancestors"] == "'none'" and policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in r.headers["Content-Security-Policy"]
    assert "http" not in r.headers["Content-Security-Policy"]  # no third-party origin
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_a_configured_basemap_host_is_the_only_addition(settings):
    import dataclasses

    s = dataclasses.replace(settings, tile_url="http://t{s}.tianditu.gov.cn/vec_w/wmts?tk=KEY&x={x}&y={y}&l={z}")
    assert content_security_policy(s)["img-src"] == ["'self'", "data:", "http://*.tianditu.gov.cn"]
    assert tile_source("https://tiles.intranet.gov:8443/{z}/{x}/{y}.png") == "https://tiles.intranet.gov:8443"
