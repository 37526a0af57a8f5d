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

from flask import Blueprint, render_template
from flask_babel import format_decimal, gettext as _
from flask_login import current_user

from .. import present
from ..domain.reports import ReportFilter, access_to, list_reports
from ..domain.visibility import Viewer
from ..domain.streets import streets_geojson, zones_geojson
from ..domain.taxonomy import category_tree
from ..translations import N_
from . import read_session, settings
from .auth import login_required
from .i18n import current_language

bp = Blueprint("maps", __name__)

MAP_REPORT_LIMIT = 5000  # newest first; a browser stays responsive with this many markers

# The layer names (map.js's layer switch) and the rows of a report's popup: (msgid, the marker's field).
LAYER_LABELS = {"streets": N_("重点街路"), "reports": N_("问题点"), "zones": N_("责任区"), "basemap": N_("底图")}
POPUP_ROWS = ((N_("街路"), "street"), (N_("类别"), "category"), (N_("派往"), "unit"), (N_("状态"), "status"),
              (N_("距街路"), "distance"), (N_("时间"), "time"))


def _street_features(fc: dict, lang: str) -> list[dict]:
    """Each street's geometry with its label and popup lines, as plain text."""
    out = []
    for f in fc["features"]:
        p = f["properties"]
        rep = p["representative"]["name"] if p.get("representative") else "—"
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": {
            "code": p["code"],
            "label": present.localized(p, "name", lang),
            "popup": [present.localized(p, "name", lang), _("%(start)s 至 %(end)s", start=p["from"], end=p["to"]),
                      _("长度：%(length)s", length=present.distance(p["length_m"], lang)), _("代表：%(name)s", name=rep)],
        }})
    return out


def _zone_outlines(fc: dict) -> dict:
    """The zones as the map draws them: outlines only (their names are not shown, so not sent)."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"], "properties": {"code": f["properties"]["code"]}}
        for f in fc["features"]]}


def map_data(session, lang: str, viewer: Viewer) -> dict:
    s = settings()
    reports, total = list_reports(session, ReportFilter(viewer=viewer, limit=MAP_REPORT_LIMIT))
    return {
        "labels": {k: _(msgid) for k, msgid in LAYER_LABELS.items()},
        "popup_rows": [[_(msgid), field] for msgid, field in POPUP_ROWS],
        "tiles": {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None,
        "streets": {"type": "FeatureCollection", "features": _street_features(streets_geojson(session), lang)},
        "zones": _zone_outlines(zones_geojson(session)),
        "reports": [present.marker(r, lang, s.display_tz, access_to(viewer, r)) for r in reports],
        "count": _("显示最新 %(n)s 条，共 %(total)s 条", n=format_decimal(len(reports)), total=format_decimal(total)),
    }


@bp.get("/map")
@login_required()
def show_map():
    lang = current_language()
    session = read_session()
    data = map_data(session, lang, Viewer.of(current_user.user))
    legend = [(present.localized(c, "name", lang), present.class_colour(c["code"])) for c in category_tree(session)]
    return render_template("maps/map.html", map_data=data, legend=legend)
