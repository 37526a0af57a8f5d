"""The dispatcher's console: the work queue (/console) and a report with the dispatch panel
(/console/reports/<id>), for committee staff and the bureau's dispatchers at a desktop browser.

Thin like the other pages: the queue's tabs are geoapp/domain/work_queue.py, the actions offered
are exactly lifecycle.available_actions, and every action posts to POST /api/v1/reports/<id>/actions
(console_report.js) — the page never changes a report itself. Filters are the query string of
GET /api/v1/reports, so a view of the queue can be shared and opened on the map.
"""
from __future__ import annotations

import datetime as dt
from itertools import groupby
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..core.permissions import roles_with
from .. import present
from ..domain import lifecycle, work_queue
from ..domain.inputs import ReportQuery, validate
from ..domain.my_street import category_path
from ..domain.reports import access_to, events_of, get_report
from ..domain.visibility import FULL, Viewer
from ..domain.working_time import OfficeHours
from ..translations import N_, translate
from . import read_session, settings
from .doors import report_filter
from .auth import login_required
from .i18n import current_language
from .phone import ACTION_LABELS as PHONE_ACTION_LABELS, DISPATCH_RULES
from .read_audit import staff_list_read, staff_read

bp = Blueprint("console", __name__, url_prefix="/console")


# Another page of the console (duplicate suggestions), linked by its address: its blueprint is not ours.
DUPLICATES_URL = "/console/duplicates"

# The query parameters of GET /api/v1/reports that the console keeps in its links (not status:
# the tab decides that).
FILTER_KEYS = ("street", "unit", "category", "from", "to")

TAB_LABELS = {
    "screen": N_("待受理"),
    "returned": N_("已回退"),
    "extension": N_("延期申请"),
    "overdue": N_("已超期"),
    "unsatisfied": N_("不满意"),
    "ledger": N_("挂账"),
    "closing": N_("待结案"),
}
assert set(TAB_LABELS) == set(work_queue.TAB_KEYS)

# The rule the suggestion followed, said in English (its stored reason is a Chinese sentence).
SUGGESTION_RULES = DISPATCH_RULES | {"after_hand_back": N_("原单位已回退，按责任区最近的同类单位建议")}

# How each action field is asked for on the page (which fields an action needs is the lifecycle's table).
FIELD_INPUTS = {
    "reason": ("textarea", N_("理由")),
    "text": ("textarea", N_("说明")),
    "comment": ("textarea", N_("意见")),
    "into": ("number", N_("合并到问题编号")),
    "deadline": ("datetime-local", N_("新的处置时限")),
    "until": ("datetime-local", N_("延期至")),
    "promised_on": ("date", N_("承诺完成日期")),
}
# What the dispatch panel and the album toggle ask for themselves, and what only other parties give.
NOT_A_FORM_FIELD = ("unit", "cooperating", "flag", "photos", "reply_rating", "result_rating")

# The words console_report.js shows.
REPORT_LABELS = {
    "loading": N_("正在获取派遣建议…"),
    "no_suggestion": N_("没有可建议的单位，请选择单位并说明理由。"),
    "suggested": N_("建议单位"),
    "deadline": N_("处置时限"),
    "deadline_days": N_("时限 {n} 个工作日"),
    "handed_back_by": N_("已回退的单位：{units}"),
    "sending": N_("正在提交…"),
    "done": N_("已完成：{action}"),
    "failed": N_("提交失败：{message}"),
    "network": N_("网络不通，请稍后重试。"),
    "album_on": N_("已列入问题图册"),
    "album_off": N_("未列入问题图册"),
}


def _localized_unit(names: dict, code: str | None, lang: str) -> str:
    if not code:
        return ""
    found = names.get(code)
    return present.localized(found, "name", lang) if found else code


def _filters() -> dict[str, str]:
    return {k: request.args[k] for k in FILTER_KEYS if request.args.get(k)}


def _late(seconds: float, hours: OfficeHours) -> str:
    """How late, in working days of the office hours and working hours: "2 个工作日 3.5 小时"."""
    days, rest = divmod(max(seconds, 0.0), hours.day_seconds)
    h = f"{rest / 3600:.1f}".rstrip("0").rstrip(".")
    if days:
        return _("%(d)s 个工作日 %(h)s 小时", d=int(days), h=h)
    return _("%(h)s 个工作小时", h=h)


def _when(moment, tz: str, lang: str) -> str:
    return present.local_time(moment, tz, lang) if moment is not None else ""


def _queue_row(rec: dict, tab: str, extra: dict, now: dt.datetime, lang: str, tz: str, hours) -> dict:
    """One line of the queue: what the dispatcher needs to decide without opening the report."""
    lines: list[tuple[str, str]] = []
    if tab == "screen":
        lines.append((_("上报人"), rec["reporter_name"]))
    elif tab == "returned":
        back = extra.get(rec["id"], {})
        lines += [(_("回退单位"), _localized_unit(extra.get("_units", {}), back.get("unit"), lang)),
                  (_("回退理由"), back.get("reason") or "")]
    elif tab == "extension":
        lines += [(_("当前时限"), _when(rec["deadline_at"], tz, lang)),
                  (_("申请延期至"), _when(rec["extension_requested_until"], tz, lang)),
                  (_("理由"), rec["extension_reason"] or "")]
    elif tab == "overdue":
        due = (rec["ledger_promised_on"].isoformat() if rec["status"] == "ledger" and rec["ledger_promised_on"]
               else _when(rec["deadline_at"], tz, lang))
        lines += [(_("处置时限"), due), (_("超期"), _late(work_queue.how_late(rec, now, hours, tz), hours))]
    elif tab == "unsatisfied":
        lines += [(_("满意度"), _("答复 %(a)s / 5，结果 %(b)s / 5", a=rec["reply_rating"], b=rec["result_rating"])),
                  (_("意见"), rec["verify_comment"] or "")]
    elif tab == "ledger":
        promised = rec["ledger_promised_on"]
        lines.append((_("承诺完成日期"), promised.isoformat() if promised else ""))
        lines.append((_("进度"), _("已逾期") if rec["overdue"] else _("未到期")))
    elif tab == "closing":
        lines.append((_("办结时间"), _when(rec["handled_at"], tz, lang)))
        if rec["reply_rating"] is not None:
            lines.append((_("满意度"), _("答复 %(a)s / 5，结果 %(b)s / 5", a=rec["reply_rating"],
                                            b=rec["result_rating"])))
    return {
        "id": rec["id"], "url": url_for("console.report_page", report_id=rec["id"]),
        "category": f'{rec["category_code"]} {present.localized(rec, "category_name", lang)}',
        "street": present.localized(rec, "street_name", lang),
        "position": present.distance(rec["position_m"], lang),
        "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
        # before dispatch the unit is only the rule's suggestion: said so
        "unit": (present.localized(rec, "unit_name", lang) if rec["dispatched_at"] is not None
                 else _("建议：%(unit)s", unit=present.localized(rec, "unit_name", lang))),
        "unit_code": rec["unit_code"],
        "created": present.local_time(rec["created_at"], tz, lang),
        "overdue": rec["overdue"], "lines": [(k, v) for k, v in lines if v != ""],
    }


@bp.get("")
@login_required(*roles_with("reports.screen_and_dispatch"))
def queue():
    session, s, lang = read_session(), settings(), current_language()
    viewer = Viewer.of(current_user.user)
    query = validate(ReportQuery, request.args.to_dict())
    tab = request.args.get("tab") if request.args.get("tab") in work_queue.TAB_KEYS else work_queue.TAB_KEYS[0]
    flt = report_filter(query, viewer)
    counts = work_queue.tab_counts(session, flt)
    records, total = work_queue.tab_page(session, tab, flt)
    staff_list_read(total, len(records))
    extra: dict = {}
    if tab == "returned":
        extra = work_queue.last_event_data(session, (r["id"] for r in records), "hand_back")
        extra["_units"] = work_queue.unit_names(session)
    now, hours = dt.datetime.now(dt.timezone.utc), OfficeHours.from_settings(s)
    rows = [_queue_row(r, tab, extra, now, lang, s.display_tz, hours) for r in records]
    filters = _filters()
    by_unit = []
    if tab == "overdue":
        summary = {u["code"]: u["count"] for u in work_queue.overdue_by_unit(session, flt)}
        by_unit = [{"unit": rows_of[0]["unit"], "count": summary.get(code, len(rows_of)), "rows": rows_of}
                   for code, group in groupby(rows, key=lambda r: r["unit_code"]) for rows_of in [list(group)]]
    tabs = [{"key": key, "label": _(TAB_LABELS[key]), "count": counts[key], "current": key == tab,
             "url": url_for("console.queue", tab=key, **filters)} for key in work_queue.TAB_KEYS]
    pages = {}
    if flt.offset + len(rows) < total:
        pages["next"] = url_for("console.queue", tab=tab, **filters, offset=flt.offset + flt.limit)
    if flt.offset > 0:
        pages["prev"] = url_for("console.queue", tab=tab, **filters, offset=max(flt.offset - flt.limit, 0))
    choices = work_queue.filter_choices(session)
    return render_template(
        "console/queue.html", tab=tab, tab_label=_(TAB_LABELS[tab]), tabs=tabs, rows=rows, by_unit=by_unit,
        total=total, shown_from=flt.offset + 1, shown_to=flt.offset + len(rows), pages=pages, filters=filters,
        choices=_choices(choices, lang), map_url=url_for("maps.show_map") + ("?" + urlencode(filters) if filters else ""),
        duplicates_url=DUPLICATES_URL + ("?" + urlencode(filters) if filters else ""), colours=present.STATUS_COLOURS,
        exports=_export_links(filters))


# The open-data exports (geoapp/web/exports.py) of every report the filters match, all tabs together.
EXPORT_FORMATS = (("geojson", "GeoJSON"), ("csv", "CSV"), ("xlsx", "Excel"), ("gpkg", "GeoPackage"))


def _export_links(filters: dict) -> list[dict]:
    query = "?" + urlencode(filters) if filters else ""
    return [{"label": label, "url": f"/api/v1/exports/reports.{fmt}{query}"} for fmt, label in EXPORT_FORMATS]


def _choices(choices: dict, lang: str) -> dict:
    """The filter selects' options, labelled in the reader's language; categories indented by level."""
    indent = {"class": "", "category": "\u00a0\u00a0\u00a0", "item": "\u00a0" * 6}  # no-break spaces
    return {
        "streets": [{"code": c["code"], "label": present.localized(c, "name", lang)} for c in choices["streets"]],
        "units": [{"code": c["code"], "label": present.localized(c, "name", lang)} for c in choices["units"]],
        "categories": [{"code": c["code"], "label": f'{indent[c["level"]]}{c["code"]} {present.localized(c, "name", lang)}'}
                       for c in choices["categories"]],
    }


# --- one report and the dispatch panel --------------------------------------------------------------

def _local_input(moment, tz: str) -> str:
    """A moment as an <input type=datetime-local> value in the city's time (the API reads it so)."""
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M") if moment is not None else ""


def _event_action(action: str, lang: str) -> str:
    if action in lifecycle.ACTIONS:
        return lifecycle.action_label(action, lang)
    return translate(PHONE_ACTION_LABELS[action], lang) if action in PHONE_ACTION_LABELS else action


def _event_lines(action: str, data: dict, names: dict, lang: str, tz: str) -> list[tuple[str, str]]:
    """What an event recorded, as label/value lines (its text, reason, unit, deadline…)."""
    def moment(value):
        try:
            return present.local_time(dt.datetime.fromisoformat(value), tz, lang)
        except (TypeError, ValueError):
            return str(value)

    lines = []
    for key, label in (("text", N_("说明")), ("reason", N_("理由")), ("comment", N_("意见"))):
        if data.get(key):
            lines.append((translate(label, lang), str(data[key])))
    if data.get("unit"):
        # at intake the unit is the rule's suggestion; on a hand-back, the unit that gave it back
        label = {"submit": _("建议单位"), "hand_back": _("回退单位")}.get(action, _("单位"))
        lines.append((label, _localized_unit(names, data["unit"], lang)))
    if data.get("cooperating"):
        lines.append((_("协办单位"), "、".join(_localized_unit(names, c, lang) for c in data["cooperating"])))
    for key, label in (("deadline", N_("处置时限")), ("until", N_("延期至"))):
        if data.get(key):
            lines.append((translate(label, lang), moment(data[key])))
    if data.get("promised_on"):
        lines.append((_("承诺完成日期"), str(data["promised_on"])))
    if data.get("into"):
        lines.append((_("合并到"), f'#{data["into"]}'))
    if data.get("reply_rating") is not None:
        lines.append((_("满意度"), _("答复 %(a)s / 5，结果 %(b)s / 5", a=data["reply_rating"], b=data["result_rating"])))
    if "flag" in data:
        lines.append((_("问题图册"), _("列入") if data["flag"] else _("移出")))
    if "granted" in data:
        lines.append((_("延期"), _("同意") if data["granted"] else _("不同意")))
    return lines


def _action_forms(actions: list[str], rec: dict, tz: str, lang: str) -> list[dict]:
    """A form per action this dispatcher may take now (but dispatch and the album toggle, which have
    their own controls), with the fields the lifecycle table names, prefilled where it helps."""
    defaults = {"deadline": _local_input(rec["deadline_at"], tz),
                "until": _local_input(rec["extension_requested_until"], tz)}
    forms = []
    for name in actions:
        if name in ("dispatch", "album"):
            continue
        spec = lifecycle.ACTIONS[name]
        fields = [{"name": f, "type": FIELD_INPUTS[f][0], "label": _(FIELD_INPUTS[f][1]),
                   "required": f in spec.needs, "value": defaults.get(f, "")}
                  for f in spec.needs + spec.optional if f not in NOT_A_FORM_FIELD and f in FIELD_INPUTS]
        forms.append({"action": name, "label": lifecycle.action_label(name, lang), "fields": fields})
    return forms


@bp.get("/reports/<int:report_id>")
@login_required(*roles_with("reports.screen_and_dispatch"))
def report_page(report_id: int):
    session, s, lang, tz = read_session(), settings(), current_language(), settings().display_tz
    viewer = Viewer.of(current_user.user)
    rec = get_report(session, report_id)
    if rec is None or access_to(viewer, rec) != FULL:
        abort(404)
    staff_read("report", report_id)
    actions = lifecycle.available_actions(viewer, rec)
    names = work_queue.unit_names(session)
    photos = [present.photo(p) for p in rec.get("photos", ())]
    events = events_of(session, report_id)
    timeline = [{"at": present.local_time(e["at"], tz, lang), "action": _event_action(e["action"], lang),
                 "to_status": present.status_label(e["to_status"], lang) if e["to_status"] else "",
                 "actor": e["actor"], "lines": _event_lines(e["action"], e["data"] or {}, names, lang, tz),
                 "photos": [p for p in photos if p["event_id"] == e["id"] and p["kind"] != "before"]} for e in events]
    event_ids = {e["id"] for e in events}
    report = {
        "id": rec["id"], "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
        "category": " › ".join(present.localized(c, "name", lang) for c in category_path(session, rec["category_code"])),
        "category_code": rec["category_code"],
        "description": rec["description"], "reporter": rec["reporter_name"], "reporter_username": rec["reporter"],
        "position": _("%(street)s，距起点 %(position)s", street=present.localized(rec, "street_name", lang),
                      position=present.distance(rec["position_m"], lang)),
        "distance": present.distance(rec["distance_m"], lang),
        "lonlat": f'{rec["lon"]:.6f}, {rec["lat"]:.6f}',
        "unit": present.localized(rec, "unit_name", lang) if rec["dispatched_at"] else "",
        "suggested_unit": present.localized(rec, "unit_name", lang),
        "cooperating": "、".join(present.localized(u, "name", lang) for u in rec.get("cooperating_units") or []),
        "deadline": _when(rec["deadline_at"], tz, lang), "overdue": rec["overdue"],
        "created": present.local_time(rec["created_at"], tz, lang),
        "updated": present.local_time(rec["updated_at"], tz, lang),
        "merged_into": rec["merged_into_id"], "album": rec["album"],
        "ledger_promised_on": rec["ledger_promised_on"].isoformat() if rec["ledger_promised_on"] else "",
        "extension": ({"until": _when(rec["extension_requested_until"], tz, lang), "reason": rec["extension_reason"]}
                      if rec["extension_requested_until"] else None),
        "verification": ({"reply_rating": rec["reply_rating"], "result_rating": rec["result_rating"],
                          "comment": rec["verify_comment"]} if rec["reply_rating"] is not None else None),
        # the reporter's photos: those of no feedback event
        "photos": [p for p in photos if p["event_id"] not in event_ids or p["kind"] == "before"],
    }
    units = [{"code": c, "label": present.localized(n, "name", lang)} for c, n in names.items()]
    data = {
        "lang": lang, "tz": tz, "version": rec["version"], "album": rec["album"], "colours": present.STATUS_COLOURS,
        "endpoints": {"actions": url_for("api.report_action", report_id=report_id),
                      "suggestion": url_for("api.dispatch_suggestion", report_id=report_id)},
        "units": {u["code"]: u["label"] for u in units},
        "rules": {k: _(v) for k, v in SUGGESTION_RULES.items()},
        "labels": {k: _(v) for k, v in REPORT_LABELS.items()},
        "action_labels": {a: lifecycle.action_label(a, lang) for a in actions},
    }
    map_url = url_for("maps.show_map") + "?" + urlencode({"street": rec["street_code"]})
    return render_template("console/report.html", report=report, timeline=timeline, actions=actions,
                           forms=_action_forms(actions, rec, tz, lang), units=units, data=data, map_url=map_url,
                           phone_url=url_for("phone.report_page", report_id=report_id), duplicates_url=DUPLICATES_URL)
