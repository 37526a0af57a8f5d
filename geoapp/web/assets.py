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
