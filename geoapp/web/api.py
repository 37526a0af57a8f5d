"""/api/v1: JSON and GeoJSON (RFC 7946). Authenticated by `Authorization: Bearer <api key>`."""
from __future__ import annotations

import functools

from flask import Blueprint, abort, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..domain.accounts import user_for_key
from ..domain.errors import BadInput, DomainError, PhotoTooLarge
from ..domain.intake import IntakeRules, Reporter, Submission, submit_report
from ..domain.reports import get_report, list_reports
from ..domain.streets import streets_geojson
from ..domain.taxonomy import category_tree
from ..models import REPORT_STATUSES
from . import database, read_session, settings
from .i18n import current_language

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def error_response(code: str, message: str, status: int, details: dict | None = None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


@bp.errorhandler(DomainError)
def _domain_error(err: DomainError):
    details = {k: v for k, v in err.params.items() if not k.endswith("_zh")}
    return error_response(err.code, err.message(current_language()), err.status, details)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err):
    s = settings()
    size = (request.content_length or 0) / 1024 / 1024
    return _domain_error(PhotoTooLarge(size_mb=size, max_mb=s.upload_max_mb))


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return error_response(err.name.lower().replace(" ", "_"), err.description or err.name, err.code or 500)


def _unauthorized():
    zh = "需要有效的 API 密钥（请求头 Authorization: Bearer <密钥>）。"
    en = "A valid API key is required (header Authorization: Bearer <key>)."
    resp, status = error_response("unauthorized", en if current_language() == "en" else zh, 401)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="geoapp"'
    return resp, status


def api_key_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        user = user_for_key(read_session(), key.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return _unauthorized()
        g.user = user
        return view(*args, **kwargs)
    return wrapper


def _intake_rules() -> IntakeRules:
    s = settings()
    return IntakeRules(
        city_bbox=s.city_bbox,
        snap_tolerance_m=s.snap_tolerance_m,
        photo_dir=s.photo_dir,
        photo_max_bytes=int(s.upload_max_mb * 1024 * 1024),
        photo_max_px=s.photo_max_px,
    )


def _submission_from_request() -> Submission:
    if request.mimetype == "multipart/form-data" or request.mimetype == "application/x-www-form-urlencoded":
        form = request.form
        upload = request.files.get("photo")
        # a form with no file chosen still sends an empty part with an empty file name
        photo = upload.read() if upload is not None and upload.filename else None
        fields = {k: form.get(k) for k in ("client_id", "lat", "lon", "crs", "category", "description")}
        return Submission(**fields, photo=photo)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput(field="body", field_zh="请求体",
                       problem="send a JSON object, or multipart/form-data when attaching a photo",
                       problem_zh="须为 JSON 对象；附带照片时使用 multipart/form-data。")
    fields = {k: body.get(k) for k in ("client_id", "lat", "lon", "crs", "category", "description")}
    if fields["crs"] is None:
        fields["crs"] = "wgs84"
    return Submission(**fields)


@bp.post("/reports")
@api_key_required
def create_report():
    submission = _submission_from_request()
    user = g.user
    street_id = user.representative.street_id if user.representative is not None else None
    reporter = Reporter(user_id=user.id, role=user.role, street_id=street_id)
    with database().transaction() as session:
        report, created = submit_report(session, reporter, submission, _intake_rules())
    return jsonify(report), 201 if created else 200


@bp.get("/reports/<int:report_id>")
@api_key_required
def show_report(report_id: int):
    report = get_report(read_session(), report_id)
    if report is None:
        abort(404)
    return jsonify(report)


def _parse_bbox(raw: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(p) for p in raw.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise BadInput(field="bbox", field_zh="bbox", problem="must be min_lon,min_lat,max_lon,max_lat",
                       problem_zh="格式须为 最小经度,最小纬度,最大经度,最大纬度。")
    return parts  # type: ignore[return-value]


def _parse_int(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise BadInput(field=name, field_zh=name, problem=f"must be an integer from {lo} to {hi}",
                       problem_zh=f"须为 {lo} 到 {hi} 之间的整数。")
    return value


def _feature(report: dict) -> dict:
    props = {k: v for k, v in report.items() if k not in ("lat", "lon")}
    return {"type": "Feature", "id": report["id"],
            "geometry": {"type": "Point", "coordinates": [report["lon"], report["lat"]]},
            "properties": props}


@bp.get("/reports")
@api_key_required
def index_reports():
    bbox = _parse_bbox(request.args["bbox"]) if request.args.get("bbox") else None
    statuses = [s for s in request.args.get("status", "").split(",") if s]
    unknown = [s for s in statuses if s not in REPORT_STATUSES]
    if unknown:
        raise BadInput(field="status", field_zh="status", problem=f"unknown status {unknown[0]!r}",
                       problem_zh=f"未知状态“{unknown[0]}”。")
    limit = _parse_int("limit", 100, 1, settings().api_page_size_max)
    offset = _parse_int("offset", 0, 0, 10**9)
    reports, total = list_reports(read_session(), bbox=bbox, statuses=statuses, limit=limit, offset=offset)
    links = []
    if offset + len(reports) < total:
        args = dict(request.args, offset=offset + limit, limit=limit)
        links.append({"rel": "next", "href": _url_with(args)})
    if offset > 0:
        args = dict(request.args, offset=max(offset - limit, 0), limit=limit)
        links.append({"rel": "prev", "href": _url_with(args)})
    body = {"type": "FeatureCollection", "features": [_feature(r) for r in reports],
            "numberMatched": total, "numberReturned": len(reports), "links": links}
    if bbox is not None:
        body["bbox"] = list(bbox)
    return jsonify(body)


def _url_with(args: dict) -> str:
    from urllib.parse import urlencode

    return request.base_url + "?" + urlencode(args)


@bp.get("/streets")
def streets():
    return jsonify(streets_geojson(read_session()))


@bp.get("/categories")
def categories():
    return jsonify({"classes": category_tree(read_session())})
