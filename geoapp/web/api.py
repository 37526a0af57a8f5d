"""/api/v1: JSON and GeoJSON (RFC 7946). Authenticated by `Authorization: Bearer <api key>` or by
the session cookie of a signed-in page (with its CSRF token on writes).

Thin: each view parses the request through a declared schema (geoapp.domain.inputs), calls the
domain, and answers with the presenter's shapes (geoapp.present). Refusals of every kind become
`{"error", "message"}` in web/errors.py.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from flask import Blueprint, abort, g, jsonify, request

from .. import present
from ..core import reports as core_reports
from ..domain import lifecycle
from ..domain.dispatch import suggest_dispatch
from ..domain.inputs import ActionInput, ReportQuery, in_zone, validate
from ..domain.intake import IntakeRules, Reporter, Submission, submit_report
from ..domain.reports import access_to, events_of, get_report, list_reports
from ..domain.streets import streets_geojson
from ..domain.taxonomy import category_tree, unit_list
from ..translations import request_language, translate
from . import database, read_session, settings
from .doors import api_login_required, json_object, report_body, report_filter
from .read_audit import staff_list_read, staff_read

bp = Blueprint("api", __name__, url_prefix="/api/v1")

REPORT_FIELDS = ("client_id", "lat", "lon", "crs", "category", "description")


def _submission_from_request() -> Submission:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # `photo` may be repeated (up to MAX_PHOTOS_PER_REPORT, checked by the domain), in order;
        # a form with no file chosen still sends an empty part with an empty file name: ignored
        photos = [upload.read() for upload in request.files.getlist("photo") if upload.filename]
        return Submission(**{k: request.form.get(k) for k in REPORT_FIELDS}, photos=photos)
    body = json_object()
    return Submission(**{k: body.get(k) for k in REPORT_FIELDS})


@bp.post("/reports")
@api_login_required
def create_report():
    submission = _submission_from_request()
    user = g.user
    street_id = user.representative.street_id if user.representative is not None else None
    reporter = Reporter(user_id=user.id, role=user.role, street_id=street_id)
    with database().transaction() as session:
        record, created = submit_report(session, reporter, submission, IntakeRules.from_settings(settings()))
    return jsonify(present.report(record)), 201 if created else 200


@bp.get("/reports/<int:report_id>")
@api_login_required
def show_report(report_id: int):
    session = read_session()
    record = get_report(session, report_id)
    if record is None or access_to(g.viewer, record) is None:
        # not there, or not this user's to see: the same answer (domain/visibility.py)
        abort(404)
    staff_read("report", report_id)
    return jsonify(report_body(session, record, g.viewer))


@bp.get("/reports")
@api_login_required
def index_reports():
    query = validate(ReportQuery, request.args.to_dict())
    flt = report_filter(query, g.viewer)
    records, total = list_reports(read_session(), flt, order=query.order)
    staff_list_read(total, len(records))
    links = []
    if flt.offset + len(records) < total:
        links.append({"rel": "next", "href": _page_link(flt.offset + flt.limit, flt.limit)})
    if flt.offset > 0:
        links.append({"rel": "prev", "href": _page_link(max(flt.offset - flt.limit, 0), flt.limit)})
    body = {"type": "FeatureCollection",
            "features": [present.feature(r, access_to(g.viewer, r)) for r in records],
            "numberMatched": total, "numberReturned": len(records), "links": links}
    if flt.bbox is not None:
        body["bbox"] = list(flt.bbox)
    return jsonify(body)


def _action_from_request() -> tuple[ActionInput, list[bytes]]:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        photos = [upload.read() for upload in request.files.getlist("photo") if upload.filename]
        form = {k: request.form.get(k) for k in request.form}
        if "cooperating" in request.form:
            form["cooperating"] = request.form.getlist("cooperating")
            if len(form["cooperating"]) == 1:
                form["cooperating"] = form["cooperating"][0]
        return validate(ActionInput, form), photos
    return validate(ActionInput, json_object()), []


@bp.post("/reports/<int:report_id>/actions")
@api_login_required
def report_action(report_id: int):
    """One step of the lifecycle (geoapp/domain/lifecycle.py): 200 with the updated report; 409 for a
    state that does not allow it or a stale version; 403 for a party that may not; 404 unseen."""
    from .auth import audit_actor

    data, photos = _action_from_request()
    tz = settings().display_tz
    fields = lifecycle.ActionFields(
        version=data.version, reason=data.reason, text=data.text, comment=data.comment, into=data.into,
        unit=data.unit, cooperating=data.cooperating, deadline=in_zone(data.deadline, tz),
        until=in_zone(data.until, tz), promised_on=data.promised_on, reply_rating=data.reply_rating,
        result_rating=data.result_rating, flag=data.flag, photos=photos)
    with database().transaction() as session:
        record = core_reports.act(session, audit_actor(), g.viewer, report_id, data.action, fields,
                                  lifecycle.rules_from_settings(settings()))
        body = report_body(session, record, g.viewer)
    return jsonify(body)


@bp.get("/reports/<int:report_id>/dispatch-suggestion")
@api_login_required
def dispatch_suggestion(report_id: int):
    """What the dispatch panel proposes: the rule's unit (leaving out units that handed it back), why,
    and the deadline the item's time limit gives from now on the official calendar."""
    session = read_session()
    record = get_report(session, report_id)
    if record is None or access_to(g.viewer, record) is None:
        abort(404)
    if not g.viewer.dispatches:
        abort(403)
    suggestion = suggest_dispatch(session, record)
    deadline = lifecycle.rules_from_settings(settings()).deadline_for(
        dt.datetime.now(dt.timezone.utc), float(record["deadline_days"]))
    return jsonify({
        "unit": ({"id": suggestion.unit_id, "code": suggestion.unit_code, "name": suggestion.unit_name,
                  "rule": suggestion.rule, "reason": suggestion.reason} if suggestion else None),
        "deadline_days": float(record["deadline_days"]),
        "deadline_at": deadline.isoformat(),
        "handed_back_by": [e["data"].get("unit") for e in events_of(session, report_id) if e["action"] == "hand_back"],
    })


@bp.get("/lifecycle")
def lifecycle_table():
    """The transition table, as data (for other clients, and for the README)."""
    lang = request_language()
    return jsonify({"statuses": [{"status": s, "label": present.status_label(s, lang)} for s in present.STATUS_LABELS],
                    "transitions": [row | {"label": translate(row["label"], lang)} for row in lifecycle.lifecycle_table()]})


@bp.get("/units")
def units():
    return jsonify({"units": unit_list(read_session())})


def _page_link(offset: int, limit: int) -> str:
    # relative to this server: the Host header is the client's to set, so it never makes a link
    args = request.args.to_dict() | {"offset": offset, "limit": limit}
    return request.path + "?" + urlencode(args)


@bp.get("/streets")
def streets():
    return jsonify(streets_geojson(read_session()))


@bp.get("/categories")
def categories():
    return jsonify({"classes": category_tree(read_session())})
