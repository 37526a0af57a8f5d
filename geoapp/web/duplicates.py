"""Duplicate suggestions for dispatchers: GET /api/v1/duplicates, POST /api/v1/duplicates/merge, and
the page /console/duplicates that shows the groups and merges one in one click.

The grouping and the merge are geoapp/domain/duplicates.py; here a group's members are read back as
whole reports (domain/reports.py) and shown the way every other surface shows a report (present.py).
The page renders the groups server-side (Jinja escapes every text); its script (static/js/duplicates.js)
only sends the merge and says what happened, as text nodes.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, abort, g, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..core.permissions import roles_with
from .. import present
from ..core import reports as core_reports
from ..domain import lifecycle
from ..domain.duplicates import default_survivor, duplicate_groups
from ..domain.errors import UnknownStreet
from ..domain.inputs import DuplicateQuery, MergeInput, validate
from ..domain.reports import ReportFilter, access_to, list_reports
from ..domain.visibility import Viewer
from ..models import Street
from ..translations import N_
from . import database, read_session, settings
from .doors import api_login_required, json_object, report_body
from .auth import login_required
from .i18n import current_language

api_bp = Blueprint("duplicates_api", __name__, url_prefix="/api/v1")
bp = Blueprint("duplicates", __name__)


# The words the page's script shows ({placeholders} filled in by the script).
LABELS = {
    "merged": N_("已将 {members} 合并到 {survivor}。"),
    "failed": N_("合并失败：{message}"),
    "network": N_("网络不通，未合并，请重试。"),
    "merging": N_("正在合并…"),
    "separator": N_("、"),  # between report numbers in a list: "#12、#13" / "#12, #13"
}


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)
    app.register_blueprint(bp)


# --- reading the groups -----------------------------------------------------------------------------

def _parameters(query: DuplicateQuery) -> tuple[float, int]:
    s = settings()
    along_m = query.along_m if query.along_m is not None else s.duplicate_along_m
    days = query.days if query.days is not None else s.duplicate_window_days
    if query.street is not None and read_session().execute(
            select(Street.id).where(Street.code == query.street)).scalar_one_or_none() is None:
        raise UnknownStreet(street=query.street)
    return along_m, days


def groups_with_reports(session, viewer: Viewer, query: DuplicateQuery) -> tuple[float, int, list[dict]]:
    """The suggested groups, each member with its whole report record (`rec`), the distance along the
    street from the member before it (`gap_m`), and the default survivor."""
    along_m, days = _parameters(query)
    groups = duplicate_groups(session, along_m, dt.timedelta(days=days), street=query.street)
    ids = tuple(m["id"] for grp in groups for m in grp["members"])
    records, _total = list_reports(session, ReportFilter(ids=ids, viewer=viewer, limit=max(len(ids), 1)))
    by_id = {r["id"]: r for r in records}
    for grp in groups:
        previous = None
        for m in grp["members"]:
            m["rec"] = by_id[m["id"]]
            m["gap_m"] = m["position_m"] - previous if previous is not None else None
            previous = m["position_m"]
        grp["span_m"] = grp["members"][-1]["position_m"] - grp["members"][0]["position_m"]
        grp["survivor"] = default_survivor(grp["members"])
    return along_m, days, groups


def _dispatchers_only() -> None:
    if not g.viewer.dispatches:
        abort(403)


@api_bp.get("/duplicates")
@api_login_required
def list_duplicates():
    """Groups of likely duplicates (dispatchers): members along the street, each as the report JSON
    plus `gap_m` (metres along the street from the previous member) and `mergeable`."""
    _dispatchers_only()
    query = validate(DuplicateQuery, request.args.to_dict())
    along_m, days, groups = groups_with_reports(read_session(), g.viewer, query)
    return jsonify({"along_m": along_m, "days": days, "groups": [{
        "street": grp["street"], "item": grp["item"], "span_m": round(grp["span_m"], 1),
        "survivor": grp["survivor"],
        "members": [present.report(m["rec"], access_to(g.viewer, m["rec"]))
                    | {"gap_m": None if m["gap_m"] is None else round(m["gap_m"], 1), "mergeable": m["mergeable"]}
                    for m in grp["members"]],
    } for grp in groups]})


@api_bp.post("/duplicates/merge")
@api_login_required
def merge_duplicates():
    """Merge a group in one action: every member but `into` becomes `merged` into it, all in one
    transaction; 200 with the survivor, or the first refusal (a stale version: 409) and nothing merged."""
    data = validate(MergeInput, json_object())
    from .auth import audit_actor

    with database().transaction() as session:
        survivor, _merged = core_reports.merge_group(session, audit_actor(), g.viewer, data.into, data.members,
                                                     lifecycle.rules_from_settings(settings()))
        answer = report_body(session, survivor, g.viewer)
    return jsonify(answer)


# --- the page -----------------------------------------------------------------------------------------

def _member_view(m: dict, lang: str, tz: str) -> dict:
    rec = m["rec"]
    return {
        "id": rec["id"], "version": rec["version"], "mergeable": m["mergeable"],
        "url": url_for("phone.report_page", report_id=rec["id"]),
        "category": f'{rec["category_code"]} {present.localized(rec, "category_name", lang)}',
        "position": _("%(street)s，距起点 %(position)s", street=present.localized(rec, "street_name", lang),
                      position=present.distance(rec["position_m"], lang)),
        "gap": (_("与上一条沿街相距 %(distance)s", distance=present.distance(m["gap_m"], lang))
                if m["gap_m"] is not None else None),
        "time": present.local_time(rec["created_at"], tz, lang),
        "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
        "description": rec["description"],
        "photos": [present.photo(p)["url"] for p in rec.get("photos", ()) if p["kind"] == "before"],
    }


def _streets(session, lang: str) -> list[dict]:
    rows = session.execute(select(Street.code, Street.name, Street.name_en).order_by(Street.code)).all()
    return [{"code": r.code, "name": present.localized(r._mapping, "name", lang)} for r in rows]


@bp.get("/console/duplicates")
@login_required(*roles_with("reports.screen_and_dispatch"))
def page():
    session, s, lang = read_session(), settings(), current_language()
    query = validate(DuplicateQuery, request.args.to_dict())
    along_m, days, groups = groups_with_reports(session, Viewer.of(current_user.user), query)
    shown = [{
        "key": f'{grp["street"]["code"]}-{grp["item"]["code"]}-{grp["members"][0]["id"]}',
        "title": _("%(street)s · %(item)s", street=present.localized(grp["street"], "name", lang),
                   item=f'{grp["item"]["code"]} {present.localized(grp["item"], "name", lang)}'),
        "summary": _("%(n)s 条，沿街跨度 %(span)s", n=len(grp["members"]), span=present.distance(grp["span_m"], lang)),
        "survivor": grp["survivor"],
        "members": [_member_view(m, lang, s.display_tz) for m in grp["members"]],
    } for grp in groups]
    data = {"labels": {k: _(msgid) for k, msgid in LABELS.items()},
            "endpoint": url_for("duplicates_api.merge_duplicates")}
    return render_template("console/duplicates.html", groups=shown, data=data, streets=_streets(session, lang),
                           street=query.street, along_m=along_m, days=days)
