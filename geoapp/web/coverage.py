"""Coverage per road: /coverage, /coverage/<code>, GET /api/v1/coverage and the table's CSV/XLSX exports (issue [4]).

Thin: the query is parsed by domain/coverage.py's schema, the figures come from domain/coverage.py
(one set-based statement), and each surface only shapes them: JSON, the page (a table rendered here,
sorted and drawn by static/js/coverage.js over the same figures as JSON data), CSV, XLSX.

Who: dispatchers, admins and leaders read every street; a representative reads their own street
(their list holds only it; another street's page or API answer is a 404, as for reports); anyone
else (a unit handler) is refused with 403.
"""
from __future__ import annotations

import datetime as dt

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from flask import Blueprint, Flask, abort, g, jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import present
from ..domain import coverage
from ..domain.visibility import Viewer
from ..translations import LOCALES, N_, translate
from . import read_session, settings
from .doors import api_login_required
from .auth import login_required
from .i18n import current_language
from .tables import Sheet, csv_response, xlsx_bytes, xlsx_response

bp = Blueprint("coverage", __name__)
api_bp = Blueprint("coverage_api", __name__, url_prefix="/api/v1")

# The words coverage.js shows (msgids, said in the reader's language).
LABELS = {
    "covered": N_("已覆盖"), "uncovered": N_("未覆盖"), "by_others": N_("仅他人覆盖"),
    "load_error": N_("地图数据加载失败，请重试。"), "metres": N_("{from}–{to} 米"),
}

# The table's columns, in the exports as on the page: (key, msgid, kind).
COLUMNS = (
    ("code", N_("街路编号"), "text"),
    ("street", N_("街路"), "text"),
    ("representative", N_("代表"), "text"),
    ("length_m", N_("长度（米）"), "metres"),
    ("covered_m", N_("已覆盖（米）"), "metres"),
    ("covered_share", N_("覆盖率"), "share"),
    ("gaps", N_("未覆盖段数"), "count"),
    ("longest_gap_m", N_("最长未覆盖段（米）"), "metres"),
    ("photos", N_("本月照片"), "count"),
    ("quota", N_("月定额"), "count"),
    ("problems", N_("问题数"), "count"),
    ("problems_per_km", N_("每公里问题数"), "decimal"),
    ("others_covered_m", N_("他人覆盖（米）"), "metres"),
)
# How the figures were counted, said beside them (the page, the XLSX).
DEFINITION = N_("街路按分段长度切分；本时段内该街路代表本人的巡街轨迹经过、或其上报的问题点落在某一分段，"
                "该分段即为已覆盖（最后一段按实际长度计）。他人的巡街和上报另列，不计入代表的覆盖。"
                "问题数为本时段该街路上报的问题（不含合并、作废、不予受理）。照片为时段末所在月份计入定额的照片数。")
GAP_COLUMNS = (
    ("code", N_("街路编号"), "text"), ("street", N_("街路"), "text"),
    ("from_m", N_("起点（米）"), "metres"), ("to_m", N_("终点（米）"), "metres"),
    ("length_m", N_("长度（米）"), "metres"), ("from_near", N_("起点附近路口"), "text"),
    ("to_near", N_("终点附近路口"), "text"), ("last_covered_at", N_("最近一次覆盖"), "text"),
)


def init_app(app: Flask, csrf) -> None:
    coverage.check_bin_m(app.config["GEOAPP"].coverage_bin_m)  # a bad COVERAGE_BIN_M stops the app at startup
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)


def _answer(viewer: Viewer, args: dict, *, bins: bool | None = None) -> dict:
    """The coverage the viewer may read for the request's query; 403 / 404 as the module says."""
    query = coverage.parse_query(args)
    if bins is not None:
        query = query.model_copy(update={"bins": bins})
    try:
        answer = coverage.report(read_session(), viewer, query, settings().coverage_bin_m)
    except coverage.NotYours:
        abort(404)
    if answer is None:
        abort(403)
    return answer


def _with_places(answer: dict, lang: str) -> dict:
    """Each gap said as a person finds it ("人民街至中央大街之间"), in the reader's language."""
    for s in answer["streets"]:
        for gap in s["gaps"]:
            gap["place"] = coverage.gap_place(gap, lang)
    return answer


@api_bp.get("/coverage")
@api_login_required
def api_coverage():
    return jsonify(_with_places(_answer(g.viewer, request.args.to_dict()), current_language()))


# ---- shaping for people ----------------------------------------------------------------------------

def _number(value, lang: str, digits: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=LOCALES[lang])


def _share(value, lang: str) -> str:
    return format_percent(value, "#,##0.0%", locale=LOCALES[lang])


def _when(iso: str | None, lang: str) -> str:
    if iso is None:
        return translate(N_("从未"), lang)
    return format_datetime(dt.datetime.fromisoformat(iso), "short", tzinfo=coverage.DAY_TZ, locale=LOCALES[lang])


def _gap_row(s: dict, gap: dict, lang: str) -> dict:
    return {
        "from_m": gap["from_m"], "to_m": gap["to_m"], "length_m": gap["length_m"],
        "range": translate(N_("{from}–{to} 米"), lang).format(**{"from": _number(gap["from_m"], lang),
                                                                "to": _number(gap["to_m"], lang)}),
        "length": present.distance(gap["length_m"], lang),
        "place": coverage.gap_place(gap, lang),
        "from_near": coverage.near_name(gap["from_near"], lang) or "",
        "to_near": coverage.near_name(gap["to_near"], lang) or "",
        "last": _when(gap["last_covered_at"], lang),
        "last_covered_at": gap["last_covered_at"],
    }


def _row(s: dict, lang: str) -> dict:
    """One street as the table shows it: display text, and the raw numbers it sorts by."""
    rep = s["representative"]["name"] if s["representative"] else "—"
    quota_share = s["photos"] / s["quota"] if s["quota"] else 0.0
    return {
        "code": s["street"]["code"],
        "street": present.localized(s["street"], "name", lang),
        "representative": rep,
        "url": url_for("coverage.street_page", code=s["street"]["code"], **_period_args()),
        "length": present.distance(s["length_m"], lang), "length_m": s["length_m"],
        "covered": present.distance(s["covered_m"], lang), "covered_m": s["covered_m"],
        "share": _share(s["covered_share"], lang), "covered_share": s["covered_share"],
        "gaps": len(s["gaps"]),
        "longest": present.distance(s["longest_gap_m"], lang), "longest_gap_m": s["longest_gap_m"],
        "quota_text": f"{s['photos']} / {s['quota']}" if s["quota"] else "—",
        "photos": s["photos"], "quota": s["quota"], "quota_share": round(quota_share, 4),
        "quota_met": bool(s["quota"]) and s["photos"] >= s["quota"],
        "problems": s["problems"], "per_km": _number(s["problems_per_km"], lang, 2),
        "problems_per_km": s["problems_per_km"],
        "others": present.distance(s["others_covered_m"], lang), "others_covered_m": s["others_covered_m"],
        "gap_rows": [_gap_row(s, gap, lang) for gap in s["gaps"]],
    }


def _period_args() -> dict:
    """The period parameters of this request, carried into links (the table's, the exports')."""
    return {k: v for k, v in request.args.items() if k in ("from", "to", "bin_m") and v}


def _period_text(answer: dict, lang: str) -> str:
    a, b = (format_date(dt.date.fromisoformat(answer[k]), "medium", locale=LOCALES[lang]) for k in ("from", "to"))
    return _("%(a)s 至 %(b)s", a=a, b=b)


def _map_streets(answer: dict, lang: str) -> list[dict]:
    """What the map draws of each street: its runs of bins (covered, not, by others only) as GeoJSON."""
    return [{"code": s["street"]["code"], "name": present.localized(s["street"], "name", lang),
             "share": _share(s["covered_share"], lang), "runs": s.get("runs", [])} for s in answer["streets"]]


def _page_data(answer: dict, lang: str, **extra) -> dict:
    cfg = settings()
    return {"lang": lang, "labels": {k: _(v) for k, v in LABELS.items()},
            "tiles": {"url": cfg.tile_url, "attribution": cfg.tile_attribution} if cfg.tile_url else None,
            "period": {"from": answer["from"], "to": answer["to"]},
            "streets": _map_streets(answer, lang), **extra}


@bp.get("/coverage")
@login_required()
def table_page():
    lang = current_language()
    answer = _answer(Viewer.of(current_user.user), request.args.to_dict(), bins=True)
    rows = [_row(s, lang) for s in answer["streets"]]
    city = answer["city"]
    return render_template(
        "coverage/table.html", rows=rows, answer=answer, period_text=_period_text(answer, lang),
        city_share=_share(city["covered_share"], lang), city_length=present.distance(city["length_m"], lang),
        city_covered=present.distance(city["covered_m"], lang), city=city,
        exports={"csv": url_for("coverage.export_csv", **_period_args()),
                 "xlsx": url_for("coverage.export_xlsx", **_period_args())},
        bin_range=coverage.BIN_M_RANGE, bin_step=coverage.BUCKET_M, definition=DEFINITION,
        page_data=_page_data(answer, lang, page="table"))


@bp.get("/coverage/<code>")
@login_required()
def street_page(code: str):
    lang = current_language()
    args = request.args.to_dict() | {"street": code}
    answer = _answer(Viewer.of(current_user.user), args)
    s = answer["streets"][0]
    row = _row(s, lang)
    history = coverage.quota_history(read_session(), coverage.street_id_of(read_session(), s["street"]["code"]),
                                     dt.date.fromisoformat(answer["to"]))
    return render_template(
        "coverage/street.html", row=row, s=s, answer=answer, period_text=_period_text(answer, lang),
        history=history, bin_range=coverage.BIN_M_RANGE, bin_step=coverage.BUCKET_M, definition=DEFINITION,
        back=url_for("coverage.table_page", **_period_args()),
        page_data=_page_data(answer, lang, page="street", street=s["street"]["code"]))


# ---- exports -------------------------------------------------------------------------------------



def _table(answer: dict, lang: str) -> tuple[list[str], list[list], list[str], list[list]]:
    """(headers, rows, gap headers, gap rows) of the export, numbers as numbers."""
    heads = [translate(msgid, lang) for _k, msgid, _t in COLUMNS]
    rows = []
    for s in answer["streets"]:
        values = {**s, "code": s["street"]["code"], "street": present.localized(s["street"], "name", lang),
                  "representative": s["representative"]["name"] if s["representative"] else "",
                  "gaps": len(s["gaps"]), "quota": s["quota"] or 0}
        rows.append([values[k] for k, _m, _t in COLUMNS])
    gap_heads = [translate(msgid, lang) for _k, msgid, _t in GAP_COLUMNS]
    gap_rows = []
    for s in answer["streets"]:
        for gap in s["gaps"]:
            gap_rows.append([s["street"]["code"], present.localized(s["street"], "name", lang), gap["from_m"],
                             gap["to_m"], gap["length_m"], coverage.near_name(gap["from_near"], lang) or "",
                             coverage.near_name(gap["to_near"], lang) or "",
                             _when(gap["last_covered_at"], lang)])
    return heads, rows, gap_heads, gap_rows


def _filename(answer: dict, ext: str) -> str:
    return f"coverage_{answer['from']}_{answer['to']}.{ext}"


@bp.get("/coverage.csv")
@login_required()
def export_csv():
    answer = _answer(Viewer.of(current_user.user), request.args.to_dict())
    heads, rows, _gh, _gr = _table(answer, current_language())
    return csv_response(heads, rows, _filename(answer, "csv"))


@bp.get("/coverage.xlsx")
@login_required()
def export_xlsx():
    lang = current_language()
    answer = _answer(Viewer.of(current_user.user), request.args.to_dict())
    heads, rows, gap_heads, gap_rows = _table(answer, lang)
    about = [(translate(N_("开始日期"), lang), answer["from"]), (translate(N_("结束日期"), lang), answer["to"]),
             (translate(N_("分段长度（米）"), lang), answer["bin_m"]),
             (translate(N_("覆盖的定义"), lang), translate(DEFINITION, lang))]
    body = xlsx_bytes(
        Sheet(translate(N_("覆盖率"), lang), heads, rows, kinds=[k for _c, _m, k in COLUMNS],
              widths=[16] * len(COLUMNS)),
        Sheet(translate(N_("未覆盖路段"), lang), gap_heads, gap_rows, kinds=[k for _c, _m, k in GAP_COLUMNS],
              widths=[16] * len(GAP_COLUMNS)),
        Sheet(translate(N_("说明"), lang), about[0], about[1:], widths=[20, 60]))
    return xlsx_response(body, _filename(answer, "xlsx"))
