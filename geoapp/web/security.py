"""Security headers on every response (Flask-Talisman): a Content-Security-Policy that allows only
this server's own scripts, styles and images (plus the basemap's tile host when TILE_URL is set),
no framing by other sites, no MIME sniffing, and a same-origin referrer policy.

The CSP forbids inline script and inline style attributes: pages keep their JavaScript and CSS in
static files, and user text can never become code in a page even if some escaping were missed.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from flask_talisman import Talisman

from ..config import Settings


def tile_source(tile_url: str) -> str | None:
    """The CSP source for a tile URL template: `https://t{s}.example.cn/{z}/...` -> `https://*.example.cn`."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    host = parts.hostname or ""
    if "{" in host:
        host = "*." + host.split(".", 1)[1]
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def content_security_policy(settings: Settings) -> dict:
    images = ["'self'", "data:"]
    if tile_source(settings.tile_url):
        images.append(tile_source(settings.tile_url))
    return {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": images,
        "connect-src": "'self'",
        "font-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def init_app(app: Flask, settings: Settings) -> None:
    https = bool(getattr(settings, "https", False))
    Talisman(
        app,
        force_https=False,  # TLS is the reverse proxy's job; GEOAPP_HTTPS only marks cookies Secure
        strict_transport_security=https,
        session_cookie_secure=https,
        content_security_policy=content_security_policy(settings),
        frame_options="DENY",
        referrer_policy="same-origin",
        # Talisman's default Permissions-Policy would forbid geolocation, which the phone pages need
        permissions_policy={"geolocation": "(self)", "camera": "(self)", "microphone": "()"},
    )
