"""The dispatcher's work queue: which reports wait for a dispatcher's decision, tab by tab.

Each tab is one SQL condition on `reports`, ANDed with the console's filters (a ReportFilter, the
same as GET /api/v1/reports), so a tab's count and its rows come from the same expression. The
counts of all tabs are one scan (`count(*) FILTER (WHERE …)`); a tab's page is one select of ids
in the tab's order, then the records through reports.list_reports. Nothing loops over reports in
Python except to format the rows of the page shown.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from ..models import Category, Report, ReportEvent, Street, Unit
from .reports import OVERDUE, ReportFilter, ReportRecord, list_reports
from .vocabulary import RUNNING_STATUSES, statuses_of
from .working_time import OfficeHours, working_seconds_between


def _latest_verify_unsatisfied() -> ColumnElement[bool]:
    # the reporter's most recent verdict on it was "unsatisfied" (a later dispatcher's reopen keeps it)
    latest = (select(ReportEvent.data["satisfied"].astext)
              .where(ReportEvent.report_id == Report.id, ReportEvent.action == "verify")
              .order_by(ReportEvent.at.desc(), ReportEvent.id.desc()).limit(1).scalar_subquery())
    return latest == "false"


@dataclass(frozen=True)
class Tab:
    key: str
    condition: Callable[[], ColumnElement[bool]]
    order: tuple = ()   # the tab's order (most urgent first); ties by id


# The tabs, in the order a dispatcher works through them.
TABS: tuple[Tab, ...] = (
    # 待受理: new reports and accepted ones not yet sent to a unit
    Tab("screen", lambda: Report.status.in_(statuses_of("to_screen")), (Report.created_at.asc(),)),
    # 已回退: a unit said "not ours"; the dispatcher sends it elsewhere
    Tab("returned", lambda: Report.status == "returned", (Report.updated_at.asc(),)),
    # 延期申请: a unit asked for more time and nobody has answered
    Tab("extension", lambda: and_(Report.extension_requested_until.isnot(None),
                                  Report.status.in_(RUNNING_STATUSES)), (Report.updated_at.asc(),)),
    # 已超期: past the deadline (or a ledger item past its promised date), by unit, the latest first
    Tab("overdue", lambda: OVERDUE, (Unit.name.asc(), func.coalesce(
        Report.deadline_at, func.cast(Report.ledger_promised_on, Report.deadline_at.type)).asc())),
    # 不满意: the reporter was not satisfied; the unit reworks it (回头看)
    Tab("unsatisfied", lambda: and_(Report.status == "reopened", _latest_verify_unsatisfied()),
        (Report.updated_at.asc(),)),
    # 挂账: long-term items with a promised date
    Tab("ledger", lambda: Report.status == "ledger", (Report.ledger_promised_on.asc().nulls_last(),)),
    # 待结案: handled by the unit (verified or not), waiting for the dispatcher to close it
    Tab("closing", lambda: Report.status.in_(("handled", "verified")), (Report.handled_at.asc().nulls_last(),)),
)
TAB_KEYS = tuple(t.key for t in TABS)
_BY_KEY = {t.key: t for t in TABS}


def queue_filter(flt: ReportFilter) -> ReportFilter:
    """The console's filters without the ones a tab decides (status, overdue)."""
    return dataclasses.replace(flt, statuses=(), overdue=False)


def tab_counts(session: Session, flt: ReportFilter) -> dict[str, int]:
    """How many reports each tab holds under the filters, in one scan."""
    base = queue_filter(flt).where()
    row = session.execute(select(*(func.count().filter(t.condition()).label(t.key) for t in TABS))
                          .select_from(Report).where(base)).one()
    return dict(row._mapping)


def tab_page(session: Session, tab: str, flt: ReportFilter) -> tuple[list[ReportRecord], int]:
    """One page of a tab's reports, in the tab's order, and how many it holds in all."""
    spec = _BY_KEY[tab]
    flt = queue_filter(flt)
    where = and_(flt.where(), spec.condition())
    total = session.execute(select(func.count()).select_from(Report).where(where)).scalar_one()
    ids = session.execute(select(Report.id).join(Unit, Unit.id == Report.unit_id).where(where)
                          .order_by(*spec.order, Report.id).limit(flt.limit).offset(flt.offset)).scalars().all()
    if not ids:
        return [], total
    records, _ = list_reports(session, dataclasses.replace(
        ReportFilter(ids=tuple(ids), viewer=flt.viewer), limit=len(ids)))
    place = {report_id: i for i, report_id in enumerate(ids)}
    return sorted(records, key=lambda r: place[r["id"]]), total


def overdue_by_unit(session: Session, flt: ReportFilter) -> list[dict[str, Any]]:
    """The overdue reports per lead unit under the filters: how many, and the oldest deadline."""
    where = and_(queue_filter(flt).where(), OVERDUE)
    rows = session.execute(
        select(Unit.code, Unit.name, Unit.name_en, func.count().label("count"),
               func.min(Report.deadline_at).label("oldest_deadline"),
               func.min(Report.ledger_promised_on).label("oldest_promise"))
        .select_from(Report).join(Unit, Unit.id == Report.unit_id).where(where)
        .group_by(Unit.id).order_by(func.count().desc(), Unit.name)).all()
    return [dict(r._mapping) for r in rows]


def last_event_data(session: Session, report_ids, action: str) -> dict[int, dict[str, Any]]:
    """For each report, the data of its latest event of `action` (e.g. who handed it back, and why)."""
    ids = list(report_ids)
    if not ids:
        return {}
    newest_first = func.row_number().over(partition_by=ReportEvent.report_id,
                                          order_by=(ReportEvent.at.desc(), ReportEvent.id.desc()))
    ranked = (select(ReportEvent.report_id, ReportEvent.at, ReportEvent.data, newest_first.label("n"))
              .where(ReportEvent.report_id.in_(ids), ReportEvent.action == action).subquery())
    rows = session.execute(select(ranked.c.report_id, ranked.c.at, ranked.c.data).where(ranked.c.n == 1)).all()
    return {r.report_id: dict(r.data or {}, at=r.at) for r in rows}


def unit_names(session: Session) -> dict[str, dict[str, str]]:
    """Unit code -> {name, name_en}: events store codes; pages show names."""
    return {r.code: {"name": r.name, "name_en": r.name_en}
            for r in session.execute(select(Unit.code, Unit.name, Unit.name_en))}


def late_since(rec: ReportRecord, tz: str) -> dt.datetime | None:
    """When the report became late: its deadline, or for a ledger item the end of its promised day."""
    if rec["status"] == "ledger" and rec["ledger_promised_on"] is not None:
        day_after = rec["ledger_promised_on"] + dt.timedelta(days=1)
        return dt.datetime.combine(day_after, dt.time(), ZoneInfo(tz))
    return rec["deadline_at"]


def how_late(rec: ReportRecord, now: dt.datetime, hours: OfficeHours, tz: str) -> float:
    """Seconds of working time (official calendar, office hours) since the report became late."""
    since = late_since(rec, tz)
    if since is None or since >= now:
        return 0.0
    return float(working_seconds_between(since, now, hours))


def filter_choices(session: Session) -> dict[str, list[dict[str, Any]]]:
    """What the console's filter selects offer: streets, units, and the category tree's nodes."""
    streets = [dict(r._mapping) for r in session.execute(
        select(Street.code, Street.name, Street.name_en).order_by(Street.code))]
    units = [dict(r._mapping) for r in session.execute(
        select(Unit.code, Unit.name, Unit.name_en).order_by(Unit.id))]
    categories = [dict(r._mapping) for r in session.execute(
        select(Category.code, Category.name, Category.name_en, Category.level)
        .order_by(Category.sort_order, Category.code))]
    return {"streets": streets, "units": units, "categories": categories}


__all__ = ["TABS", "TAB_KEYS", "tab_counts", "tab_page", "overdue_by_unit", "last_event_data", "how_late",
           "late_since", "unit_names", "filter_choices"]
