"""Open data: the reports as GeoJSON (RFC 7946), CSV, XLSX and GeoPackage, and the streets as GeoJSON,
with the console's filters (the query parameters of GET /api/v1/reports: status, category, street,
unit, from, to, overdue, album, bbox). For the programme's readers (dispatchers, admins, leaders):
a file leaves the system, so nobody gets one of reports they could not list in full.

Every format is built from the one presenter (geoapp/present.py: `feature` for GeoJSON,
`report_row` for the tables), read by keyset in batches (domain/reports.iter_reports), and streamed
where the format allows (GeoJSON, CSV)."""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, abort, g, request, stream_with_context

from .. import present
from ..domain import audit
from ..domain.errors import ExportTooLarge
from ..domain.inputs import ReportQuery, validate
from ..domain.reports import count_reports, iter_reports
from ..domain.streets import streets_geojson
from ..domain.visibility import reads_programme
from ..translations import N_, translate
from ..db import close_quietly
from . import database, read_session, settings
from .doors import api_login_required, report_filter
from .auth import audit_now
from .i18n import current_language
from .tables import Sheet, attachment, csv_response, xlsx_bytes, xlsx_response

bp = Blueprint("exports", __name__)
api_bp = Blueprint("exports_api", __name__, url_prefix="/api/v1")

# One export is at most this many reports (XLSX holds 1,048,576 rows a sheet; a million-row GeoJSON
# is ~700 MB). The city's whole history fits; a bigger one is refused with how many matched (413).
MAX_ROWS = 1_000_000
FORMATS = ("geojson", "csv", "xlsx", "gpkg")


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)


def _readers_only() -> None:
    if not reads_programme(g.viewer):
        abort(403)


def _filename(ext: str) -> str:
    today = dt.datetime.now(ZoneInfo(settings().display_tz)).date().isoformat()
    return f"{translate(N_('随手拍问题'), current_language())}-{today}.{ext}"


def _matching():
    """The records the query string's filters match (refused above MAX_ROWS), read by a session of
    their own: a streamed body is generated after the view has returned and the request's session
    is closed, so the stream opens one and closes it when the last record is read (or the client goes)."""
    query = validate(ReportQuery, request.args.to_dict())
    flt = report_filter(query, g.viewer)
    session = database().sessionmaker()
    try:
        n = count_reports(session, flt)
        if n > MAX_ROWS:
            raise ExportTooLarge(n=n, limit=MAX_ROWS)
    except BaseException:
        close_quietly(session)
        raise
    # who took which reports out, and how many (等保: an export is an important action)
    audit_now(audit.EXPORT, object_type="reports", details={
        "format": request.view_args.get("fmt"), "rows": n,
        "filters": {k: v[:200] for k, v in request.args.items()}})
    return _closing(session, iter_reports(session, flt))


def _closing(session, records):
    try:
        yield from records
    finally:
        close_quietly(session)


@api_bp.get("/exports/reports.<fmt>")
@api_login_required
def reports_export(fmt: str):
    if fmt not in FORMATS:
        abort(404)
    _readers_only()
    records = _matching()
    lang, tz = current_language(), settings().display_tz
    if fmt == "geojson":
        return _geojson(records)
    headers = [translate(msgid, lang) for _key, msgid in present.REPORT_COLUMNS]
    keys = [key for key, _msgid in present.REPORT_COLUMNS]
    rows = ([row[k] for k in keys] for row in (present.report_row(r, lang, tz) for r in records))
    if fmt == "csv":
        return csv_response(headers, rows, _filename("csv"))
    if fmt == "xlsx":
        widths = [8, 8, 14, 8, 16, 10, 10, 10, 12, 12, 40, 10, 17, 24, 24, 17, 17, 8, 17, 17, 8, 8, 8]
        return xlsx_response(xlsx_bytes(Sheet(translate(N_("问题"), lang), headers, rows, widths=widths)),
                             _filename("xlsx"))
    return _geopackage(keys, [present.report_row(r, lang, tz) for r in records])


def _geojson(records) -> Response:
    """A FeatureCollection streamed feature by feature (each one present.feature, as the API gives)."""
    def generate():
        yield '{"type":"FeatureCollection","features":['
        for n, rec in enumerate(records):
            yield ("," if n else "") + json.dumps(present.feature(rec), ensure_ascii=False, default=str)
        yield "]}"
    return Response(stream_with_context(generate()), mimetype="application/geo+json",
                    headers={"Content-Disposition": attachment(_filename("geojson")),
                             "Cache-Control": "private, no-store"})


def _geopackage(keys: list[str], rows: list[dict]) -> Response:
    """An OGC GeoPackage (one point layer, WGS-84) written by GDAL through pyogrio, for GIS staff.
    Field names are the column keys (ASCII, as GIS tools prefer); the layer's description names them."""
    import numpy as np
    import pyogrio.raw
    import shapely

    columns = {}
    for key in keys:
        values = [row[key] for row in rows]
        if key == "id":
            columns[key] = np.array(values, dtype=np.int64)
        elif key in ("position_m", "distance_m", "lon", "lat", "reply_rating", "result_rating"):
            columns[key] = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        else:
            columns[key] = np.array(["" if v is None else (v.isoformat(sep=" ") if isinstance(v, dt.datetime)
                                                           else str(v)) for v in values], dtype=object)
    points = shapely.to_wkb(shapely.points([row["lon"] for row in rows], [row["lat"] for row in rows])) \
        if rows else np.array([], dtype=object)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reports.gpkg")
        pyogrio.raw.write(path, points, [columns[k] for k in keys], keys, layer="reports", driver="GPKG",
                          geometry_type="Point", crs="EPSG:4326", encoding="UTF-8")
        with open(path, "rb") as f:
            body = f.read()
    return Response(body, mimetype="application/geopackage+sqlite3",
                    headers={"Content-Disposition": attachment(_filename("gpkg")),
                             "Cache-Control": "private, no-store"})


@api_bp.get("/exports/streets.geojson")
@api_login_required
def streets_export():
    _readers_only()
    body = json.dumps(streets_geojson(read_session()), ensure_ascii=False)
    audit_now(audit.EXPORT, object_type="streets", details={"format": "geojson"})
    return Response(body, mimetype="application/geo+json",
                    headers={"Content-Disposition": attachment("streets.geojson"), "Cache-Control": "private, no-store"})
