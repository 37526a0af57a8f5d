"""Reading reports back: a ReportFilter compiles to one SQLAlchemy Core select(); rows come back as
flat records (plain dicts of columns). How a record looks to the outside is geoapp/present.py's job.

The console, the statistics and Open311 add their filters here (unit, street, category, period,
overdue, visibility), each one more expression in `_conditions`, never a joined string.
"""
from __future__ import annotations

import dataclasses

import datetime as dt
from dataclasses import dataclass
from typing import Any

from geoalchemy2 import functions as gfn
from sqlalchemy import Select, and_, func, or_, select, true
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session, aliased

from ..models import WGS84, Category, Report, ReportEvent, ReportUnit, Street, Unit, User
from .report_photos import photos_of
from .visibility import Viewer, access, visible
from .vocabulary import FINISHED_STATUSES, RUNNING_STATUSES

ReportRecord = dict[str, Any]

_item, _group, _class = aliased(Category), aliased(Category), aliased(Category)

# Overdue is computed, never stored: past the deadline while the unit's clock runs, or a ledger item
# past its promised date (compared with the database's UTC date: at most 8 hours late in the city).
OVERDUE = or_(and_(Report.status.in_(RUNNING_STATUSES), Report.deadline_at < func.now()),
              and_(Report.status == "ledger", Report.ledger_promised_on < func.current_date()))
_merged = aliased(Report)

# who else must see this report: its cooperating units, and the reporters of the reports merged into it
_COOPERATING = func.coalesce(select(func.array_agg(ReportUnit.unit_id)).where(
    ReportUnit.report_id == Report.id).scalar_subquery(), array([], type_=ReportUnit.unit_id.type))
_COOPERATING_UNITS = func.coalesce(select(func.json_agg(func.json_build_object(
    "id", Unit.id, "code", Unit.code, "name", Unit.name, "name_en", Unit.name_en)))
    .select_from(ReportUnit).join(Unit, Unit.id == ReportUnit.unit_id)
    .where(ReportUnit.report_id == Report.id).scalar_subquery(), func.json_build_array())
_MERGED_REPORTERS = func.coalesce(select(func.array_agg(_merged.reporter_id)).where(
    _merged.merged_into_id == Report.id).scalar_subquery(), array([], type_=Report.reporter_id.type))

# One record's columns, named as the presenter reads them.
_COLUMNS = (
    Report.id, Report.client_id, Report.status,
    gfn.ST_X(Report.geom).label("lon"), gfn.ST_Y(Report.geom).label("lat"),
    Report.reported_lon, Report.reported_lat, Report.reported_crs,
    Report.street_id, Street.code.label("street_code"), Street.name.label("street_name"),
    Street.name_en.label("street_name_en"),
    Report.distance_m, Report.position_m, Report.on_own_street,
    _item.code.label("category_code"), _item.name.label("category_name"),
    _item.name_en.label("category_name_en"),
    _class.code.label("class_code"), _class.name.label("class_name"), _class.name_en.label("class_name_en"),
    Report.description, Report.reporter_id,
    Report.unit_id, Unit.code.label("unit_code"), Unit.name.label("unit_name"), Unit.name_en.label("unit_name_en"),
    Report.dispatch_reason, Report.created_at, Report.updated_at, User.username.label("reporter"),
    User.display_name.label("reporter_name"), _item.deadline_days,
    # the lifecycle (domain/lifecycle.py)
    Report.version, Report.deadline_at, Report.dispatched_at, Report.handled_at, Report.closed_at,
    Report.merged_into_id, Report.album, Report.ledger_promised_on, Report.extension_requested_until,
    Report.extension_reason, Report.reply_rating, Report.result_rating, Report.verify_comment,
    _COOPERATING.label("cooperating_unit_ids"), _MERGED_REPORTERS.label("merged_reporter_ids"),
    _COOPERATING_UNITS.label("cooperating_units"), OVERDUE.label("overdue"),
)


def _joined(stmt: Select) -> Select:
    return (stmt.join(Street, Street.id == Report.street_id)
            .join(_item, _item.id == Report.category_id)
            .join(_group, _group.id == _item.parent_id)
            .join(_class, _class.id == _group.parent_id)
            .join(Unit, Unit.id == Report.unit_id)
            .join(User, User.id == Report.reporter_id))


@dataclass(frozen=True)
class ReportFilter:
    """Which reports, and which page of them. An absent filter matches everything."""
    bbox: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat (WGS-84)
    statuses: tuple[str, ...] = ()
    street: str | None = None           # street code
    reporter_id: int | None = None      # "mine"
    category: str | None = None         # a class, category or item code
    unit: str | None = None             # unit code: lead or cooperating
    created_from: dt.datetime | None = None   # created at or after (the API turns local days into these)
    created_before: dt.datetime | None = None  # created before
    overdue: bool = False               # past the deadline while running, or a ledger item past its date
    album: bool | None = None           # flagged for the bimonthly album
    ids: tuple[int, ...] = ()
    id_after: int | None = None         # keyset paging of a long read (iter_reports): ids above this
    # (street_id, position_m, within_m): reports on that street within_m along it of position_m
    along: tuple[int, float, float] | None = None
    open_only: bool = False             # not finished (vocabulary.FINISHED_STATUSES)
    viewer: Viewer | None = None        # only what this viewer may see (domain/visibility.py)
    limit: int = 100
    offset: int = 0

    def _conditions(self):
        yield (Report.geom.intersects(func.ST_MakeEnvelope(*self.bbox, WGS84))
               if self.bbox is not None else true())
        yield Report.status.in_(self.statuses) if self.statuses else true()
        if self.street is not None:
            yield Report.street_id == select(Street.id).where(Street.code == self.street).scalar_subquery()
        if self.reporter_id is not None:
            yield Report.reporter_id == self.reporter_id
        if self.category is not None:
            yield Report.category_id.in_(
                select(_item.id).join(_group, _group.id == _item.parent_id).join(_class, _class.id == _group.parent_id)
                .where(_item.level == "item", or_(_item.code == self.category, _group.code == self.category,
                                                  _class.code == self.category)))
        if self.unit is not None:
            unit_id = select(Unit.id).where(Unit.code == self.unit).scalar_subquery()
            yield or_(Report.unit_id == unit_id, Report.id.in_(
                select(ReportUnit.report_id).where(ReportUnit.unit_id == unit_id)))
        if self.created_from is not None:
            yield Report.created_at >= self.created_from
        if self.created_before is not None:
            yield Report.created_at < self.created_before
        if self.overdue:
            yield OVERDUE
        if self.album is not None:
            yield Report.album.is_(self.album)
        if self.ids:
            yield Report.id.in_(self.ids)
        if self.id_after is not None:
            yield Report.id > self.id_after
        if self.along is not None:
            street_id, position, within = self.along
            yield and_(Report.street_id == street_id, Report.position_m.between(position - within, position + within))
        if self.open_only:
            yield Report.status.notin_(FINISHED_STATUSES)
        if self.viewer is not None:
            yield visible(self.viewer)

    def where(self):
        return and_(*self._conditions())


def access_to(viewer: Viewer, rec: ReportRecord) -> str | None:
    """visibility.access for a record read here."""
    return access(viewer, reporter_id=rec["reporter_id"], street_id=rec["street_id"], unit_id=rec["unit_id"],
                  status=rec["status"], cooperating_unit_ids=rec["cooperating_unit_ids"],
                  merged_reporter_ids=rec["merged_reporter_ids"])


def events_of(session: Session, report_id: int) -> list[dict[str, Any]]:
    """A report's history, oldest first (report_events is append-only)."""
    rows = session.execute(
        select(ReportEvent.id, ReportEvent.at, ReportEvent.action, ReportEvent.from_status, ReportEvent.to_status,
               ReportEvent.data, User.display_name.label("actor"), User.role.label("actor_role"))
        .join(User, User.id == ReportEvent.actor_id)
        .where(ReportEvent.report_id == report_id).order_by(ReportEvent.at, ReportEvent.id)).all()
    return [dict(r._mapping) for r in rows]


def _with_photos(session: Session, records: list[ReportRecord]) -> list[ReportRecord]:
    photos = photos_of(session, (r["id"] for r in records))
    for rec in records:
        rec["photos"] = photos.get(rec["id"], [])
    return records


def get_report(session: Session, report_id: int) -> ReportRecord | None:
    row = session.execute(_joined(select(*_COLUMNS).select_from(Report)).where(Report.id == report_id)).one_or_none()
    return _with_photos(session, [dict(row._mapping)])[0] if row else None


# The orders a list may come in: newest first, or the most urgent deadline first (work queues).
ORDERS = {
    "newest": (Report.created_at.desc(), Report.id.desc()),
    "deadline": (Report.deadline_at.asc().nulls_last(), Report.id.asc()),
    "oldest": (Report.created_at.asc(), Report.id.asc()),
}


def list_reports(session: Session, flt: ReportFilter = ReportFilter(), order: str = "newest",
                 ) -> tuple[list[ReportRecord], int]:
    """A page of reports and how many match the filter in all."""
    where = flt.where()
    total = session.execute(select(func.count()).select_from(Report).where(where)).scalar_one()
    rows = session.execute(
        _joined(select(*_COLUMNS).select_from(Report)).where(where)
        .order_by(*ORDERS[order]).limit(flt.limit).offset(flt.offset)
    ).all()
    return _with_photos(session, [dict(r._mapping) for r in rows]), total


def count_reports(session: Session, flt: ReportFilter) -> int:
    return session.execute(select(func.count()).select_from(Report).where(flt.where())).scalar_one()


def iter_reports(session: Session, flt: ReportFilter, batch: int = 2000):
    """Every report matching the filter, oldest id first, read in batches by keyset (id > last), so
    an export of a million reports costs a million rows, not a million offsets."""
    last = None
    while True:
        page = dataclasses.replace(flt, id_after=last, limit=batch, offset=0)
        rows = session.execute(_joined(select(*_COLUMNS).select_from(Report)).where(page.where())
                               .order_by(Report.id).limit(batch)).all()
        if not rows:
            return
        yield from _with_photos(session, [dict(r._mapping) for r in rows])
        last = rows[-1].id
