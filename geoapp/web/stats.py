"""the programme's statistics: /stats, the monthly bulletin /stats/bulletin, GET /api/v1/stats (issue [4]).

Thin: the query goes through geoapp.domain.stats (pydantic; a 400 names the field), the figures are
counted there in one SQL statement per grouping, and the pages lay them out. Who may read them:
dispatchers, admins and leaders (visibility.reads_programme); anyone else gets 403.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, abort, g, render_template, request, url_for
from babel.dates import format_date as _babel_date
from babel.numbers import format_decimal, format_percent
from flask_babel import gettext as _

from ..core.permissions import roles_with
from ..domain import stats
from ..domain.visibility import reads_programme
from ..domain.working_time import OfficeHours
from ..translations import LOCALES, N_, translate
from . import read_session, settings
from .doors import api_login_required
from .auth import login_required
from .i18n import current_language

bp = Blueprint("stats", __name__)
api_bp = Blueprint("stats_api", __name__, url_prefix="/api/v1")

# The headline figures, in the order a page shows them; the tables' columns.
HEADLINE = ("completion_rate", "on_time_rate", "first_dispatch_accuracy", "rework_rate", "hand_back_rate",
            "handling_days_mean", "handling_days_median", "satisfied_rate", "reply_rating_mean",
            "result_rating_mean", "overdue", "ledger")
COLUMNS = ("completion_rate", "on_time_rate", "first_dispatch_accuracy", "rework_rate", "handling_days_mean",
           "satisfied_rate", "overdue", "ledger")
TABLES = (("unit", N_("按责任单位")), ("class", N_("按问题大类")), ("category", N_("按问题类别")),
          ("street", N_("按重点街路")))
# The words stats.js writes into the charts.
CHART_LABELS = {
    "handed_over": N_("交办"), "handled": N_("已办结"), "completion_rate": N_("办结率"),
    "on_time_rate": N_("按期结案率"), "count": N_("件数"), "rate": N_("比率"),
}


def format_date(day: dt.date, fmt: str = "medium") -> str:
    return _babel_date(day, fmt, locale=LOCALES[current_language()])


def _today(tz: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def _hours() -> OfficeHours:
    return OfficeHours.from_settings(settings())


def _require_reader() -> None:
    if not reads_programme(g.viewer):
        abort(403)


@api_bp.get("/stats")
@api_login_required
def api_stats():
    """The figures of a period (local days `from`..`to`, inclusive; `from` absent: the programme's first
    dispatch; `to` absent: today), overall and by unit / street / month / class / category / item."""
    _require_reader()
    query, by = stats.parse_query(request.args.to_dict())
    tz = settings().display_tz
    session = read_session()
    period = stats.resolve_period(session, query.from_, query.to, tz, _today(tz))
    return stats.statistics(session, period, by, _hours(), current_language())


# --- pages ------------------------------------------------------------------------------------------

def _shown(fig: dict, lang: str) -> str:
    """A figure's value as a reader writes it: "66.7%", "1.92 个工作日", "3.0 分", "2"; "—" without a denominator."""
    value, locale = fig["value"], LOCALES[lang]
    if value is None:
        return "—"
    if fig["kind"] == "share":
        return format_percent(value, "#,##0.0%", locale=locale)
    if fig["kind"] == "days":
        return _("%(n)s 个工作日", n=format_decimal(value, "#,##0.00", locale=locale))
    if fig["kind"] == "rating":
        return _("%(n)s 分", n=format_decimal(value, "0.0", locale=locale))
    return format_decimal(value, locale=locale)


def _ratio(fig: dict, lang: str) -> str:
    """What the figure was counted from: "4 / 6"; a median: "n = 4"."""
    locale = LOCALES[lang]
    if not fig["denominator"] and not fig["numerator"]:
        return ""            # nothing counted: the value's "—" says it
    den = format_decimal(fig["denominator"], locale=locale)
    if fig["numerator"] is None:
        return _("共 %(n)s 件", n=den)
    num = fig["numerator"]
    num = format_decimal(num, "#,##0.##", locale=locale) if isinstance(num, float) else format_decimal(num, locale=locale)
    return f"{num} / {den}"


def _cells(figures: dict, keys, lang: str) -> list[dict]:
    return [{"key": k, "label": figures[k]["label"], "value": _shown(figures[k], lang),
             "ratio": _ratio(figures[k], lang), "definition": figures[k]["definition"],
             "empty": figures[k]["value"] is None} for k in keys]


def _rows(groups: list[dict], lang: str) -> list[dict]:
    return [{"code": g["code"], "name": g["name"], "cells": _cells(g["figures"], COLUMNS, lang),
             "handed_over": g["figures"]["completion_rate"]["denominator"]} for g in groups]


def _trend(groups: list[dict], lang: str) -> dict:
    """The monthly series the charts draw (data, not markup: stats.js reads it from the JSON block)."""
    def series(key, part="value"):
        return [g["figures"][key][part] for g in groups]
    return {"months": [g["code"] for g in groups],
            "handed_over": series("completion_rate", "denominator"), "handled": series("completion_rate", "numerator"),
            "completion_rate": series("completion_rate"), "on_time_rate": series("on_time_rate"),
            "labels": {k: translate(v, lang) for k, v in CHART_LABELS.items()}}


def _period_links(today: dt.date) -> list[dict]:
    first = today.replace(day=1)
    last_month = (first - dt.timedelta(days=1)).replace(day=1)
    links = [(N_("本月"), first, today), (N_("上月"), last_month, stats.month_end(last_month)),
             (N_("今年"), today.replace(month=1, day=1), today)]
    out = [{"label": _(label), "url": url_for("stats.page", **{"from": a.isoformat(), "to": b.isoformat()})}
           for label, a, b in links]
    out.append({"label": _("开办以来"), "url": url_for("stats.page")})
    return out


@bp.get("/stats")
@login_required(*roles_with("reports.read_programme"))
def page():
    lang = current_language()
    query = stats.parse_query({k: request.args.get(k) for k in ("from", "to")})[0]
    tz = settings().display_tz
    session = read_session()
    today = _today(tz)
    period = stats.resolve_period(session, query.from_, query.to, tz, today)
    hours = _hours()
    overall = stats.compute(session, period, None, hours, lang)[0]["figures"]
    tables = []
    for by, title in TABLES:
        groups = stats.compute(session, period, by, hours, lang)
        for grp in groups:
            grp["name"] = grp["name_en"] or grp["name"] if lang == "en" else grp["name"]
        tables.append({"by": by, "title": _(title), "rows": _rows(groups, lang)})
    months = stats.compute(session, period, "month", hours, lang)
    return render_template(
        "stats/stats.html", period=period, headline=_cells(overall, HEADLINE, lang), tables=tables,
        columns=[{"key": k, "label": overall[k]["label"], "definition": overall[k]["definition"]} for k in COLUMNS],
        period_text=_period_text(period, lang), period_definition=translate(stats.PERIOD_DEFINITION, lang),
        links=_period_links(today), trend=_trend(months, lang),
        api_url=url_for("stats_api.api_stats", **{"from": period.start.isoformat(), "to": period.end.isoformat()}),
        bulletin_url=url_for("stats.bulletin"))


def _period_text(period: stats.Period, lang: str) -> str:
    return _("%(a)s 至 %(b)s", a=format_date(period.start, "medium"), b=format_date(period.end, "medium"))


@bp.get("/stats/bulletin")
@login_required(*roles_with("reports.read_programme"))
def bulletin():
    """The monthly bulletin a leader prints (A4): the month's figures beside the programme's to date,
    per unit and per street, and the trend of the twelve months up to it."""
    lang = current_language()
    tz = settings().display_tz
    today = _today(tz)
    month = stats.parse_month(request.args.get("month"), today)
    session = read_session()
    hours = _hours()
    period = stats.Period(month, stats.month_end(month))
    to_date = stats.resolve_period(session, None, period.end, tz, today)
    this = stats.compute(session, period, None, hours, lang)[0]["figures"]
    cumulative = stats.compute(session, to_date, None, hours, lang)[0]["figures"]
    headline = [{"label": this[k]["label"], "definition": this[k]["definition"],
                 "month": _shown(this[k], lang), "month_ratio": _ratio(this[k], lang),
                 "total": _shown(cumulative[k], lang), "total_ratio": _ratio(cumulative[k], lang)} for k in HEADLINE]
    tables = []
    for by, title in (TABLES[0], TABLES[3]):
        groups = stats.compute(session, period, by, hours, lang)
        for grp in groups:
            grp["name"] = grp["name_en"] or grp["name"] if lang == "en" else grp["name"]
        tables.append({"by": by, "title": _(title), "rows": _rows(groups, lang)})
    first = (month.replace(day=1) - dt.timedelta(days=330)).replace(day=1)
    months = stats.compute(session, stats.Period(max(first, to_date.start.replace(day=1)), period.end), "month",
                           hours, lang)
    previous = (month - dt.timedelta(days=1)).replace(day=1)
    following = (month + dt.timedelta(days=32)).replace(day=1)
    return render_template(
        "stats/bulletin.html", month=month, headline=headline, tables=tables,
        columns=[{"key": k, "label": this[k]["label"]} for k in COLUMNS],
        title=_("锦州市人大代表“随手拍”工作月报"), month_text=format_date(month, "yyyy年M月" if lang != "en" else "MMMM y"),
        to_date_text=_period_text(to_date, lang), period_text=_period_text(period, lang),
        period_definition=translate(stats.PERIOD_DEFINITION, lang), trend=_trend(months, lang),
        generated=format_date(today, "medium"),
        previous_url=url_for("stats.bulletin", month=previous.strftime("%Y-%m")),
        next_url=url_for("stats.bulletin", month=following.strftime("%Y-%m")) if following <= today else None,
        stats_url=url_for("stats.page", **{"from": period.start.isoformat(), "to": period.end.isoformat()}))


def init_app(app: Flask, csrf) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    # the API checks CSRF itself, only for writes that ride on the session cookie (api.api_login_required)
    csrf.exempt(api_bp)
