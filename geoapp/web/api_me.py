"""The phone's own API: GET /api/v1/me (who I am, my street, this month's quota) and GET /api/v1/snap
(where a pin would land, before sending: the very rule intake applies)."""
from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, g, jsonify, request
from flask_babel import format_decimal, gettext as _
from sqlalchemy import func, select

from .. import present
from ..domain.inputs import SnapQuery, validate
from ..domain.quota import monthly_progress
from ..domain.reports import ReportFilter, access_to, list_reports
from ..domain.snapping import locate
from ..domain.vocabulary import NEARBY_ALONG_M
from ..models import Report, Street
from . import read_session, settings
from .doors import api_login_required
from .i18n import current_language

bp = Blueprint("api_me", __name__, url_prefix="/api/v1")


def _metres(value: float) -> str:
    return format_decimal(round(value), format="#,##0")


@bp.get("/me")
@api_login_required
def me():
    session, user, s = read_session(), g.user, settings()
    lang = current_language()
    body = {"user": {"id": user.id, "username": user.username, "display_name": user.display_name,
                     "role": user.role},
            "street": None, "representative": None, "quota": None}
    rep = user.representative
    if rep is not None:
        row = session.execute(
            select(Street.id, Street.code, Street.name, Street.name_en, Street.from_name, Street.to_name,
                   Street.length_m, func.ST_AsGeoJSON(Street.geom, 7).label("geometry"))
            .where(Street.id == rep.street_id)).one()
        body["street"] = {"id": row.id, "code": row.code, "name": row.name, "name_en": row.name_en,
                          "label": present.localized(row._mapping, "name", lang),
                          "from_name": row.from_name, "to_name": row.to_name,
                          "length_m": round(row.length_m, 1), "geometry": json.loads(row.geometry)}
        body["representative"] = {"name": rep.name, "kind": rep.kind}
        progress = monthly_progress(session, user, dt.datetime.now(dt.timezone.utc), s.display_tz)
        body["quota"] = {"month": progress.month, "taken": progress.taken, "quota": progress.quota,
                         "days_left": progress.days_left, "met": progress.met,
                         "text": _("已拍 %(taken)s / %(quota)s 张", taken=progress.taken, quota=progress.quota),
                         "days_left_text": _("本月还剩 %(n)s 天", n=progress.days_left)}
    counts = session.execute(select(Report.status, func.count()).where(Report.reporter_id == user.id)
                             .group_by(Report.status)).all()
    body["counts"] = {status: n for status, n in counts}
    return jsonify(body)


@bp.get("/snap")
@api_login_required
def snap():
    query = validate(SnapQuery, request.args.to_dict())
    s, session = settings(), read_session()
    _point, found = locate(session, query.lon, query.lat, query.crs, s.city_bbox, s.snap_tolerance_m)
    lang = current_language()
    street = session.execute(select(Street.id, Street.code, Street.name, Street.name_en)
                             .where(Street.id == found.street_id)).one()
    name = present.localized(street._mapping, "name", lang)
    body = {"street": {"id": street.id, "code": street.code, "name": street.name, "name_en": street.name_en},
            "distance_m": round(found.distance_m, 1), "position_m": round(found.position_m, 1),
            "tolerance_m": s.snap_tolerance_m, "on_own_street": g.viewer.street_id == found.street_id,
            "text": _("%(street)s，距街路 %(distance)s 米，距起点 %(position)s 米", street=name,
                      distance=_metres(found.distance_m), position=_metres(found.position_m)),
            "nearby": [], "nearby_text": None}
    if query.category is not None:
        flt = ReportFilter(category=query.category, open_only=True, viewer=g.viewer, limit=20,
                           along=(found.street_id, found.position_m, NEARBY_ALONG_M))
        records, total = list_reports(session, flt)
        body["nearby"] = [present.report(r, access_to(g.viewer, r)) for r in records]
        if total:
            body["nearby_text"] = _("附近已有 %(n)s 条同类问题", n=total)
    return jsonify(body)
