"""Leaflet and its marker-cluster plugin, served by the app itself from the XStatic packages.

The city's intranet cannot reach a CDN, so no page may depend on one.
"""
from __future__ import annotations

import xstatic.pkg.leaflet
import xstatic.pkg.leaflet_markercluster
from flask import Blueprint, abort, send_from_directory, url_for

bp = Blueprint("assets", __name__, url_prefix="/vendor")

PACKAGES = {
    "leaflet": xstatic.pkg.leaflet.BASE_DIR,
    "leaflet-markercluster": xstatic.pkg.leaflet_markercluster.BASE_DIR,
}


@bp.get("/<package>/<path:filename>")
def vendor(package: str, filename: str):
    base = PACKAGES.get(package)
    if base is None:
        abort(404)
    return send_from_directory(base, filename, max_age=7 * 24 * 3600)


def vendor_url(package: str, filename: str) -> str:
    return url_for("assets.vendor", package=package, filename=filename)


@bp.app_context_processor
def _vendor_url():
    return {"vendor_url": vendor_url}


def release_tag(static_dir: str) -> str:
    """A short digest of every file under static/ and the vendored packages' versions: it changes
    whenever a file nginx serves changes, so those files may be cached for a year (deploy/nginx)."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    for path in sorted(Path(static_dir).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(static_dir)).encode())
            digest.update(path.read_bytes())
    for module in (xstatic.pkg.leaflet, xstatic.pkg.leaflet_markercluster):
        digest.update(module.VERSION.encode())
    return digest.hexdigest()[:12]


def init_app(app) -> None:
    """Every URL of a static or vendored file carries ?v=<release>, so a new release is a new URL."""
    tag = release_tag(app.static_folder)

    @app.url_defaults
    def _release(endpoint, values):
        if endpoint in ("static", "assets.vendor") and "v" not in values:
            values["v"] = tag
