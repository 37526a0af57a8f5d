"""The programme's statistics: completion (办结率), on-time completion (按期结案率), first-dispatch
accuracy (准确派遣率), rework (返工率), hand-back (回退率), handling time in working days, satisfaction,
overdue and ledger items — overall and per unit, category (class / category / item), street or month,
for any period of local calendar days.

Which reports a period holds: those **first handed over (交办: first dispatched to a unit) within it**
— the moment of the report's first `dispatch` event in report_events, in the city's time zone, `from`
00:00 to the end of `to` (inclusive). A report belongs to one period for good; its outcome is read as
it stands now (completion "so far", as the programme publishes it).

Everything is counted set-based, in one SQL statement (`_SQL`): one pass over report_events gives each
report's first dispatch, whether it was ever handed back, handled, reopened; joined to `reports` for
its present state, it is grouped by the asked key. Handling time in working days is computed in the
same statement: the official calendar (domain/working_time.py's OfficeHours: chinesecalendar plus the
city's corrections) is sent as the list of its exceptions to Monday–Friday, and a working-time clock
W(t) = (working days before t's day) × day length + the office time of t's own day up to t; a duration
is W(handled) − W(dispatched). tests/test_stats.py checks that this equals
working_time.working_time_between on many moment pairs, so there is one definition of working time.

Overdue is `reports.OVERDUE`, the same expression the console uses.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import chinese_calendar
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..translations import N_, Text, translate
from .errors import BadInput
from .inputs import _date, _fail, refusal, validate
from .reports import OVERDUE
from .periods import Days
from .vocabulary import HANDLED_STATUSES, OPEN_STATUSES, SATISFIED, WITHDRAWN_STATUSES
from .working_time import OfficeHours

# --- what a client may ask ------------------------------------------------------------------------

# by= : the groups a figure can be split into. class / category / item are the taxonomy's levels
# (by=category&level=class is the same as by=class).
DIMENSIONS = ("unit", "street", "month", "class", "category", "item")
LEVELS = ("class", "category", "item")
# The earliest and latest day a period may name (keeps month and day series bounded).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)

_LABEL_BY = N_("统计维度")
_LABEL_LEVEL = N_("类别层级")
_LABEL_MONTH = N_("月份")


def _choice(field: str, label: str, allowed) -> BadInput:
    return BadInput(field=field, field_label=Text(label),
                    problem=Text(N_("未知取值；可选 {allowed}。"), allowed=", ".join(allowed)))


def _day(value: Any) -> dt.date | None:
    day = _date(value)
    if day is not None and not FIRST_DAY <= day <= LAST_DAY:
        raise _fail("range", lo=FIRST_DAY.isoformat(), hi=LAST_DAY.isoformat())
    return day


class StatsQuery(BaseModel):
    """The query string of GET /api/v1/stats and of /stats."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    from_: Annotated[dt.date | None, BeforeValidator(_day), Field(alias="from")] = None
    to: Annotated[dt.date | None, BeforeValidator(_day)] = None
    by: str | None = None
    level: str | None = None

    def dimension(self) -> str | None:
        """The grouping asked for: None (overall), unit, street, month, class, category or item."""
        by = self.by or None
        if by is not None and by not in DIMENSIONS:
            raise _choice("by", _LABEL_BY, DIMENSIONS)
        if self.level not in (None, ""):
            if self.level not in LEVELS:
                raise _choice("level", _LABEL_LEVEL, LEVELS)
            if by != "category":
                raise BadInput(field="level", field_label=Text(_LABEL_LEVEL),
                               problem=Text(N_("只能与 by=category 一起使用。")))
            by = self.level
        return by


def parse_query(args: dict) -> tuple[StatsQuery, str | None]:
    """The query and its grouping, or a BadInput naming the field (in the reader's language)."""
    query = validate(StatsQuery, {k: (v.strip() if isinstance(v, str) else v) for k, v in args.items()})
    if query.from_ is not None and query.to is not None and query.from_ > query.to:
        raise refusal("to", "date_order")
    return query, query.dimension()


_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def parse_month(value: str | None, today: dt.date) -> dt.date:
    """`YYYY-MM` as the month's first day; absent: the last complete month (a bulletin is read after it)."""
    if value in (None, ""):
        first = today.replace(day=1)
        return (first - dt.timedelta(days=1)).replace(day=1)
    found = _MONTH.fullmatch(value.strip()) if isinstance(value, str) else None
    if found and 1 <= int(found.group(2)) <= 12:
        month = dt.date(int(found.group(1)), int(found.group(2)), 1)
        if FIRST_DAY <= month <= LAST_DAY:
            return month
    raise BadInput(field="month", field_label=Text(_LABEL_MONTH), problem=Text(N_("须为 YYYY-MM 格式的月份。")))


def month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


# --- the figures ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    label: str          # msgid
    definition: str     # msgid: what was counted, said next to the figure
    kind: str           # share (0..1) | days | rating (1..5) | count
    numerator: str | None   # column of _SQL's result
    denominator: str


FIGURES: tuple[Figure, ...] = (
    Figure("completion_rate", N_("办结率"),
           N_("已办结 ÷ 交办。交办：本期内首次派遣到单位的问题（之后被合并、不予受理或作废的不计）；"
              "已办结：现处于已办结、已核实或已结案（返工中的不算）。"),
           "share", "handled", "handed_over"),
    Figure("on_time_rate", N_("按期结案率"),
           N_("按期办结 ÷ 已到期。按期办结：已办结且办结时间不晚于当时有效的处置时限（含批准的延期；返工按返工时限）；"
              "已到期：交办的问题中已办结的，加上时限已过仍未办结的（含挂账）。"),
           "share", "on_time", "due"),
    Figure("first_dispatch_accuracy", N_("准确派遣率"),
           N_("从未被回退 ÷ 派遣。派遣：本期内首次派遣的全部问题（含之后作废的）；"
              "按单位统计时归入首次派遣到的单位。"),
           "share", "first_time_right", "dispatched"),
    Figure("hand_back_rate", N_("回退率"),
           N_("至少回退一次 ÷ 派遣（与准确派遣率互补）；按单位统计时归入首次派遣到的单位。"),
           "share", "handed_back", "dispatched"),
    Figure("rework_rate", N_("返工率"),
           N_("至少返工一次（评价不满意或调度返工）÷ 至少办结过一次。"),
           "share", "reopened", "ever_handled"),
    Figure("handling_days_mean", N_("平均处置用时"),
           N_("已办结问题从派遣到承办单位至办结的工作时间的平均值，单位为工作日（按法定节假日与调休安排，"
              "每个工作日按办公时间计）；返工的计到最后一次办结。"),
           "days", "handling_days_sum", "handling_counted"),
    Figure("handling_days_median", N_("处置用时中位数"),
           N_("同上各处置用时的中位数（工作日）。"),
           "days", None, "handling_counted"),
    Figure("reply_rating_mean", N_("答复满意度"),
           N_("代表对答复的评分（1–5 分）的平均值：评分之和 ÷ 已评价问题数（以最近一次评价为准）。"),
           "rating", "reply_rating_sum", "rated"),
    Figure("result_rating_mean", N_("办理结果满意度"),
           N_("代表对办理结果的评分（1–5 分）的平均值：评分之和 ÷ 已评价问题数（以最近一次评价为准）。"),
           "rating", "result_rating_sum", "rated"),
    Figure("satisfied_rate", N_("满意率"),
           N_("两项评分均不低于 3 分的问题 ÷ 已评价问题（以最近一次评价为准）。"),
           "share", "satisfied", "rated"),
    Figure("overdue", N_("超期"),
           N_("现在已超期的问题数（处置中且已过时限，或挂账已过承诺日期），分母为仍在办理（含挂账）的问题。"),
           "count", "overdue", "open"),
    Figure("ledger", N_("挂账"),
           N_("现处于挂账（长期办理，有承诺完成日期）的问题数，分母为交办。"),
           "count", "ledger", "handed_over"),
)
FIGURE_KEYS = tuple(f.key for f in FIGURES)
PERIOD_DEFINITION = N_("统计口径：按问题首次派遣（交办）的时间归入统计期（本地日期，含首尾两天）；办理结果以当前状态为准。")

WITHDRAWN = WITHDRAWN_STATUSES    # handed back, then withdrawn: not handed over in the end
HANDLED = HANDLED_STATUSES
OPEN = OPEN_STATUSES


def _overdue_sql() -> str:
    """reports.OVERDUE as SQL text over the table `reports` (one definition of overdue)."""
    compiled = OVERDUE.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return f"({compiled})"


# The keys a group is counted by: (outcome key, dispatch key). Dispatch quality is charged to the unit a
# report was first sent to; everything else to its lead unit now. Other groupings use one key for both.
_KEYS = {
    None: ("0", "0"),
    "unit": ("reports.unit_id", "ev.first_unit_id"),
    "street": ("reports.street_id", "reports.street_id"),
    "class": ("cls.id", "cls.id"),
    "category": ("grp.id", "grp.id"),
    "item": ("reports.category_id", "reports.category_id"),
    "month": ("to_char(ev.first_dispatch_at AT TIME ZONE :tz, 'YYYY-MM')",) * 2,
}
# The rows of each grouping, every one even when it has no report (its figures then have value null).
_DIMENSION_ROWS = {
    None: "SELECT '0' AS key, '' AS code, '' AS name, '' AS name_en, 0 AS ord",
    "unit": "SELECT id::text AS key, code, name, name_en, id AS ord FROM units",
    "street": "SELECT id::text AS key, code, name, name_en, row_number() OVER (ORDER BY code) AS ord FROM streets",
    "month": "SELECT m AS key, m AS code, m AS name, m AS name_en, row_number() OVER (ORDER BY m) AS ord "
             "FROM unnest(CAST(:months AS text[])) AS m",
}
for _level in LEVELS:
    _DIMENSION_ROWS[_level] = (
        "SELECT id::text AS key, code, name, name_en, row_number() OVER (ORDER BY sort_order, code) AS ord "
        f"FROM categories WHERE level = '{_level}'")


def _clock(column: str, cal: str, spans: int) -> str:
    """SQL: the working-time clock W(column) in seconds, `cal` being the calendar row of its local day."""
    s = f"date_part('epoch', ({column} AT TIME ZONE :tz)::time)"  # double precision: EXTRACT is numeric, slow
    within = " + ".join(f"GREATEST(0, LEAST({s}, :c{i}) - :o{i})" for i in range(spans))
    return f"({cal}.before_s + {cal}.working * ({within}))"


def _calendar(first_day: str, last_day: str) -> str:
    """SQL CTEs `days` and `cal`: each local day from first_day to last_day, whether it is worked, and
    the office seconds of the working days before it."""
    return f"""days AS (
    SELECT d::date AS day,
           CASE WHEN d::date = ANY(CAST(:off AS date[])) THEN 0 WHEN d::date = ANY(CAST(:on AS date[])) THEN 1
                WHEN EXTRACT(ISODOW FROM d) < 6 THEN 1 ELSE 0 END AS working
    FROM generate_series({first_day}, {last_day}, interval '1 day') AS d
), cal AS (
    SELECT day, working,
           :day_s * COALESCE(sum(working) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
               AS before_s
    FROM days
)"""


def _local_day(column: str) -> str:
    return f"({column} AT TIME ZONE :tz)::date"


def _sql(by: str | None, spans: int) -> str:
    key, dkey = _KEYS[by]
    return f"""
WITH ev AS (
    SELECT e.report_id,
           min(e.at) FILTER (WHERE e.action = 'dispatch') AS first_dispatch_at,
           (array_agg((e.data->>'unit_id')::int ORDER BY e.at, e.id) FILTER (WHERE e.action = 'dispatch'))[1]
               AS first_unit_id,
           bool_or(e.action = 'hand_back') AS handed_back,
           bool_or(e.action = 'handled') AS ever_handled,
           bool_or(e.action = 'reopen' OR (e.action = 'verify' AND e.to_status = 'reopened')) AS reopened
    FROM report_events e
    WHERE e.action IN ('dispatch', 'hand_back', 'handled', 'reopen', 'verify')
    GROUP BY e.report_id
), facts AS (
    SELECT ({key})::text AS key, ({dkey})::text AS dkey, reports.status, reports.deadline_at,
           reports.dispatched_at, reports.handled_at, reports.reply_rating, reports.result_rating,
           ev.handed_back, ev.ever_handled, ev.reopened,
           reports.status IN :withdrawn AS withdrawn, reports.status IN :handled AS handled,
           {_overdue_sql()} AS overdue
    FROM ev
    JOIN reports ON reports.id = ev.report_id
    JOIN categories item ON item.id = reports.category_id
    JOIN categories grp ON grp.id = item.parent_id
    JOIN categories cls ON cls.id = grp.parent_id
    WHERE ev.first_dispatch_at >= :start AND ev.first_dispatch_at < :end
), {_calendar(f"(SELECT min({_local_day('dispatched_at')}) FROM facts WHERE handled)",
              f"(SELECT max({_local_day('handled_at')}) FROM facts WHERE handled)")}, timed AS (
    SELECT facts.key,
           ({_clock('facts.handled_at', 'cal_b', spans)} - {_clock('facts.dispatched_at', 'cal_a', spans)}) / :day_s
               AS days
    FROM facts
    JOIN cal AS cal_a ON cal_a.day = {_local_day('facts.dispatched_at')}
    JOIN cal AS cal_b ON cal_b.day = {_local_day('facts.handled_at')}
    WHERE facts.handled
), agg AS (
    SELECT key,
           count(*) FILTER (WHERE NOT withdrawn) AS handed_over,
           count(*) FILTER (WHERE handled) AS handled,
           count(*) FILTER (WHERE NOT withdrawn AND (handled OR deadline_at <= now())) AS due,
           count(*) FILTER (WHERE handled AND handled_at <= deadline_at) AS on_time,
           count(*) FILTER (WHERE ever_handled) AS ever_handled,
           count(*) FILTER (WHERE ever_handled AND reopened) AS reopened,
           count(*) FILTER (WHERE reply_rating IS NOT NULL AND result_rating IS NOT NULL) AS rated,
           sum(reply_rating) FILTER (WHERE reply_rating IS NOT NULL AND result_rating IS NOT NULL) AS reply_rating_sum,
           sum(result_rating) FILTER (WHERE reply_rating IS NOT NULL AND result_rating IS NOT NULL) AS result_rating_sum,
           count(*) FILTER (WHERE reply_rating >= :satisfied AND result_rating >= :satisfied) AS satisfied,
           count(*) FILTER (WHERE overdue) AS overdue,
           count(*) FILTER (WHERE status IN :open) AS open,
           count(*) FILTER (WHERE status = 'ledger') AS ledger
    FROM facts GROUP BY key
), dagg AS (
    SELECT dkey AS key, count(*) AS dispatched,
           count(*) FILTER (WHERE NOT handed_back) AS first_time_right,
           count(*) FILTER (WHERE handed_back) AS handed_back
    FROM facts GROUP BY dkey
), tagg AS (
    SELECT key, count(days) AS handling_counted, sum(days) AS handling_days_sum,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS handling_days_median
    FROM timed GROUP BY key
)
SELECT dim.key, dim.code, dim.name, dim.name_en,
       COALESCE(dagg.dispatched, 0) AS dispatched, COALESCE(dagg.first_time_right, 0) AS first_time_right,
       COALESCE(dagg.handed_back, 0) AS handed_back,
       COALESCE(agg.handed_over, 0) AS handed_over, COALESCE(agg.handled, 0) AS handled,
       COALESCE(agg.due, 0) AS due, COALESCE(agg.on_time, 0) AS on_time,
       COALESCE(agg.ever_handled, 0) AS ever_handled, COALESCE(agg.reopened, 0) AS reopened,
       COALESCE(agg.rated, 0) AS rated, COALESCE(agg.reply_rating_sum, 0) AS reply_rating_sum,
       COALESCE(agg.result_rating_sum, 0) AS result_rating_sum, COALESCE(agg.satisfied, 0) AS satisfied,
       COALESCE(agg.overdue, 0) AS overdue, COALESCE(agg.open, 0) AS open, COALESCE(agg.ledger, 0) AS ledger,
       COALESCE(tagg.handling_counted, 0) AS handling_counted, COALESCE(tagg.handling_days_sum, 0) AS handling_days_sum,
       tagg.handling_days_median
FROM ({_DIMENSION_ROWS[by]}) AS dim
LEFT JOIN agg ON agg.key = dim.key
LEFT JOIN dagg ON dagg.key = dim.key
LEFT JOIN tagg ON tagg.key = dim.key
ORDER BY dim.ord
"""


# --- the official calendar, as SQL parameters -----------------------------------------------------

@functools.lru_cache(maxsize=8)
def calendar_exceptions(hours: OfficeHours) -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    """(weekdays that are off, weekend days that are worked) on the official calendar with the city's
    corrections: with these, "Monday–Friday except the first, plus the second" is exactly
    OfficeHours.is_working on every day (a year chinesecalendar lacks is Monday–Friday there too)."""
    candidates = (set(chinese_calendar.holidays) | set(chinese_calendar.workdays)
                  | set(hours.days_off) | set(hours.workdays))
    off = tuple(sorted(d for d in candidates if d.weekday() < 5 and not hours.is_working(d)))
    on = tuple(sorted(d for d in candidates if d.weekday() >= 5 and hours.is_working(d)))
    return off, on


def _seconds(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _calendar_params(hours: OfficeHours) -> dict[str, Any]:
    off, on = calendar_exceptions(hours)
    params: dict[str, Any] = {"tz": str(hours.tz), "off": list(off), "on": list(on), "day_s": hours.day_seconds}
    for i, (opens, closes) in enumerate(hours.spans):
        params[f"o{i}"], params[f"c{i}"] = _seconds(opens), _seconds(closes)
    return params


def working_days_in_sql(session: Session, pairs: list[tuple[dt.datetime, dt.datetime]], hours: OfficeHours,
                        ) -> list[float]:
    """Working days from a to b for each (a, b), a <= b, by the SQL clock the statistics use (so that a
    test can hold it against working_time.working_days_between)."""
    if not pairs:
        return []
    sql = f"""
WITH pairs AS (
    SELECT * FROM unnest(CAST(:a AS timestamptz[]), CAST(:b AS timestamptz[])) WITH ORDINALITY AS p(a, b, n)
), {_calendar(f"(SELECT min({_local_day('a')}) FROM pairs)", f"(SELECT max({_local_day('b')}) FROM pairs)")}
SELECT ({_clock('pairs.b', 'cal_b', len(hours.spans))} - {_clock('pairs.a', 'cal_a', len(hours.spans))}) / :day_s
FROM pairs
JOIN cal AS cal_a ON cal_a.day = {_local_day('pairs.a')}
JOIN cal AS cal_b ON cal_b.day = {_local_day('pairs.b')}
ORDER BY pairs.n"""
    params = _calendar_params(hours) | {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]}
    return [float(v) for v in session.execute(text(sql), params).scalars()]


# --- computing ------------------------------------------------------------------------------------

Period = Days  # local calendar days, `end` included (geoapp/domain/periods.py)


def programme_start(session: Session, tz: str) -> dt.date | None:
    """The local day of the programme's first dispatch (None before any)."""
    first = session.execute(text("SELECT min(at) FROM report_events WHERE action = 'dispatch'")).scalar_one()
    return first.astimezone(ZoneInfo(tz)).date() if first is not None else None


def resolve_period(session: Session, start: dt.date | None, end: dt.date | None, tz: str,
                   today: dt.date) -> Period:
    """An open end of the period: `from` absent is the programme's start (its first dispatch), `to`
    absent is today."""
    end = end or max(today, start or today)
    if start is None:
        start = min(programme_start(session, tz) or end, end)
    return Period(start, end)


def _value(figure: Figure, row: dict) -> dict[str, Any]:
    den = row[figure.denominator]
    num = row[figure.numerator] if figure.numerator else None
    if figure.kind == "count":
        value = num
    elif den == 0:
        value = None
    elif figure.numerator is None:
        value = float(row["handling_days_median"]) if row["handling_days_median"] is not None else None
    else:
        value = float(num) / den
    if isinstance(value, float):
        value = round(value, 6)
    if isinstance(num, float):
        num = round(num, 6)
    return {"value": value, "numerator": num, "denominator": den}


def figures_of(row: dict, lang: str) -> dict[str, dict[str, Any]]:
    """One group's figures, each {value, numerator, denominator, definition, label, kind}."""
    return {f.key: _value(f, row) | {"label": translate(f.label, lang), "kind": f.kind,
                                      "definition": translate(f.definition, lang)} for f in FIGURES}


def compute(session: Session, period: Period, by: str | None, hours: OfficeHours, lang: str = "zh",
            ) -> list[dict[str, Any]]:
    """The figures of `period` for each group of `by` (None: one group, overall), in the grouping's order:
    [{code, name, name_en, figures: {key: {value, numerator, denominator, definition, …}}}]."""
    start, end = period.moments(str(hours.tz))
    params = _calendar_params(hours) | {
        "start": start, "end": end, "satisfied": SATISFIED, "months": period.months(),
        "withdrawn": WITHDRAWN, "handled": HANDLED, "open": OPEN,
    }
    stmt = text(_sql(by, len(hours.spans))).bindparams(
        *(bindparam(k, expanding=True) for k in ("withdrawn", "handled", "open")))
    rows = session.execute(stmt, params).mappings().all()
    out = []
    for row in rows:
        row = dict(row) | {"handling_days_sum": float(row["handling_days_sum"])}
        out.append({"code": row["code"], "name": row["name"], "name_en": row["name_en"],
                    "figures": figures_of(row, lang)})
    return out


def statistics(session: Session, period: Period, by: str | None, hours: OfficeHours, lang: str = "zh",
               ) -> dict[str, Any]:
    """The API's body: the period, the overall figures, and the groups when `by` is given."""
    body: dict[str, Any] = {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "definition": translate(PERIOD_DEFINITION, lang),
        "by": by,
        "overall": compute(session, period, None, hours, lang)[0]["figures"],
    }
    if by is not None:
        body["groups"] = [{"code": g["code"], "name": g["name"] if lang != "en" else (g["name_en"] or g["name"]),
                           "figures": g["figures"]} for g in compute(session, period, by, hours, lang)]
    return body
