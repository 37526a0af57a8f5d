"""/map: the dispatcher's overview — the 29 key streets, labelled, and reports as clustered markers.

The page is a Jinja template plus one JavaScript module (static/js/map.js) over Leaflet and
Leaflet.markercluster, served locally (assets.py). Everything the map shows travels as data: one
JSON document inside `<script type="application/json">`, written by Flask's own `tojson` (which
escapes <, >, & and quotes), read by map.js and put on the page as text nodes. No report text, and
no street, unit or zone name (gis_data/ is replaceable by the city), ever passes through template
compilation or inline script. folium is not used here: branca compiles its rendered output again
as a Jinja template, which is how a report description became server-side code.
"""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for

from .. import present
from ..domain.reports import ReportFilter, list_reports
from ..domain.streets import streets_geojson, zones_geojson
from ..domain.taxonomy import category_tree
from . import read_session, settings
from .auth import login_required
from .i18n import current_language

bp = Blueprint("maps", __name__)

MAP_REPORT_LIMIT = 5000  # newest first; a browser stays responsive with this many markers

TEXT = {
    "zh": {"title": "随手拍问题地图", "streets": "重点街路", "reports": "问题点", "zones": "责任区",
           "street": "街路", "category": "类别", "unit": "派往", "status": "状态", "time": "时间",
           "distance": "距街路", "rep": "代表", "length": "长度", "shown": "显示最新 {n} 条，共 {total} 条",
           "basemap": "底图", "section": "{start} 至 {end}"},
    "en": {"title": "Snap-report map", "streets": "Key streets", "reports": "Reports", "zones": "Zones",
           "street": "Street", "category": "Category", "unit": "Dispatched to", "status": "Status",
           "time": "Time", "distance": "Off street", "rep": "Representative", "length": "Length",
           "shown": "showing the newest {n} of {total}", "basemap": "Basemap", "section": "{start} to {end}"},
}


def _street_features(fc: dict, t: dict, lang: str) -> list[dict]:
    """Each street's geometry with its label and popup lines, as plain text."""
    out = []
    for f in fc["features"]:
        p = f["properties"]
        rep = p["representative"]["name"] if p.get("representative") else "—"
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": {
            "code": p["code"],
            "label": present.localized(p, "name", lang),
            "popup": [present.localized(p, "name", lang), t["section"].format(start=p["from"], end=p["to"]),
                      f'{t["length"]}：{p["length_m"]:.0f} m', f'{t["rep"]}：{rep}'],
        }})
    return out


def map_data(session, lang: str) -> dict:
    t = TEXT[lang]
    s = settings()
    reports, total = list_reports(session, ReportFilter(limit=MAP_REPORT_LIMIT))
    return {
        "labels": {k: t[k] for k in ("streets", "reports", "zones", "basemap")},
        "popup_rows": [[t[k], k] for k in ("street", "category", "unit", "status", "distance", "time")],
        "tiles": {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None,
        "streets": {"type": "FeatureCollection", "features": _street_features(streets_geojson(session), t, lang)},
        "zones": zones_geojson(session),
        "reports": [present.marker(r, lang, s.display_tz) for r in reports],
        "count": t["shown"].format(n=len(reports), total=total),
    }


@bp.get("/")
def index():
    return redirect(url_for("maps.show_map"))


@bp.get("/map")
@login_required()
def show_map():
    lang = current_language()
    session = read_session()
    data = map_data(session, lang)
    legend = [(present.localized(c, "name", lang), present.class_colour(c["code"])) for c in category_tree(session)]
    return render_template("maps/map.html", t=TEXT[lang], map_data=data, legend=legend)
