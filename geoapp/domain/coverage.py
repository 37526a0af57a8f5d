"""Coverage per road: which stretches of each key street its representative walked or reported on in
a period, and where the gaps are.

Definitions (README "Coverage per road"):
- A street is cut into bins of `bin_m` metres along it (the measure of reports' position_m and of
  walk_intervals' from_m/to_m: metres from the street's start in the metric CRS); the last bin is
  shorter and counts by its true length.
- A bin is **covered** in the period [from, to] (local calendar days in Asia/Shanghai, `to` included)
  when a walk interval of the street's representative on that street, started in the period,
  overlaps it, or when a report of theirs on that street, made in the period, lies in it.
  Coverage by anyone else (another representative, a dispatcher…) makes the bin `by_others`, shown
  apart and never counted for the representative.
- A gap is a maximal run of uncovered bins; its ends are located by the nearest crossing street on
  the outer side of each end (within one bin inward; else the nearest at all), so "A至B之间" holds
  the gap (street_crossings, computed by PostGIS from the geometry, the street's named ends included) and its last coverage is the latest
  moment the representative covered any part of it before the period ended (or never).
- Problems: reports on the street in the period (by anyone) that are not merged, void or rejected;
  per km of the street's length.
- Photos against the quota: quota.counted_photos (the phone's own count) in the calendar month of
  the period's last day.

All of it is one statement over every street asked for (set-based: bins from generate_series, the
walked stretches unioned with range_agg, reports read from the maintained coverage_marks rows of
migration 0009 — never the reports themselves), plus one for the photos.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..models import User
from ..translations import N_, Text, translate
from .errors import BadInput, UnknownStreet
from .inputs import _code, parse_day, validate
from .periods import month_start as _month_start, next_month as _next_month
from .quota import counted_photos
from .visibility import Viewer, reads_programme

# The zone of coverage_marks' days (migration 0009's DAY_TZ): the programme's calendar.
DAY_TZ = ZoneInfo("Asia/Shanghai")
BUCKET_M = 10                  # reports are kept to 10 m along the street (migration 0009)
BIN_M_RANGE = (10, 500)        # a bin: 10 to 500 m, a multiple of BUCKET_M
MAX_DAYS = 366
NOT_PROBLEMS = ("merged", "void", "rejected")
QUOTA_HISTORY_MONTHS = 12

_FIELD_LABELS = {"from": N_("开始日期"), "to": N_("结束日期"), "street": N_("街路"), "bin_m": N_("分段长度"),
                 "bins": N_("分段明细")}
_PROBLEMS = {
    "date": N_("须为 YYYY-MM-DD 格式的日期。"),
    "order": N_("结束日期不能早于开始日期。"),
    "too_long": N_("时段最长 {days} 天（收到 {n} 天）。"),
    "bin_m": N_("须为 {lo} 到 {hi} 之间、{step} 的整数倍的米数。"),
    "flag": N_("须为 1 或 0。"),
    "code": N_("须为字母和数字组成的编码。"),
}


def _refusal(field: str, problem: str, **ctx) -> BadInput:
    return BadInput(field=field, field_label=Text(_FIELD_LABELS[field]), problem=Text(_PROBLEMS[problem], **ctx))


def _day(field: str):
    def parse(value: Any) -> dt.date | None:
        try:
            return parse_day(value)
        except ValueError:
            raise _refusal(field, "date") from None
    return BeforeValidator(parse)


def _bin_m(value: Any) -> int | None:
    if value in (None, ""):
        return None
    lo, hi = BIN_M_RANGE
    text_value = value.strip() if isinstance(value, str) else value
    if isinstance(text_value, bool) or not (isinstance(text_value, int) or
                                            (isinstance(text_value, str) and text_value.isascii() and text_value.isdigit())):
        raise _refusal("bin_m", "bin_m", lo=lo, hi=hi, step=BUCKET_M)
    n = int(text_value)
    if not lo <= n <= hi or n % BUCKET_M:
        raise _refusal("bin_m", "bin_m", lo=lo, hi=hi, step=BUCKET_M)
    return n


def _flag(value: Any) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise _refusal("bins", "flag")


def _street(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return _code(value)
    except PydanticCustomError:
        raise _refusal("street", "code") from None


class CoverageQuery(BaseModel):
    """The query string of GET /api/v1/coverage, /coverage, /coverage.csv and .xlsx."""
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    from_: Annotated[dt.date | None, _day("from"), Field(alias="from")] = None
    to: Annotated[dt.date | None, _day("to")] = None
    street: Annotated[str | None, BeforeValidator(_street)] = None
    bin_m: Annotated[int | None, BeforeValidator(_bin_m)] = None
    bins: Annotated[bool, BeforeValidator(_flag)] = False

    @model_validator(mode="after")
    def _order(self):
        if self.from_ is not None and self.to is not None:
            if self.to < self.from_:
                raise _refusal("to", "order")
            n = (self.to - self.from_).days + 1
            if n > MAX_DAYS:
                raise _refusal("to", "too_long", days=MAX_DAYS, n=n)
        return self


def parse_query(args: dict) -> CoverageQuery:
    try:
        return validate(CoverageQuery, dict(args))
    except BadInput as err:
        label = _FIELD_LABELS.get(err.params.get("field"))
        if label:
            err.params["field_label"] = Text(label)
        raise


def check_bin_m(value: int) -> int:
    """The COVERAGE_BIN_M setting, held to the rule a query's bin_m obeys (checked at startup)."""
    return _bin_m(str(value))


@dataclass(frozen=True)
class Period:
    first: dt.date          # local days, both included
    last: dt.date
    bin_m: int

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time(), DAY_TZ)

    @property
    def end(self) -> dt.datetime:
        """The instant the period ends (exclusive): midnight after its last day."""
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), DAY_TZ)

    def grains(self) -> dict[str, dt.date]:
        """Which coverage_marks rows make up the period: the whole months inside it [m0, m1) from the
        month rows, the days before and after them [d0, m0) and [m1, d1) from the day rows."""
        d0, d1 = self.first, self.last + dt.timedelta(days=1)
        m0 = d0 if d0.day == 1 else _next_month(d0)
        m1 = _month_start(d1)
        if m1 <= m0:        # no whole month inside: the day rows only
            m0 = m1 = d1
        # dm: the first day of the period's last month (a gap's last report: coverage_marks' days from
        # there, its months before)
        return {"d0": d0, "d1": d1, "m0": m0, "m1": m1, "dm": _month_start(self.last)}

    @property
    def quota_month(self) -> tuple[dt.datetime, dt.datetime]:
        """The calendar month of the period's last day, as [start, end) instants."""
        first = _month_start(self.last)
        return (dt.datetime.combine(first, dt.time(), DAY_TZ), dt.datetime.combine(_next_month(first), dt.time(), DAY_TZ))


def period_of(query: CoverageQuery, default_bin_m: int, today: dt.date | None = None) -> Period:
    """The query's days; absent ones: this month (or the month of the one day given)."""
    today = today or dt.datetime.now(DAY_TZ).date()
    first = query.from_ or _month_start(query.to or today)
    last = query.to or (_next_month(first) - dt.timedelta(days=1))
    if last < first:
        raise _refusal("to", "order")
    if (last - first).days + 1 > MAX_DAYS:
        raise _refusal("to", "too_long", days=MAX_DAYS, n=(last - first).days + 1)
    return Period(first, last, query.bin_m or default_bin_m)


# ---- who may read which street ------------------------------------------------------------------

def readable_street_ids(session: Session, viewer: Viewer) -> list[int] | None:
    """The streets whose coverage this viewer reads: every one (the programme's readers), their own
    (a representative), none (None: the viewer may not read coverage at all)."""
    if reads_programme(viewer):
        return [i for (i,) in session.execute(text("SELECT id FROM streets ORDER BY code"))]
    if viewer.role == "representative" and viewer.street_id is not None:
        return [viewer.street_id]
    return None


def street_id_of(session: Session, code: str) -> int:
    found = session.execute(text("SELECT id FROM streets WHERE code = :c"), {"c": code}).scalar()
    if found is None:
        raise UnknownStreet(street=code)
    return found


# ---- the computation ------------------------------------------------------------------------------

_COVERAGE = """
WITH st AS MATERIALIZED (
    SELECT s.id, s.code, s.name, s.name_en, s.length_m AS len, s.geom_m,
           r.id AS rep_id, r.code AS rep_code, r.name AS rep_name, r.monthly_quota AS quota,
           ARRAY(SELECT u.id FROM users u WHERE u.representative_id = r.id ORDER BY u.id) AS rep_users,
           GREATEST(ceil(s.length_m / :bin)::int, 1) AS nbins
    FROM streets s LEFT JOIN representatives r ON r.street_id = s.id
    WHERE s.id = ANY(:ids)
), walked AS (
    -- the period's walked stretches of each street, unioned: the representative's, everyone else's
    SELECT i.street_id, COALESCE(i.representative_id = st.rep_id, false) AS mine,
           range_agg(numrange(i.from_m::numeric, i.to_m::numeric)) AS mr
    FROM walk_intervals i JOIN st ON st.id = i.street_id
    WHERE i.started_at >= :start AND i.started_at < :end
    GROUP BY 1, 2
), marked AS (
    -- the period's reports as 10 m buckets: whole months from the month rows, the edges from the day rows
    -- (three index ranges of the primary key (street_id, grain, day, reporter_id))
    SELECT st.id AS street_id, m.reporter_id = ANY(st.rep_users) AS mine, range_agg(m.marks) AS mr,
           sum(m.problems)::int AS problems
    FROM st CROSS JOIN LATERAL (
        SELECT reporter_id, marks, problems FROM coverage_marks
        WHERE street_id = st.id AND grain = 2 AND day >= :m0 AND day < :m1
        UNION ALL
        SELECT reporter_id, marks, problems FROM coverage_marks
        WHERE street_id = st.id AND grain = 1 AND day >= :d0 AND day < :m0
        UNION ALL
        SELECT reporter_id, marks, problems FROM coverage_marks
        WHERE street_id = st.id AND grain = 1 AND day >= :m1 AND day < :d1) m
    GROUP BY 1, 2
), bins AS (
    SELECT st.id AS street_id, k, (k * :bin)::float8 AS lo, LEAST((k + 1) * :bin, st.len) AS hi,
           k = st.nbins - 1 AS last
    FROM st CROSS JOIN LATERAL generate_series(0, st.nbins - 1) AS k
), judged AS (
    -- the last bin reaches to the street's end whatever a measure's rounding: open-ended above
    SELECT b.*,
           COALESCE(wm.mr && numrange(b.lo::numeric, CASE WHEN b.last THEN NULL ELSE b.hi::numeric END), false)
           OR COALESCE(mm.mr && int4range(b.lo::int, CASE WHEN b.last THEN NULL ELSE b.hi::int END), false) AS covered,
           COALESCE(wo.mr && numrange(b.lo::numeric, CASE WHEN b.last THEN NULL ELSE b.hi::numeric END), false)
           OR COALESCE(mo.mr && int4range(b.lo::int, CASE WHEN b.last THEN NULL ELSE b.hi::int END), false) AS by_others
    FROM bins b
    LEFT JOIN walked wm ON wm.street_id = b.street_id AND wm.mine
    LEFT JOIN walked wo ON wo.street_id = b.street_id AND NOT wo.mine
    LEFT JOIN marked mm ON mm.street_id = b.street_id AND mm.mine
    LEFT JOIN marked mo ON mo.street_id = b.street_id AND NOT mo.mine
), sums AS (
    SELECT street_id, COALESCE(sum(hi - lo) FILTER (WHERE covered), 0) AS covered_m,
           COALESCE(sum(hi - lo) FILTER (WHERE by_others), 0) AS others_m
           {bins_column}
    FROM judged GROUP BY street_id
), gaps AS (
    SELECT *, int4range(from_m::int, CASE WHEN at_end THEN NULL ELSE ceil(to_m)::int END) AS span
    FROM (SELECT street_id, min(lo) AS from_m, max(hi) AS to_m, bool_or(last) AS at_end
          FROM (SELECT street_id, k, lo, hi, last, k - row_number() OVER (PARTITION BY street_id ORDER BY k) AS grp
                FROM judged WHERE NOT covered) x
          GROUP BY street_id, grp) y
), told AS (
    SELECT g.street_id, g.from_m, g.to_m, fn.name AS from_name, fn.name_en AS from_name_en, fn.position_m AS from_pos,
           tn.name AS to_name, tn.name_en AS to_name_en, tn.position_m AS to_pos,
           GREATEST(lw.at, lr.at) AS last_covered_at
    FROM gaps g JOIN st ON st.id = g.street_id
    LEFT JOIN LATERAL (
        SELECT c.name, c.name_en, c.position_m FROM street_crossings c WHERE c.street_id = g.street_id
        ORDER BY c.position_m > g.from_m + :bin, abs(c.position_m - g.from_m), c.other_street_id IS NULL, c.name
        LIMIT 1) fn ON true
    LEFT JOIN LATERAL (
        SELECT c.name, c.name_en, c.position_m FROM street_crossings c WHERE c.street_id = g.street_id
        ORDER BY c.position_m < g.to_m - :bin, abs(c.position_m - g.to_m), c.other_street_id IS NULL, c.name
        LIMIT 1) tn ON true
    LEFT JOIN LATERAL (
        -- the representative's latest walk over any part of the gap (none of theirs in the period does)
        SELECT max(i.ended_at) AS at FROM walk_intervals i
        WHERE i.street_id = g.street_id AND i.representative_id = st.rep_id AND i.started_at < :end
          AND i.from_m < g.to_m AND (i.to_m > g.from_m)) lw ON true
    LEFT JOIN LATERAL (
        -- their latest report in it: the latest day with a bucket inside (the days of the period's last
        -- month before its end, else the latest earlier month row, then its days), then that day's reports
        SELECT max(r.created_at) AS at
        FROM unnest(st.rep_users) AS ru(id)
        CROSS JOIN LATERAL (
            SELECT COALESCE(
              (SELECT m.day FROM coverage_marks m
               WHERE m.street_id = g.street_id AND m.reporter_id = ru.id AND m.grain = 1
                 AND m.day >= :dm AND m.day < :d1 AND m.marks && g.span
               ORDER BY m.day DESC LIMIT 1),
              (SELECT (SELECT d.day FROM coverage_marks d
                       WHERE d.street_id = g.street_id AND d.reporter_id = ru.id AND d.grain = 1
                         AND d.day >= mo.day AND d.day < (mo.day + interval '1 month')::date AND d.marks && g.span
                       ORDER BY d.day DESC LIMIT 1)
               FROM (SELECT m.day FROM coverage_marks m
                     WHERE m.street_id = g.street_id AND m.reporter_id = ru.id AND m.grain = 2
                       AND m.day < :dm AND m.marks && g.span
                     ORDER BY m.day DESC LIMIT 1) mo)) AS day
        ) d
        JOIN reports r ON r.reporter_id = ru.id AND r.street_id = g.street_id
             AND r.created_at >= coverage_day_start(d.day) AND r.created_at < coverage_day_start(d.day + 1)
             AND r.created_at < :end
             AND r.position_m >= g.from_m AND (g.at_end OR r.position_m < g.to_m)) lr ON true
), problems AS (
    SELECT street_id, sum(problems)::int AS n FROM marked GROUP BY street_id
)
SELECT st.id, st.code, st.name, st.name_en, st.len, st.rep_id, st.rep_code, st.rep_name, st.quota, st.rep_users,
       s.covered_m, s.others_m, COALESCE(p.n, 0) AS problems,
       (SELECT json_agg(json_build_object(
                  'from_m', t.from_m, 'to_m', t.to_m, 'last_covered_at', t.last_covered_at,
                  'from_near', json_build_object('name', t.from_name, 'name_en', t.from_name_en, 'position_m', t.from_pos),
                  'to_near', json_build_object('name', t.to_name, 'name_en', t.to_name_en, 'position_m', t.to_pos))
                ORDER BY t.from_m)
        FROM told t WHERE t.street_id = st.id) AS gaps
       {bins_select}
FROM st JOIN sums s ON s.street_id = st.id LEFT JOIN problems p ON p.street_id = st.id
ORDER BY st.code
"""

_BINS_COLUMN = ", json_agg(json_build_array(lo, hi, covered, by_others) ORDER BY k) AS bins"
# Runs of bins in the same state, each drawn as the piece of the street it spans (WGS-84 GeoJSON)
_RUNS_SELECT = """, s.bins, (
    SELECT json_agg(json_build_object('from_m', x.from_m, 'to_m', x.to_m, 'covered', x.covered, 'by_others', x.by_others,
                    'geometry', ST_AsGeoJSON(ST_Transform(street_substring(st.geom_m, x.from_m, x.to_m), 4326), 6)::json)
                    ORDER BY x.from_m)
    FROM (SELECT covered, by_others, min(lo) AS from_m, max(hi) AS to_m
          FROM (SELECT *, k - row_number() OVER (PARTITION BY covered, by_others ORDER BY k) AS grp
                FROM judged j WHERE j.street_id = st.id) y
          GROUP BY covered, by_others, grp) x) AS runs"""


def _sql(with_bins: bool) -> str:
    return _COVERAGE.format(bins_column=_BINS_COLUMN if with_bins else "",
                            bins_select=_RUNS_SELECT if with_bins else "")


def _metres(value) -> float:
    return round(float(value), 1)


def _near(value: dict) -> dict | None:
    if not value or value.get("name") is None:
        return None
    return {"name": value["name"], "name_en": value["name_en"], "position_m": _metres(value["position_m"])}


def _moment(value) -> str | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(DAY_TZ).isoformat()


def photos_by_representative(session: Session, start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Photos counted for the quota in [start, end), per representative (quota.counted_photos)."""
    counted = counted_photos(start, end).subquery()
    rows = session.execute(select(User.representative_id, func.count()).select_from(counted)
                           .join(User, User.id == counted.c.reporter_id)
                           .where(User.representative_id.is_not(None))
                           .group_by(User.representative_id)).all()
    return {rep: n for rep, n in rows}


def compute(session: Session, street_ids: list[int], period: Period, *, with_bins: bool = False) -> list[dict]:
    """Coverage of each street in `street_ids` over `period` (see the module's definitions)."""
    if not street_ids:
        return []
    session.execute(text("SET LOCAL jit = off"))  # a few ms of work: compiling it would cost more
    rows = session.execute(text(_sql(with_bins)), {
        "ids": list(street_ids), "bin": period.bin_m, "start": period.start, "end": period.end,
        **period.grains()}).mappings().all()
    q_start, q_end = period.quota_month
    photos = photos_by_representative(session, q_start, q_end)
    out = []
    for r in rows:
        length = float(r["len"])
        covered, others = float(r["covered_m"]), float(r["others_m"])
        gaps = [{
            "from_m": _metres(g["from_m"]), "to_m": _metres(g["to_m"]), "length_m": _metres(g["to_m"] - g["from_m"]),
            "from_near": _near(g["from_near"]), "to_near": _near(g["to_near"]),
            "last_covered_at": _moment(g["last_covered_at"]),
        } for g in (r["gaps"] or [])]
        item = {
            "street": {"code": r["code"], "name": r["name"], "name_en": r["name_en"]},
            "representative": ({"code": r["rep_code"], "name": r["rep_name"]} if r["rep_id"] is not None else None),
            "length_m": _metres(length),
            "covered_m": _metres(covered),
            "covered_share": round(covered / length, 4) if length > 0 else 0.0,
            "gaps": gaps,
            "longest_gap_m": max((g["length_m"] for g in gaps), default=0.0),
            "photos": photos.get(r["rep_id"], 0) if r["rep_id"] is not None else 0,
            "quota": r["quota"],
            "quota_month": period.last.strftime("%Y-%m"),
            "problems": r["problems"],
            "problems_per_km": round(r["problems"] / (length / 1000), 2) if length > 0 else 0.0,
            "others_covered_m": _metres(others),
            "others_covered_share": round(others / length, 4) if length > 0 else 0.0,
        }
        if with_bins:
            item["bins"] = [{"from_m": _metres(lo), "to_m": _metres(hi), "covered": c, "by_others": o}
                            for lo, hi, c, o in r["bins"]]
            item["runs"] = [{"from_m": _metres(x["from_m"]), "to_m": _metres(x["to_m"]), "covered": x["covered"],
                             "by_others": x["by_others"], "geometry": x["geometry"]} for x in r["runs"]]
        out.append(item)
    return out


def city_totals(streets: list[dict]) -> dict:
    length = sum(s["length_m"] for s in streets)
    covered = sum(s["covered_m"] for s in streets)
    return {"streets": len(streets), "length_m": round(length, 1), "covered_m": round(covered, 1),
            "covered_share": round(covered / length, 4) if length > 0 else 0.0,
            "photos": sum(s["photos"] for s in streets), "quota": sum(s["quota"] or 0 for s in streets),
            "problems": sum(s["problems"] for s in streets),
            "quota_met": sum(1 for s in streets if s["quota"] and s["photos"] >= s["quota"])}


def report(session: Session, viewer: Viewer, query: CoverageQuery, default_bin_m: int,
           today: dt.date | None = None) -> dict | None:
    """The coverage answer for this viewer: every street they may read (or the one asked for);
    None when they may not read coverage at all. A street that is not theirs is NotYours."""
    allowed = readable_street_ids(session, viewer)
    if allowed is None:
        return None
    period = period_of(query, default_bin_m, today)
    ids = allowed
    if query.street is not None:
        wanted = street_id_of(session, query.street)
        if wanted not in allowed:
            raise NotYours(street=query.street)
        ids = [wanted]
    streets = compute(session, ids, period, with_bins=query.bins or query.street is not None)
    return {"from": period.first.isoformat(), "to": period.last.isoformat(), "bin_m": period.bin_m,
            "city": city_totals(streets), "streets": streets}


class NotYours(Exception):
    """A street whose coverage the viewer may not read (the web layer answers 404, as elsewhere)."""

    def __init__(self, street: str):
        super().__init__(street)
        self.street = street


# ---- the street's own page: the representative's quota month by month ------------------------------

def quota_history(session: Session, street_id: int, last_day: dt.date, months: int = QUOTA_HISTORY_MONTHS) -> list[dict]:
    """The street's representative's counted photos per calendar month, the `months` months up to the
    one of `last_day`, oldest first (quota.counted_photos)."""
    rep = session.execute(text("SELECT id, monthly_quota FROM representatives WHERE street_id = :s"),
                          {"s": street_id}).one_or_none()
    if rep is None:
        return []
    first = _month_start(last_day)
    starts = [first]
    for _ in range(months - 1):
        starts.insert(0, _month_start(starts[0] - dt.timedelta(days=1)))
    begin = dt.datetime.combine(starts[0], dt.time(), DAY_TZ)
    end = dt.datetime.combine(_next_month(first), dt.time(), DAY_TZ)
    counted = counted_photos(begin, end).subquery()
    month = func.date_trunc("month", func.timezone(str(DAY_TZ), counted.c.created_at))
    rows = session.execute(select(month, func.count()).select_from(counted)
                           .join(User, User.id == counted.c.reporter_id)
                           .where(User.representative_id == rep.id).group_by(month)).all()
    by_month = {m.date(): n for m, n in rows}
    return [{"month": s.strftime("%Y-%m"), "photos": by_month.get(s, 0), "quota": rep.monthly_quota,
             "met": by_month.get(s, 0) >= rep.monthly_quota} for s in starts]


# ---- said to people -------------------------------------------------------------------------------

def near_name(near: dict | None, lang: str) -> str | None:
    if near is None:
        return None
    return near["name_en"] if lang == "en" and near.get("name_en") else near["name"]


def gap_place(gap: dict, lang: str) -> str:
    """Where a gap is, by its crossings: "人民街至中央大街之间" / "between Renmin Street and …"."""
    a, b = near_name(gap["from_near"], lang), near_name(gap["to_near"], lang)
    if a is None and b is None:
        return ""
    if a is None or b is None or a == b:
        return translate(N_("{name}附近"), lang).format(name=a or b)
    return translate(N_("{a}至{b}之间"), lang).format(a=a, b=b)
