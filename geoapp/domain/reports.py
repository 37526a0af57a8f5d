"""Reading reports back: a ReportFilter compiles to one SQLAlchemy Core select(); rows come back as
flat records (plain dicts of columns). How a record looks to the outside is geoapp/present.py's job.

The console, the statistics and Open311 add their filters here (unit, street, category, period,
overdue, visibility), each one more expression in `_conditions`, never a joined string.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from geoalchemy2 import functions as gfn
from sqlalchemy import Select, and_, func, select, true
from sqlalchemy.orm import Session, aliased

from ..models import WGS84, Category, Report, ReportEvent, Street, Unit, User
from .report_photos import photos_of
from .visibility import Viewer, access, visible
from .vocabulary import FINISHED_STATUSES

ReportRecord = dict[str, Any]

_item, _group, _class = aliased(Category), aliased(Category), aliased(Category)

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
    category: str | None = None         # item code
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
            yield Report.category_id == select(Category.id).where(
                Category.code == self.category, Category.level == "item").scalar_subquery()
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
    return access(viewer, reporter_id=rec["reporter_id"], street_id=rec["street_id"], unit_id=rec["unit_id"])


def events_of(session: Session, report_id: int) -> list[dict[str, Any]]:
    """A report's history, oldest first (report_events is append-only)."""
    rows = session.execute(
        select(ReportEvent.at, ReportEvent.action, ReportEvent.from_status, ReportEvent.to_status,
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


def list_reports(session: Session, flt: ReportFilter = ReportFilter()) -> tuple[list[ReportRecord], int]:
    """A page of reports (newest first) and how many match the filter in all."""
    where = flt.where()
    total = session.execute(select(func.count()).select_from(Report).where(where)).scalar_one()
    rows = session.execute(
        _joined(select(*_COLUMNS).select_from(Report)).where(where)
        .order_by(Report.created_at.desc(), Report.id.desc()).limit(flt.limit).offset(flt.offset)
    ).all()
    return _with_photos(session, [dict(r._mapping) for r in rows]), total
