"""/map: the dispatcher's console map — the 29 key streets coloured by their open problems, and every
report the viewer may see, clustered on the server (domain/map_cells.py) and loaded tile by tile as
the map moves, so neither the page nor a pan grows with the number of reports.

The page is a Jinja template plus one JavaScript module (static/js/map.js) over Leaflet, served
locally (assets.py). What the page needs to start travels as one JSON document inside
`<script type="application/json">`, written by Flask's own `tojson` (which escapes <, >, & and
quotes); reports come from the API (GET /api/v1/map/cells, /api/v1/map/count, /api/v1/reports/<id>)
and reach the page as text nodes. No report text, and no street, unit or zone name (gis_data/ is
replaceable by the city), ever passes through template compilation or inline script. folium is not
used here: branca compiles its rendered output again as a Jinja template, which is how a report
description became server-side code.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from ..core.permissions import roles_with
from .. import present
from ..domain import map_cells
from ..domain.inputs import ReportQuery, validate
from ..domain.reports import ReportFilter
from ..domain.streets import streets_geojson, zones_geojson
from ..domain.taxonomy import category_tree, unit_list
from ..domain.visibility import Viewer
from ..domain.vocabulary import FINISHED_STATUSES, REPORT_STATUSES
from ..translations import N_
from . import read_session, settings
from .doors import api_login_required, report_filter
from .auth import login_required
from .i18n import current_language

bp = Blueprint("maps", __name__)

# The page's words (map.js reads them from the JSON data; msgids, said in the reader's language).
LABELS = {
    "streets": N_("重点街路"), "reports": N_("问题点"), "zones": N_("责任区"),
    "count": N_("{n} 条问题符合条件"), "counting": N_("正在统计…"), "load_error": N_("地图数据加载失败，请重试。"),
    "street_list": N_("{street}：未办结问题 {n} 条"), "report_page": N_("详情"), "none": N_("没有未办结的问题。"),
    "distance": N_("{n} 米"),
}
# The rows of a report's popup: (msgid, the field report_popup.js fills in).
POPUP_ROWS = ((N_("街路"), "street"), (N_("类别"), "category"), (N_("派往"), "unit"), (N_("状态"), "status"),
              (N_("距街路"), "distance"), (N_("时间"), "time"))
# Streets by their number of open problems: upper bounds of the classes (a sequential scale,
# light to dark, readable by colour-blind eyes) — the last class is open-ended.
OPEN_CLASSES = ((0, "#9e9e9e"), (9, "#fdd49e"), (49, "#fc8d59"), (199, "#d7301f"), (None, "#7f0000"))


def _street_features(fc: dict, lang: str, open_counts: dict[str, int]) -> list[dict]:
    """Each street's geometry with its label, its open problems and its popup lines, as plain text."""
    out = []
    for f in fc["features"]:
        p = f["properties"]
        rep = p["representative"]["name"] if p.get("representative") else "—"
        out.append({"type": "Feature", "geometry": f["geometry"], "properties": {
            "code": p["code"],
            "label": present.localized(p, "name", lang),
            "open": open_counts.get(p["code"], 0),
            "popup": [present.localized(p, "name", lang), _("%(start)s 至 %(end)s", start=p["from"], end=p["to"]),
                      _("长度：%(length)s", length=present.distance(p["length_m"], lang)), _("代表：%(name)s", name=rep)],
        }})
    return out


def _zone_outlines(fc: dict) -> dict:
    """The zones as the map draws them: outlines only (their names are not shown, so not sent)."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f["geometry"], "properties": {"code": f["properties"]["code"]}}
        for f in fc["features"]]}


def _categories(tree: list[dict], lang: str) -> list[dict]:
    """The class / category / item choices of the filter, as (code, depth, name) in tree order."""
    out = []

    def walk(nodes, depth):
        for node in nodes:
            out.append({"code": node["code"], "depth": depth, "name": present.localized(node, "name", lang)})
            walk(node.get("children", ()), depth + 1)
    walk(tree, 0)
    return out


def map_data(session, lang: str, viewer: Viewer) -> dict:
    s = settings()
    open_counts = map_cells.open_by_street(session, viewer)
    return {
        "lang": lang,
        "tz": s.display_tz,
        "labels": {k: _(msgid) for k, msgid in LABELS.items()},
        "popup_rows": [[_(msgid), field] for msgid, field in POPUP_ROWS],
        "tiles": {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None,
        "streets": {"type": "FeatureCollection",
                    "features": _street_features(streets_geojson(session), lang, open_counts)},
        "zones": _zone_outlines(zones_geojson(session)),
        "statuses": [{"code": st, "label": present.status_label(st, lang), "colour": present.status_colour(st)}
                     for st in REPORT_STATUSES],
        "open_statuses": [st for st in REPORT_STATUSES if st not in FINISHED_STATUSES],
        "open_classes": [[upper, colour] for upper, colour in OPEN_CLASSES],
        "categories": _categories(category_tree(session), lang),
        "units": [{"code": u["code"], "name": present.localized(u, "name", lang)} for u in unit_list(session)],
        "points_zoom": map_cells.POINTS_ZOOM,
        # the lead's console pages (/console/reports/<id>) are for those who see every report
        "console": viewer.sees_everything,
    }


@bp.get("/map")
@login_required(*roles_with("programme.use"))
def show_map():
    lang = current_language()
    data = map_data(read_session(), lang, Viewer.of(current_user.user))
    return render_template("maps/map.html", map_data=data)


def _report_filter(viewer: Viewer) -> ReportFilter:
    """The console's filters, read exactly as GET /api/v1/reports reads them (ReportQuery)."""
    return report_filter(validate(ReportQuery, request.args.to_dict()), viewer)


@bp.get("/api/v1/map/cells")
@api_login_required
def map_cells_view():
    """Clusters and single reports for a rectangle of tiles: ?z=13&tiles=x0,y0,x1,y1&<filters>."""
    view = map_cells.TileView.parse(request.args.get("z"), request.args.get("tiles"))
    flt = _report_filter(g.viewer)
    cells = map_cells.clusters(read_session(), flt, view)
    return jsonify({"z": view.z, "tiles": [view.x0, view.y0, view.x1, view.y1], "cells": cells})


@bp.get("/api/v1/map/count")
@api_login_required
def map_count_view():
    """How many reports match the filters in the whole city (what the viewer may see)."""
    return jsonify({"count": map_cells.count(read_session(), _report_filter(g.viewer))})
