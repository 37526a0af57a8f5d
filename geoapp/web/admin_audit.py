"""The audit administrator's read side (审计管理员, 等保 2.0): the trail (geoapp/domain/audit.py),
read and taken out — by the role with the capability "audit.read" only (core/permissions.py: the
auditor), never by the other administrators, whose acts the trail holds.

- `GET /api/v1/audit?event=&user=&from=&to=&after=&limit=`: a page of rows, newest first, as
  audit.as_json gives them: `{"audit": [...], "next": link or null}`. Bearer API key or the session.
- `/admin/audit`: the same filters as a form, a page of rows, and a link to older ones.
- `/admin/audit.csv`: every matching row (audit.iter_search), streamed as UTF-8 CSV with a BOM
  (Excel on Chinese Windows), through web/tables.py like every table the app lets out (its cells are
  neutralised against formula injection there, in one place).

Pages go by keyset: `after` is the id of the last row seen, the next page holds older rows. `from` /
`to` are a calendar day in the city's display time zone (`to` includes that whole day) or an ISO
8601 moment with its zone (`to` is then the end, exclusive, like the day's next midnight).

Every read is itself written to the trail (AUDIT_READ, on a connection of its own: the read commits
nothing else), with its filters and how many rows it gave, so reading the trail leaves a trace the
next reader sees. A refused query (a bad filter) reads nothing and writes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, g, jsonify, render_template, request, url_for

from ..core.administration import ROLE_LABELS
from ..core.permissions import NotPermitted, may, roles_with
from ..domain import audit
from ..domain.audit import AuditQuery
from ..domain.errors import BadInput
from ..domain.inputs import parse_day
from ..translations import N_, Text, translate
from . import database, read_session, settings
from .auth import audit_actor, audit_now, login_required
from .doors import api_login_required
from .i18n import current_language
from .tables import csv_response

bp = Blueprint("admin_audit", __name__)
api_bp = Blueprint("admin_audit_api", __name__, url_prefix="/api/v1")

CAPABILITY = "audit.read"
PAGE_DEFAULT, PAGE_MAX = 100, 500
NO_STORE = {"Cache-Control": "private, no-store"}  # the trail names people and addresses: no cache keeps it

# What each event is, as the auditor reads it (the trail stores the code: audit.EVENTS).
EVENT_LABELS = {
    audit.SIGN_IN: N_("登录成功"),
    audit.SIGN_IN_FAILED: N_("登录失败"),
    audit.SIGN_IN_LOCKED: N_("登录被锁定"),
    audit.SIGN_OUT: N_("退出登录"),
    audit.PASSWORD_CHANGED: N_("修改本人密码"),
    audit.PASSWORD_SET: N_("命令行设置密码"),
    audit.API_KEY_ISSUED: N_("签发 API 密钥"),
    audit.API_KEY_REVOKED: N_("吊销 API 密钥"),
    audit.USER_CREATED: N_("新建账号"),
    audit.USER_DISABLED: N_("停用账号"),
    audit.USER_ENABLED: N_("启用账号"),
    audit.USER_EXPIRY_SET: N_("设置账号有效期"),
    audit.PASSWORD_RESET: N_("重置密码"),
    audit.ROLE_CHANGED: N_("变更角色"),
    audit.ASSIGNMENT_CHANGED: N_("变更所属单位或代表"),
    audit.UNIT_CHANGED: N_("修改责任单位"),
    audit.STREET_HANDED_OVER: N_("街路代表交接"),
    audit.CITY_DATA_LOADED: N_("重新载入城市数据"),
    audit.REPORT_ACTION: N_("问题处置操作"),
    audit.REPORT_VIEW: N_("查看问题"),
    audit.EXPORT: N_("导出开放数据"),
    audit.ALBUM_ISSUE: N_("印发问题图册"),
    audit.ALBUM_DOWNLOAD: N_("下载问题图册"),
    audit.PHOTO_ORIGINAL_VIEW: N_("查看原始照片"),
    audit.AUDIT_READ: N_("查阅审计记录"),
    audit.AUDIT_EXPORT: N_("归档并删除旧审计记录"),
    audit.POLICY_CHANGED: N_("修改安全策略"),
    audit.TOTP_ENABLED: N_("启用动态口令"),
    audit.TOTP_DISABLED: N_("停用动态口令"),
    audit.SIGN_IN_SECOND_FACTOR_FAILED: N_("动态口令错误"),
}
OUTCOME_LABELS = {"ok": N_("成功"), "refused": N_("拒绝"), "failed": N_("失败")}
# the trail's roles beyond the accounts' (audit.Actor.cli: the operator at the server's command line)
OTHER_ROLE_LABELS = {"cli": N_("服务器命令行")}

# the query's fields, as a Chinese refusal names them (English names them as the API spells them)
FIELD_LABELS = {"event": N_("事件"), "user": N_("用户名"), "from": N_("开始时间"), "to": N_("结束时间"),
                "after": N_("翻页位置"), "limit": N_("每页条数")}
MOMENT_FORMAT = N_("须为 YYYY-MM-DD 格式的日期，或带时区的 ISO 8601 时间（例如 2026-05-01T08:00+08:00）。")
MOMENT_RANGE = N_("超出可查询的时间范围。")
PERIOD_ORDER = N_("开始时间须早于结束时间。")  # an empty period is a mistake, not a question
UNKNOWN_EVENT = N_("未知的审计事件“{value}”；可选：{allowed}。")
INTEGER = N_("须为用数字 0-9 书写的整数。")
RANGE = N_("须在 {lo} 到 {hi} 之间。")

# an ISO 8601 moment that says its zone; a '+' the client did not write as %2B arrives as a space
# (form encoding), so " 08:00" after the time is read as "+08:00"
_MOMENT = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)"
                     r"(Z|[+-][0-9]{2}:[0-9]{2}| [0-9]{2}:[0-9]{2})")
_ID = re.compile(r"[0-9]{1,18}")
_FILTERS = ("event", "user", "from", "to")


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (doors.api_login_required)
    csrf.exempt(api_bp)


# --- the query ------------------------------------------------------------------------------------

def _refused(field: str, problem: str, **params) -> BadInput:
    return BadInput(field=field, field_label=Text(FIELD_LABELS[field]), problem=Text(problem, **params))


def _moment(field: str, value: str, zone: ZoneInfo) -> dt.datetime:
    """`from`/`to` as the moment a query bound is: a day's first moment (for `to`, the next day's:
    the whole day is in), or the moment given with its zone."""
    value = value.strip()
    try:
        day = parse_day(value)
    except ValueError:
        day = None
    try:
        if day is not None:
            return dt.datetime.combine(day + dt.timedelta(days=1) if field == "to" else day, dt.time(), zone)
        found = _MOMENT.fullmatch(value)
        if found is None:
            raise _refused(field, MOMENT_FORMAT)
        offset = found.group(2).replace(" ", "+")
        return dt.datetime.fromisoformat(found.group(1).replace(" ", "T") + ("+00:00" if offset == "Z" else offset))
    except OverflowError:  # 9999-12-31 has no next day
        raise _refused(field, MOMENT_RANGE) from None
    except ValueError:  # 2026-02-30, 25:00, an offset of a day or more
        raise _refused(field, MOMENT_FORMAT) from None


def _whole_number(field: str, value: str, lo: int, hi: int) -> int:
    if not _ID.fullmatch(value.strip()):
        raise _refused(field, INTEGER)
    n = int(value)
    if not lo <= n <= hi:
        raise _refused(field, RANGE, lo=lo, hi=hi)
    return n


def audit_query(args, tz: str) -> AuditQuery:
    """The query string as the domain's AuditQuery, or a BadInput naming the field and why."""
    given = {k: (args.get(k) or "") for k in _FILTERS + ("after", "limit")}
    event = given["event"].strip() or None
    if event is not None and event not in audit.EVENTS:
        raise _refused("event", UNKNOWN_EVENT, value=event[:64], allowed=", ".join(audit.EVENTS))
    # the name as the trail stores it (audit._entry: NUL becomes U+FFFD, cut to TEXT_LIMIT), so a
    # failed sign-in's odd username is found by what was typed
    username = given["user"].strip().replace("\x00", "\ufffd")[:audit.TEXT_LIMIT] or None
    zone = ZoneInfo(tz)
    start = _moment("from", given["from"], zone) if given["from"].strip() else None
    end = _moment("to", given["to"], zone) if given["to"].strip() else None
    if start is not None and end is not None and start >= end:
        raise _refused("from", PERIOD_ORDER)
    after = _whole_number("after", given["after"], 1, 2**63 - 1) if given["after"].strip() else None
    limit = _whole_number("limit", given["limit"], 1, PAGE_MAX) if given["limit"].strip() else PAGE_DEFAULT
    return AuditQuery(event=event, username=username, start=start, end=end, before_id=after, limit=limit)


def _page_of(q: AuditQuery) -> tuple[list[dict], bool]:
    """One page of rows, and whether older ones match too (one row more is read to know)."""
    rows = audit.search(read_session(), dataclasses.replace(q, limit=q.limit + 1))
    return rows[:q.limit], len(rows) > q.limit


def _read(q: AuditQuery, fmt: str, rows: int) -> None:
    audit_now(audit.AUDIT_READ, object_type="audit_log", details={"format": fmt, **q.as_details(), "rows": rows})


def _given_filters(*names: str) -> dict:
    return {k: request.args[k] for k in names if request.args.get(k)}


# --- the API --------------------------------------------------------------------------------------

@api_bp.get("/audit")
@api_login_required
def api_audit():
    # who may read comes before what is asked: another role learns nothing from a 400
    if not may(g.user.role, CAPABILITY):
        raise NotPermitted()
    q = audit_query(request.args, settings().display_tz)
    rows, more = _page_of(q)
    _read(q, "json", len(rows))
    # relative to this server: the Host header is the client's to set, so it never makes a link
    following = (request.path + "?" + urlencode(_given_filters(*_FILTERS, "limit") | {"after": rows[-1]["id"]})
                 if more else None)
    return jsonify({"audit": [audit.as_json(r) for r in rows], "next": following}), 200, NO_STORE


# --- the page -------------------------------------------------------------------------------------

def _label(labels: dict, code: str | None, lang: str) -> str:
    return translate(labels[code], lang) if code in labels else (code or "")


def _shown(row: dict, zone: ZoneInfo, lang: str) -> dict:
    return {"id": row["id"], "at": row["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": row["actor"] or "", "role": _label(ROLE_LABELS | OTHER_ROLE_LABELS, row["role"], lang),
            "client_addr": row["client_addr"] or "", "request_id": row["request_id"] or "",
            "event": row["event"], "event_label": _label(EVENT_LABELS, row["event"], lang),
            "object": " ".join(v for v in (row["object_type"], row["object_id"]) if v),
            "outcome": row["outcome"], "outcome_label": _label(OUTCOME_LABELS, row["outcome"], lang),
            "details": _details(row["details"])}


def _details(details) -> str:
    # one line, keys sorted; ", " lets a narrow cell wrap between items
    return json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""


@bp.get("/admin/audit")
@login_required(*roles_with(CAPABILITY))
def page():
    lang, tz = current_language(), settings().display_tz
    context = {"filters": {k: request.args.get(k, "") for k in _FILTERS}, "tz": tz,
               "events": [{"code": e, "label": _label(EVENT_LABELS, e, lang)} for e in audit.EVENTS],
               "filtered": bool(_given_filters(*_FILTERS)), "rows": []}
    try:
        q = audit_query(request.args, tz)
    except BadInput as exc:
        return render_template("admin/audit.html", error=exc.message(lang), **context), 400, NO_STORE
    rows, more = _page_of(q)
    _read(q, "html", len(rows))
    kept = _given_filters(*_FILTERS, "limit")
    zone = ZoneInfo(tz)
    context |= {
        "rows": [_shown(r, zone, lang) for r in rows],
        "older_url": url_for("admin_audit.page", **kept, after=rows[-1]["id"]) if more else None,
        "newest_url": url_for("admin_audit.page", **kept) if q.before_id is not None else None,
        "csv_url": url_for("admin_audit.export_csv", **_given_filters(*_FILTERS)),
    }
    return render_template("admin/audit.html", **context), 200, NO_STORE


# --- the CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (("id", N_("编号")), ("at", N_("时间（{tz}）")), ("actor_id", N_("用户编号")), ("actor", N_("操作人")),
               ("role", N_("角色")), ("client_addr", N_("客户端地址")), ("request_id", N_("请求编号")),
               ("event", N_("事件")), ("event_label", N_("事件说明")), ("object_type", N_("对象类型")),
               ("object_id", N_("对象编号")), ("outcome", N_("结果")), ("details", N_("详情")),
               ("prev_hash", N_("前一条哈希")), ("hash", N_("哈希")))


@bp.get("/admin/audit.csv")
@login_required(*roles_with(CAPABILITY))
def export_csv():
    lang, tz = current_language(), settings().display_tz
    q = audit_query(request.args, tz)  # a BadInput: the error page, 400
    # recorded before a byte leaves; the file then holds exactly the matching rows older than this
    # record: every writer before it had committed (they take the chain's lock in turn), and rows
    # written while the file streams are not in it
    read_id = audit.record_independently(database().engine, audit_actor(), audit.AUDIT_READ, object_type="audit_log",
                                         details={"format": "csv", **q.as_details()})
    q = dataclasses.replace(q, before_id=min(q.before_id or read_id, read_id))
    zone = ZoneInfo(tz)
    headers = [translate(msgid, lang).format(tz=tz) for _key, msgid in CSV_COLUMNS]

    def rows():
        # a connection of its own: the body streams after the view has returned
        with database().engine.connect() as conn:
            for row in audit.iter_search(conn, q):
                cells = row | {"at": row["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                               "event_label": _label(EVENT_LABELS, row["event"], lang),
                               "details": _details(row["details"])}
                yield [cells[key] for key, _msgid in CSV_COLUMNS]

    today = dt.datetime.now(zone).date().isoformat()
    return csv_response(headers, rows(), f"{translate(N_('审计记录'), lang)}-{today}.csv")
