"""The representative's pages: home per role, my street, a report's page, my API key.

Like /map (maps.py), each page is a Jinja template plus one JavaScript module; what the script
needs travels as one JSON data block written by `tojson`, and every name or description reaches
the DOM as text. Lists a person reads (my reports, a report's history) are rendered here, with
dates and numbers formatted by Babel for the reader's locale.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..core.permissions import roles_with
from .. import present
from ..domain import audit, lifecycle
from ..domain.accounts import issue_api_key
from ..domain.lifecycle import ACTIONS
from ..domain.my_street import category_path, street_outline
from ..domain.quota import month_bounds, monthly_progress
from ..domain.reports import ReportFilter, access_to, events_of, get_report, list_reports
from ..domain.visibility import FULL, Viewer
from ..domain.vocabulary import REPORT_STATUSES, RUNNING_STATUSES, SATISFIED
from ..models import ReportEvent, Unit, User
from ..translations import N_, translate
from . import database, read_session, settings
from .auth import audit_actor, login_required
from .i18n import current_language
from .pin import queue_labels

bp = Blueprint("phone", __name__)

# Where each role starts after signing in.
HOME_OF_ROLE = {"representative": "phone.my_street", "dispatcher": "console.queue", "admin": "console.queue",
                "unit_handler": "unit.queue", "leader": "coverage.table_page",
                # 等保's three administrators land on their own page (geoapp/web/admin*.py)
                "sysadmin": "admin.users", "secadmin": "admin_security.policy_page", "auditor": "admin_audit.page"}

MY_REPORTS_SHOWN = 50  # newest first; older ones stay reachable through the API and the map

# What happened to a report, as its history says it (report_events.action).
ACTION_LABELS = {"submit": N_("提交上报"), **{name: a.label for name, a in ACTIONS.items()}}

# How a report was dispatched (report_events.data.dispatch_rule, domain/dispatch.py), said in English
# too; the stored reason is a Chinese sentence with the zone's and unit's names in it.
DISPATCH_RULES = {
    "street_override": N_("该街路指定了养护单位，优先于责任区分派"),
    "zone": N_("按点位所在责任区分派"),
    "zone_of_street": N_("点位在责任区外，按所在街路位置的责任区分派"),
}

# The words my-street's script shows; {n}-style placeholders are filled in by the script.
MY_STREET_LABELS = {
    "legend": N_("图例"),
    "mine": N_("我上报的"),
    "others": N_("他人上报"),
    "me": N_("我的位置"),
    "locating": N_("正在定位…"),
    "accuracy": N_("定位精度 ±{n} 米"),
    "details": N_("查看详情"),
    "walk_start": N_("开始巡街"),
    "walk_stop": N_("结束巡街"),
    "walk_idle": N_("未在巡街"),
    "walk_recording": N_("巡街记录中"),
    "walk_points": N_("已记录 {n} 个点"),
    "walk_chunks": N_("已发送 {sent} 段，待发送 {pending} 段"),
    "walk_error": N_("上次错误：{error}"),
    # why positions or uploads failed, by the browser's geolocation error code and walk.js's codes
    "geo_1": N_("没有定位权限，请在浏览器设置中允许定位"),
    "geo_2": N_("暂时无法定位"),
    "geo_3": N_("定位超时"),
    "geolocation": N_("定位失败"),
    "storage": N_("无法保存到手机"),
    "network": N_("网络不通，稍后自动重发"),
    "walk_unavailable": N_("巡街功能暂不可用"),
    "walked": N_("本月走过 {n} 段，共 {length}"),
    "walked_none": N_("本月还没有巡街记录"),
    "metres": N_("{n} 米"),
    "load_failed": N_("加载失败，请下拉刷新重试"),
}


def _status_legend(lang: str) -> list[dict]:
    return [{"status": s, "label": present.status_label(s, lang),
             "colour": present.status_colour(s)} for s in REPORT_STATUSES]


def _tiles() -> dict | None:
    s = settings()
    return {"url": s.tile_url, "attribution": s.tile_attribution} if s.tile_url else None


def _street_for_map(street: dict, lang: str) -> dict:
    return {"code": street["code"], "label": present.localized(street, "name", lang),
            "geometry": street["geometry"]}


def _report_item(rec: dict, lang: str, tz: str) -> dict:
    """One line of "my reports": what the list shows, all formatted here."""
    photos = [present.photo(p) for p in rec.get("photos", ()) if p["kind"] == "before"]
    return {"id": rec["id"], "url": url_for("phone.report_page", report_id=rec["id"]),
            "thumb": photos[0]["url"] if photos else None,
            "category": f'{rec["category_code"]} {present.localized(rec, "category_name", lang)}',
            "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
            "changed": present.local_time(rec["updated_at"], tz, lang)}


@bp.get("/")
@login_required()
def home():
    endpoint = HOME_OF_ROLE.get(current_user.role, "maps.show_map")
    if endpoint not in current_app.view_functions:  # a page not in this version (the auditor's, [6])
        endpoint = "auth.change_password"
    return redirect(url_for(endpoint))


@bp.get("/my")
@login_required("representative")
def my_street():
    session, s, lang = read_session(), settings(), current_language()
    user = current_user.user
    viewer = Viewer.of(user)
    street = street_outline(session, viewer.street_id)
    now = dt.datetime.now(dt.timezone.utc)
    progress = monthly_progress(session, user, now, s.display_tz)
    start, end = month_bounds(now, s.display_tz)
    last_day = (end - dt.timedelta(days=1)).date()
    mine, mine_total = list_reports(session, ReportFilter(reporter_id=user.id, viewer=viewer, limit=MY_REPORTS_SHOWN))
    data = {
        "lang": lang,
        "username": user.username,
        "street": _street_for_map(street, lang),
        "quota": {"taken": progress.taken, "quota": progress.quota, "days_left": progress.days_left,
                  "met": progress.met},
        "tiles": _tiles(),
        "statuses": _status_legend(lang),
        "labels": {k: _(msgid) for k, msgid in MY_STREET_LABELS.items()},
        "queue_labels": queue_labels(),  # the outbox (queue.js) speaks the pin page's words
        "endpoints": {
            "reports": url_for("api.index_reports", street=street["code"], limit=200),
            "walks_post": url_for("api_walks.post_chunk"),
            "walks": url_for("api_walks.stretches", street=street["code"],
                             **{"from": start.date().isoformat(), "to": last_day.isoformat()}),
            "report_page": url_for("phone.report_page", report_id=0)[:-1],  # + id
        },
    }
    return render_template(
        "phone/my_street.html", data=data, street=street, street_label=data["street"]["label"],
        street_length=present.distance(street["length_m"], lang), progress=progress,
        reports=[_report_item(r, lang, s.display_tz) for r in mine], reports_total=mine_total)


def _dispatch_reason(rec: dict, events: list[dict], lang: str) -> str:
    """The stored reason in Chinese; in English the rule it followed (the sentence names Chinese places)."""
    if lang != "en":
        return rec["dispatch_reason"]
    rule = next((e["data"].get("dispatch_rule") for e in events if e["action"] == "submit" and e["data"]), None)
    return translate(DISPATCH_RULES[rule], lang) if rule in DISPATCH_RULES else ""


def _event_line(e: dict, lang: str, tz: str) -> dict:
    return {"at": present.local_time(e["at"], tz, lang),
            "action": translate(ACTION_LABELS[e["action"]], lang) if e["action"] in ACTION_LABELS else e["action"],
            "to_status": present.status_label(e["to_status"], lang) if e["to_status"] else None,
            "actor": e["actor"]}


# The report's way through the closed loop, as the representative's page draws it: one step per
# main-path status, the current one marked. The side paths (rejected, merged, void, returned,
# reopened, ledger) are said in a sentence instead (_SIDE_PATHS).
STEPS = (("submitted", N_("提交")), ("accepted", N_("受理")), ("dispatched", N_("派遣")),
         ("unit_accepted", N_("签收")), ("in_progress", N_("处置")), ("handled", N_("办结")),
         ("verified", N_("评价")), ("closed", N_("结案")))
_SIDE_PATHS = {
    "rejected": N_("不予受理"),
    "merged": N_("已与问题 #%(id)s 合并"),
    "void": N_("已作废"),
    "returned": N_("单位已回退，等待重新派遣"),
    "reopened": N_("已退回返工"),
    "ledger": N_("已列入台账，承诺 %(date)s 前办好"),
}
# The unit's feedbacks the reporter reads as replies, with the photos that came with them.
REPLY_ACTIONS = ("progress", "handled")
# What the verification form's script says (it reads them from the page's data block).
VERIFY_LABELS = {
    "comment_required": N_("有一项评分低于 3 分：请写明不满意的原因，问题将退回单位返工。"),
    "choose_both": N_("请为两项都打分。"),
    "sending": N_("正在提交…"),
    "network": N_("网络不通，请稍后再试。"),
    "stale": N_("问题状态已有变化，正在刷新…"),
    "failed": N_("提交失败：{message}"),
}


def _progress(rec: dict, lang: str, tz: str) -> dict:
    """Where a report stands: the step line (main path) or one plain sentence (side path), and its deadline."""
    status = rec["status"]
    out = {"status": status, "status_label": present.status_label(status, lang), "steps": None, "side": None,
           "deadline": None, "overdue": bool(rec.get("overdue"))}
    order = [s for s, _label in STEPS]
    if status in order:
        here = order.index(status)
        out["steps"] = [{"label": translate(label, lang), "state": "done" if i < here else "current" if i == here
                         else "todo"} for i, (_s, label) in enumerate(STEPS)]
    else:
        out["side"] = translate(_SIDE_PATHS.get(status, present.STATUS_LABELS.get(status, status)), lang) % {
            "id": rec["merged_into_id"],
            "date": rec["ledger_promised_on"].isoformat() if rec["ledger_promised_on"] else ""}
    if rec["deadline_at"] is not None and status in RUNNING_STATUSES:  # the unit's clock runs
        out["deadline"] = present.local_time(rec["deadline_at"], tz, lang)
    return out


def _replies(session, rec: dict, lang: str, tz: str) -> list[dict]:
    """The unit's progress and handled feedbacks, oldest first, each with the photos it brought."""
    rows = session.execute(
        select(ReportEvent.id, ReportEvent.at, ReportEvent.action, ReportEvent.data,
               Unit.name.label("unit_name"), Unit.name_en.label("unit_name_en"))
        .join(User, User.id == ReportEvent.actor_id).outerjoin(Unit, Unit.id == User.unit_id)
        .where(ReportEvent.report_id == rec["id"], ReportEvent.action.in_(REPLY_ACTIONS))
        .order_by(ReportEvent.at, ReportEvent.id)).all()
    photos: dict[int, list[dict]] = {}
    for p in rec.get("photos", ()):
        if p.get("event_id") is not None:
            photos.setdefault(p["event_id"], []).append(present.photo(p))
    return [{"at": present.local_time(r.at, tz, lang), "action": lifecycle.action_label(r.action, lang),
             "kind": r.action, "unit": present.localized(r._mapping, "unit_name", lang) if r.unit_name else "",
             "text": (r.data or {}).get("text", ""), "photos": photos.get(r.id, [])} for r in rows]


def _verification(rec: dict) -> dict | None:
    if rec["reply_rating"] is None:
        return None
    return {"reply": rec["reply_rating"], "result": rec["result_rating"], "comment": rec["verify_comment"] or ""}


def _reason_of(events: list[dict], action: str) -> str:
    """The reason given with the latest `action` in a history (a rejection's, say)."""
    return next((e["data"].get("reason", "") for e in reversed(events) if e["action"] == action and e["data"]), "")


@bp.get("/reports/<int:report_id>")
@login_required(*roles_with("programme.use"))
def report_page(report_id: int):
    session, s, lang = read_session(), settings(), current_language()
    viewer = Viewer.of(current_user.user)
    rec = get_report(session, report_id)
    seen = access_to(viewer, rec) if rec is not None else None
    if seen is None:  # not there, or not this user's to see: the same answer (domain/visibility.py)
        abort(404)
    full = seen == FULL
    events = events_of(session, report_id) if full else []
    street = street_outline(session, rec["street_id"])
    colour = present.status_colour(rec["status"])
    data = {"street": _street_for_map(street, lang), "point": {"lat": rec["lat"], "lon": rec["lon"], "colour": colour},
            "tiles": _tiles()}
    report = {
        "id": rec["id"], "full": full,
        "photos": [present.photo(p) for p in rec.get("photos", ())],
        "position": _("%(street)s，距起点 %(position)s", street=present.localized(rec, "street_name", lang),
                      position=present.distance(rec["position_m"], lang)),
        "category": " › ".join(present.localized(c, "name", lang)
                               for c in category_path(session, rec["category_code"])),
        "status": rec["status"], "status_label": present.status_label(rec["status"], lang),
        "created": present.local_time(rec["created_at"], s.display_tz, lang),
        "updated": present.local_time(rec["updated_at"], s.display_tz, lang),
    }
    # the lifecycle ([3]): where it stands, the unit's replies (to the reporter, and to the reporters
    # of duplicates merged into it), the verification form once handled
    report["progress"] = _progress(rec, lang, s.display_tz)
    report["photos"] = [p for p in report["photos"] if p["kind"] == "before"]  # the rest go with their reply
    follower = viewer.user_id in (rec["merged_reporter_ids"] or ())
    report["replies"] = _replies(session, rec, lang, s.display_tz) if full or follower else []
    report["verification"] = _verification(rec) if full else None
    report["may_verify"] = full and "verify" in lifecycle.available_actions(viewer, rec)
    report["survivor"] = None
    if rec["status"] == "merged" and rec["merged_into_id"] is not None:
        survivor = get_report(session, rec["merged_into_id"])
        if survivor is not None and access_to(viewer, survivor) is not None:
            report["survivor"] = {"id": survivor["id"], "url": url_for("phone.report_page", report_id=survivor["id"]),
                                  "progress": _progress(survivor, lang, s.display_tz),
                                  "replies": _replies(session, survivor, lang, s.display_tz)}
    if rec["status"] == "rejected" and full:
        report["progress"]["reason"] = _reason_of(events, "reject")
    if report["may_verify"]:
        data["verify"] = {"url": url_for("api.report_action", report_id=rec["id"]), "version": rec["version"],
                          "satisfied": SATISFIED, "labels": {k: _(m) for k, m in VERIFY_LABELS.items()}}
    if full:
        report |= {"description": rec["description"], "unit": present.localized(rec, "unit_name", lang),
                   "dispatch_reason": _dispatch_reason(rec, events, lang),
                   "events": [_event_line(e, lang, s.display_tz) for e in events]}
    return render_template("phone/report.html", report=report, data=data)


@bp.route("/account/api-key", methods=["GET", "POST"])
@login_required()
def api_key():
    """Only the key's hash is stored, so a key is shown once: right after it is issued (the POST)."""
    new_key = None
    if request.method == "POST":  # CSRFProtect has checked the form's token before we get here
        with database().transaction() as session:
            new_key = issue_api_key(session, current_user.username)
            audit.record(session, audit_actor(), audit.API_KEY_ISSUED, object_type="user",
                         object_id=current_user.username, details={"via": "own account page"})
    has_key = new_key is not None or bool(current_user.user.api_key_hash)
    response = current_app.make_response(render_template("phone/api_key.html", new_key=new_key, has_key=has_key))
    response.headers["Cache-Control"] = "no-store"  # the key must not stay in a cache or the back button
    return response
