"""/map: the dispatcher's overview — the 29 key streets, labelled, and reports as clustered markers.

Built with folium, but every asset folium would fetch from a CDN is replaced by one this app
serves (see assets.py); with no TILE_URL set, the streets draw on a plain background.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import folium
from branca.element import MacroElement
from jinja2 import Template
from flask import Blueprint, redirect, render_template, url_for
from folium.plugins import MarkerCluster
from markupsafe import Markup, escape

from ..domain.reports import list_reports
from ..domain.streets import streets_geojson, zones_geojson
from ..domain.taxonomy import category_tree
from . import read_session, settings
from .assets import vendor_url
from .auth import current_user, login_required
from .i18n import current_language

bp = Blueprint("maps", __name__)

MAP_REPORT_LIMIT = 5000  # newest first; a browser stays responsive with this many markers
CITY_CENTRE = (41.115, 121.125)  # 古塔区 seat; the view is fitted to the streets anyway

# Marker colour per album class (A 公用设施, B 环境卫生与园林绿化, C 城市容貌)
CLASS_COLOURS = {"A": "#1f6feb", "B": "#2da44e", "C": "#d4380d"}

TEXT = {
    "zh": {"title": "随手拍问题地图", "streets": "重点街路", "reports": "问题点", "zones": "责任区",
           "street": "街路", "category": "类别", "unit": "派往", "status": "状态", "time": "时间",
           "distance": "距街路", "rep": "代表", "length": "长度", "shown": "显示最新 {n} 条，共 {total} 条",
           "basemap": "底图", "plain": "无底图", "status_submitted": "已提交"},
    "en": {"title": "Snap-report map", "streets": "Key streets", "reports": "Reports", "zones": "Zones",
           "street": "Street", "category": "Category", "unit": "Dispatched to", "status": "Status",
           "time": "Time", "distance": "Off street", "rep": "Representative", "length": "Length",
           "shown": "showing the newest {n} of {total}", "basemap": "Basemap", "plain": "No basemap",
           "status_submitted": "submitted"},
}


def _local_assets(m: folium.Map, cluster: MarkerCluster) -> None:
    # folium's popups build their content with jQuery
    m.default_js = [("leaflet", vendor_url("leaflet", "leaflet.js")),
                    ("jquery", vendor_url("jquery", "jquery.min.js"))]
    m.default_css = [("leaflet_css", vendor_url("leaflet", "leaflet.css"))]
    cluster.default_js = [("markerclusterjs", vendor_url("leaflet-markercluster", "leaflet.markercluster.js"))]
    cluster.default_css = [
        ("markerclustercss", vendor_url("leaflet-markercluster", "MarkerCluster.css")),
        ("markerclusterdefaultcss", vendor_url("leaflet-markercluster", "MarkerCluster.Default.css")),
    ]


def js_template_safe(html: Markup) -> str:
    """folium places popup and tooltip HTML (used for the streets) inside JavaScript template literals (`...`), where
    HTML escaping is not enough: a backtick ends the literal and ${...} runs code. Those
    characters become HTML entities, which display the same."""
    return str(html).replace("\\", "&#92;").replace("`", "&#96;").replace("$", "&#36;")


def local_time(iso: str) -> str:
    tz = ZoneInfo(settings().display_tz)
    return dt.datetime.fromisoformat(iso).astimezone(tz).strftime("%Y-%m-%d %H:%M")


class ReportMarkers(MacroElement):
    """All report markers from one JSON array, added to the parent cluster layer in a loop.

    One element instead of thousands of folium objects keeps /map fast; popups are built in the
    browser from text nodes (static/js/report_popup.js), and `tojson` escapes <, >, & and quotes,
    so user text cannot leave its JSON string.
    """

    _template = Template("""
    {% macro script(this, kwargs) %}
    (function () {
      var reports = {{ this.reports|tojson }};
      var rows = {{ this.rows|tojson }};
      var layer = {{ this._parent.get_name() }};
      var markers = reports.map(function (r) {
        var m = L.circleMarker([r.lat, r.lon], {radius: 7, weight: 2, color: "#fff", fill: true,
                                                fillColor: r.colour, fillOpacity: 0.9});
        m.report = r;
        m.bindPopup(function () { return geoappReportPopup(r, rows); }, {maxWidth: 320});
        return m;
      });
      layer.addLayers(markers);
    })();
    {% endmacro %}
    """)

    def __init__(self, reports: list[dict], rows: list[tuple[str, str]]):
        super().__init__()
        self._name = "ReportMarkers"
        self.reports = reports
        self.rows = rows


def _marker_data(r: dict, t: dict, lang: str) -> dict:
    category = r["category"]["name_en"] if lang == "en" else r["category"]["name"]
    return {
        "id": r["id"], "lat": r["lat"], "lon": r["lon"], "colour": _class_colour(r),
        "description": r["description"], "street": r["street"]["name"],
        "category": f'{r["category"]["code"]} {category}', "unit": r["unit"]["name"],
        "status": t.get(f"status_{r['status']}", r["status"]), "distance": f'{r["distance_m"]:.0f} m',
        "time": local_time(r["created_at"]),
    }


def build_map(session, lang: str) -> tuple[folium.Map, dict]:
    t = TEXT[lang]
    s = settings()
    m = folium.Map(location=CITY_CENTRE, zoom_start=13, tiles=None, control_scale=True,
                   # markercluster needs the map's own maxZoom when no tile layer provides one
                   maxZoom=19, minZoom=10)
    cluster = MarkerCluster(name=t["reports"], show=True)
    _local_assets(m, cluster)

    if s.tile_url:
        folium.TileLayer(tiles=s.tile_url, attr=s.tile_attribution or " ", name=t["basemap"],
                         max_zoom=19).add_to(m)

    zones = folium.FeatureGroup(name=t["zones"], show=False)
    folium.GeoJson(zones_geojson(session), style_function=lambda _f: {
        "color": "#888", "weight": 1, "fillColor": "#bbb", "fillOpacity": 0.08, "dashArray": "4 4"},
        tooltip=None).add_to(zones)
    zones.add_to(m)

    streets = folium.FeatureGroup(name=t["streets"], show=True)
    street_fc = streets_geojson(session)
    for feature in street_fc["features"]:
        p = feature["properties"]
        name = p["name_en"] if lang == "en" else p["name"]
        rep = p["representative"]["name"] if p.get("representative") else "—"
        for line in _lines(feature["geometry"]):
            folium.PolyLine(
                [(lat, lon) for lon, lat in line], color="#3b3b98", weight=5, opacity=0.85,
                tooltip=folium.Tooltip(js_template_safe(escape(name)), permanent=True, direction="center",
                                       class_name="street-label"),
                popup=folium.Popup(folium.Html(js_template_safe(Markup(
                    "<b>{}</b><br>{} → {}<br>{}：{:.0f} m<br>{}：{}").format(
                    p["name"], p["from"], p["to"], t["length"], p["length_m"], t["rep"], rep)), script=True)),
                className="street-line",
            ).add_to(streets)
    streets.add_to(m)

    reports, total = list_reports(session, limit=MAP_REPORT_LIMIT)
    rows = [(t["street"], "street"), (t["category"], "category"), (t["unit"], "unit"), (t["status"], "status"),
            (t["distance"], "distance"), (t["time"], "time")]
    ReportMarkers([_marker_data(r, t, lang) for r in reports], rows).add_to(cluster)
    cluster.add_to(m)

    folium.LayerControl(collapsed=False).add_to(m)
    if street_fc["features"]:
        bounds = _bounds(street_fc)
        m.fit_bounds(bounds, padding=(20, 20))
    return m, {"shown": len(reports), "total": total}


def _class_colour(report: dict) -> str:
    return CLASS_COLOURS.get(report["category"]["class_code"], "#6e40c9")


def _lines(geometry: dict) -> list:
    return geometry["coordinates"] if geometry["type"] == "MultiLineString" else [geometry["coordinates"]]


def _bounds(fc: dict) -> list[list[float]]:
    points = [pt for f in fc["features"] for line in _lines(f["geometry"]) for pt in line]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return [[min(lats), min(lons)], [max(lats), max(lons)]]


@bp.get("/")
def index():
    return redirect(url_for("maps.show_map"))


@bp.get("/map")
@login_required()
def show_map():
    lang = current_language()
    m, counts = build_map(read_session(), lang)
    root = m.get_root()
    root.render()  # resolves folium's element tree into header / html / script parts
    t = TEXT[lang]
    return render_template(
        "maps/map.html",
        t=t,
        map_header=Markup(root.header.render()),
        map_html=Markup(root.html.render()),
        map_script=Markup(root.script.render()),
        shown=t["shown"].format(n=counts["shown"], total=counts["total"]),
        user=current_user(),
        legend=[(c["name_en"] if lang == "en" else c["name"], CLASS_COLOURS.get(c["code"], "#6e40c9"))
                for c in category_tree(read_session())],
    )
