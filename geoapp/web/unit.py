"""The pages of a responsible unit's handler: the unit's queue (/unit) and a report's page
(/unit/reports/<id>) with its map, photos, history and the forms of the actions it may take now.

What a handler sees is the one visibility rule (domain/visibility.py, through ReportFilter(viewer=…)
and reports.access_to); which forms a report shows is the lifecycle's `available_actions`. The forms
post to the API (POST /api/v1/reports/<id>/actions) from unit_report.js, which then asks this page
again for the report's current state — so a report is rendered in one place, here.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from .. import present
from ..domain import lifecycle
from ..domain.my_street import category_path, street_outline
from ..domain.reports import ReportFilter, access_to, events_of, get_report, list_reports
from ..domain.visibility import FULL, Viewer
from ..domain.vocabulary import HANDLED_STATUSES, MAX_PHOTOS_PER_REPORT, RUNNING_STATUSES
from ..domain.working_time import OfficeHours, working_seconds_between
from ..models import Report, ReportEvent, Unit
from ..translations import N_, translate
from . import read_session, settings
from .auth import login_required
from .i18n import current_language
from .read_audit import staff_list_read, staff_read

bp = Blueprint("unit", __name__)

QUEUE_PAGE = 50  # rows per tab page; the most urgent deadline first


@dataclass(frozen=True)
class Tab:
    key: str
    label: str                      # msgid
    statuses: tuple[str, ...] = ()
    overdue: bool = False
    handed_back: bool = False       # reports this unit handed back (its hand_back events)
    order: str = "deadline"


# The queue's tabs, in the order a handler works through them.
TABS = (
    Tab("new", N_("新派遣"), statuses=("dispatched",)),
    Tab("in_progress", N_("处置中"), statuses=("unit_accepted", "in_progress")),
    Tab("overdue", N_("已超期"), overdue=True),
    Tab("reopened", N_("返工"), statuses=("reopened",)),
    Tab("handed_back", N_("已回退"), statuses=("returned",), handed_back=True, order="newest"),
    Tab("ledger", N_("挂账"), statuses=("ledger",)),
    Tab("done", N_("已办结"), statuses=HANDLED_STATUSES, order="newest"),
)
TAB_BY_KEY = {t.key: t for t in TABS}

# What happened to a report, for the history: the lifecycle's actions, and the representative's report.
SUBMIT_LABEL = N_("提交上报")

# The words unit_report.js shows (it writes them as text).
SCRIPT_LABELS = {
    "sending": N_("正在提交…"),
    "done": N_("操作已完成"),
    "failed": N_("提交失败，请检查网络后重试"),
    "too_many_photos": N_("最多 {n} 张照片"),
}


def _viewer() -> Viewer:
    return Viewer.of(current_user.user)


def _handed_back_ids(session, unit_id: int) -> tuple[int, ...]:
    """Reports this unit handed back, from its hand_back events (the event names the unit)."""
    rows = session.execute(select(ReportEvent.report_id).distinct().where(
        ReportEvent.action == "hand_back", ReportEvent.data["unit_id"].as_integer() == unit_id)).scalars()
    return tuple(rows) or (0,)  # (0,): no report has id 0, so an empty tab stays empty


def _filter(tab: Tab, viewer: Viewer, handed_back: tuple[int, ...], **page) -> ReportFilter:
    return ReportFilter(statuses=tab.statuses, overdue=tab.overdue,
                        ids=handed_back if tab.handed_back else (), viewer=viewer, **page)


def _count(session, flt: ReportFilter) -> int:
    return session.execute(select(func.count()).select_from(Report).where(flt.where())).scalar_one()


# --- time left, in working time -----------------------------------------------------------------

def _office_hours() -> OfficeHours:
    return OfficeHours.from_settings(settings())


def _working_span(seconds: float, hours: OfficeHours) -> str:
    """A span of working time as a handler counts it: working days and hours ("2 个工作日 3 小时")."""
    days, rest = divmod(max(seconds, 0.0), hours.day_seconds)
    if days and rest >= 3600:
        return _("%(d)s 个工作日 %(h)s 小时", d=int(days), h=int(rest // 3600))
    if days:
        return _("%(d)s 个工作日", d=int(days))
    if rest >= 3600:
        return _("%(h)s 个工作小时", h=int(rest // 3600))
    return _("%(m)s 分钟", m=max(int(rest // 60), 1))


def _clock(rec: dict, now: dt.datetime, hours: OfficeHours, lang: str) -> dict:
    """The deadline as the reader writes it, and the working time left or how late."""
    if rec["status"] == "ledger" and rec["ledger_promised_on"] is not None:
        promised = rec["ledger_promised_on"]
        late_days = (now.astimezone(ZoneInfo(settings().display_tz)).date() - promised).days
        return {"deadline": _("承诺 %(date)s 完成", date=promised.isoformat()), "late": rec["overdue"],
                "left": _("超期 %(n)s 天", n=late_days) if rec["overdue"] else ""}
    if rec["deadline_at"] is None:
        return {"deadline": "", "late": False, "left": ""}
    out = {"deadline": present.local_time(rec["deadline_at"], settings().display_tz, lang), "late": rec["overdue"],
           "left": ""}
    if rec["status"] not in RUNNING_STATUSES:
        return out
    if rec["overdue"]:
        out["left"] = _("超期 %(span)s", span=_working_span(working_seconds_between(rec["deadline_at"], now, hours),
                                                             hours))
    else:
        out["left"] = _("剩余 %(span)s", span=_working_span(working_seconds_between(now, rec["deadline_at"], hours),
                                                             hours))
    return out


# --- the queue ------------------------------------------------------------------------------------

def _row(rec: dict, viewer: Viewer, now: dt.datetime, hours, lang: str) -> dict:
    return {"id": rec["id"], "url": url_for("unit.report_page", report_id=rec["id"]),
            "category": f'{rec["category_code"]} {present.localized(rec, "category_name", lang)}',
            "where": _("%(street)s，距起点 %(position)s", street=present.localized(rec, "street_name", lang),
                       position=present.distance(rec["position_m"], lang)),
            "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
            "cooperating": rec["unit_id"] != viewer.unit_id,
            "clock": _clock(rec, now, hours, lang)}


@bp.get("/unit")
@login_required("unit_handler")
def queue():
    session, lang = read_session(), current_language()
    viewer = _viewer()
    tab = TAB_BY_KEY.get(request.args.get("tab", ""), TABS[0])
    page = max(_int_arg("page", 1), 1)
    handed_back = _handed_back_ids(session, viewer.unit_id)
    counts = {t.key: _count(session, _filter(t, viewer, handed_back)) for t in TABS}
    records, total = list_reports(session, _filter(tab, viewer, handed_back, limit=QUEUE_PAGE,
                                                   offset=(page - 1) * QUEUE_PAGE), order=tab.order)
    staff_list_read(total, len(records))
    now, hours = dt.datetime.now(dt.timezone.utc), _office_hours()
    unit = session.get(Unit, viewer.unit_id)
    return render_template(
        "unit/queue.html", unit_name=present.localized({"name": unit.name, "name_en": unit.name_en}, "name", lang),
        tabs=[{"key": t.key, "label": _(t.label), "count": counts[t.key], "current": t.key == tab.key,
               "url": url_for("unit.queue", tab=t.key)} for t in TABS],
        tab=tab, rows=[_row(r, viewer, now, hours, lang) for r in records], total=total, page=page,
        prev_url=url_for("unit.queue", tab=tab.key, page=page - 1) if page > 1 else None,
        next_url=url_for("unit.queue", tab=tab.key, page=page + 1) if page * QUEUE_PAGE < total else None)


def _int_arg(name: str, default: int) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 7 else default


# --- a report's page ------------------------------------------------------------------------------

def _event_line(e: dict, photos: list[dict], lang: str, tz: str) -> dict:
    data = e["data"] or {}
    action = e["action"]
    label = lifecycle.action_label(action, lang) if action in lifecycle.ACTIONS else (
        translate(SUBMIT_LABEL, lang) if action == "submit" else action)
    notes = []
    if data.get("text"):
        notes.append(data["text"])
    if data.get("reason"):
        notes.append(_("理由：%(reason)s", reason=data["reason"]))
    if data.get("comment"):
        notes.append(_("意见：%(comment)s", comment=data["comment"]))
    if action == "request_extension" and data.get("until"):
        notes.append(_("申请延期至 %(until)s", until=present.local_time(dt.datetime.fromisoformat(data["until"]),
                                                                       tz, lang)))
    if action in ("dispatch", "edit_deadline") and data.get("deadline"):
        notes.append(_("处置时限 %(deadline)s", deadline=present.local_time(
            dt.datetime.fromisoformat(data["deadline"]), tz, lang)))
    if action == "ledger" and data.get("promised_on"):
        notes.append(_("承诺 %(date)s 完成", date=data["promised_on"]))
    return {"id": e.get("id"), "action": action, "label": label,
            "at": present.local_time(e["at"], tz, lang), "actor": e["actor"],
            "to_status": present.status_label(e["to_status"], lang)
            if e["to_status"] and e["to_status"] != e["from_status"] else None,
            "notes": notes, "photos": [p for p in photos if p["event_id"] == e.get("id")]}


def _form_labels() -> dict:
    return {name: lifecycle.action_label(name, current_language()) for name in lifecycle.ACTIONS}


@bp.get("/unit/reports/<int:report_id>")
@login_required("unit_handler")
def report_page(report_id: int):
    session, s, lang = read_session(), settings(), current_language()
    viewer = _viewer()
    rec = get_report(session, report_id)
    if rec is None or access_to(viewer, rec) != FULL:
        abort(404)  # not there, or not this unit's: the same answer (domain/visibility.py)
    staff_read("report", report_id)
    tz = s.display_tz
    photos = [present.photo(p) for p in rec.get("photos", ())]
    events = events_of(session, report_id)
    street = street_outline(session, rec["street_id"])
    now = dt.datetime.now(dt.timezone.utc)
    report = {
        "id": rec["id"], "version": rec["version"], "status": rec["status"],
        "status_label": present.status_label(rec["status"], lang),
        "category": " › ".join(present.localized(c, "name", lang)
                               for c in category_path(session, rec["category_code"])),
        "where": _("%(street)s，距起点 %(position)s", street=present.localized(rec, "street_name", lang),
                   position=present.distance(rec["position_m"], lang)),
        "description": rec["description"],
        "reporter": rec["reporter_name"],
        "created": present.local_time(rec["created_at"], tz, lang),
        "lead_unit": present.localized(rec, "unit_name", lang),
        "cooperating_units": [present.localized(u, "name", lang) for u in rec.get("cooperating_units") or ()],
        "cooperating": rec["unit_id"] != viewer.unit_id,
        "clock": _clock(rec, now, _office_hours(), lang),
        "extension": (present.local_time(rec["extension_requested_until"], tz, lang)
                      if rec["extension_requested_until"] else None),
        "before_photos": [p for p in photos if p["kind"] == "before"],
        "events": [_event_line(e, photos, lang, tz) for e in reversed(events)],  # newest first
        "actions": lifecycle.available_actions(viewer, rec),
    }
    data = {
        "street": {"code": street["code"], "label": present.localized(street, "name", lang),
                   "geometry": street["geometry"]},
        "point": {"lat": rec["lat"], "lon": rec["lon"], "colour": present.status_colour(rec["status"])},
        "tiles": {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None,
        "endpoints": {"actions": url_for("api.report_action", report_id=rec["id"])},
        "labels": {k: _(msgid) for k, msgid in SCRIPT_LABELS.items()},
        "max_photos": MAX_PHOTOS_PER_REPORT,
    }
    return render_template("unit/report.html", report=report, data=data, labels=_form_labels(),
                           min_until=_local_input(rec["deadline_at"] or now, tz))


def _local_input(moment: dt.datetime, tz: str) -> str:
    """A moment as an HTML datetime-local field writes it, in the city's time zone."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")
