"""The programme's monthly quota: each representative sends 2 watermarked photos a month (committee
members 4), counted in the city's local calendar month."""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..models import Photo, Report, User


@dataclass(frozen=True)
class QuotaProgress:
    month: str       # "2026-11"
    taken: int       # published `before` photos of my reports this month
    quota: int
    days_left: int   # including today

    @property
    def met(self) -> bool:
        return self.taken >= self.quota


def month_bounds(now: dt.datetime, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The local calendar month containing `now`, as [start, end) instants."""
    local = now.astimezone(ZoneInfo(tz))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def counted_photos(start: dt.datetime, end: dt.datetime) -> Select:
    """The quota's one counting rule: each published `before` photo of a report created in
    [start, end), as rows (photo_id, reporter_id, created_at). monthly_progress and coverage per road
    (domain/coverage.py: every street at once, and a representative's last 12 months) count these."""
    return (select(Photo.id.label("photo_id"), Report.reporter_id.label("reporter_id"),
                   Report.created_at.label("created_at"))
            .join(Report, Report.id == Photo.report_id)
            .where(Photo.kind == "before", Report.created_at >= start, Report.created_at < end))


def monthly_progress(session: Session, user: User, now: dt.datetime, tz: str) -> QuotaProgress | None:
    """None for users who are not representatives (they have no quota)."""
    rep = user.representative
    if rep is None:
        return None
    start, end = month_bounds(now, tz)
    mine = counted_photos(start, end).where(Report.reporter_id == user.id).subquery()
    taken = session.execute(select(func.count()).select_from(mine)).scalar_one()
    local_today = now.astimezone(ZoneInfo(tz)).date()
    days_in_month = calendar.monthrange(local_today.year, local_today.month)[1]
    return QuotaProgress(month=start.strftime("%Y-%m"), taken=taken, quota=rep.monthly_quota,
                         days_left=days_in_month - local_today.day + 1)
