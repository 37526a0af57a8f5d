"""Who may see which report, and how much of it: the one rule, used by every page and every API.

- dispatchers, admins and leaders: every report, in full (a leader acts on none);
- a representative: their own reports in full, and the other reports on their own street as a
  summary (position, category, status, published photos, dates — not who reported it nor the
  description) so they do not report a problem twice; nothing else;
- a representative whose report was merged into another (a duplicate): that surviving report as a
  summary, so they follow the outcome of the problem they reported;
- a unit's handler: the reports dispatched to their unit, as lead or cooperating unit, in full —
  from dispatch on (before that the unit is only the rule's suggestion);
- the original (unwatermarked) photo: admins only;
- walks: one's own; dispatchers and admins everyone's.
A report one may not see is answered 404, never 403, so its existence is not revealed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from ..models import Report, ReportUnit, User
from .vocabulary import DISPATCHED_STATUSES, DISPATCHER_ROLES, READ_ALL_ROLES

_merged = aliased(Report)

Access = Literal["full", "summary"]
FULL: Access = "full"
SUMMARY: Access = "summary"


@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: str
    street_id: int | None = None  # a representative's street
    unit_id: int | None = None    # a unit handler's unit

    @classmethod
    def of(cls, user: User) -> "Viewer":
        street = user.representative.street_id if user.representative is not None else None
        return cls(user_id=user.id, role=user.role, street_id=street, unit_id=user.unit_id)

    @property
    def sees_everything(self) -> bool:
        """Reads every report in full: dispatchers, admins and leaders."""
        return self.role in READ_ALL_ROLES

    @property
    def dispatches(self) -> bool:
        """Screens, dispatches, merges and decides (the lifecycle's dispatcher party); a leader does not."""
        return self.role in DISPATCHER_ROLES


def visible(viewer: Viewer) -> ColumnElement[bool]:
    """SQL condition on `reports`: the rows this viewer may see at all (full or summary)."""
    if viewer.sees_everything:
        return true()
    mine = Report.reporter_id == viewer.user_id  # one's own reports, whatever one's role (as `access`)
    if viewer.role == "representative":
        followed = exists(select(_merged.id).where(_merged.merged_into_id == Report.id,
                                                   _merged.reporter_id == viewer.user_id))
        street = Report.street_id == viewer.street_id if viewer.street_id is not None else false()
        return or_(mine, street, followed)
    if viewer.role == "unit_handler" and viewer.unit_id is not None:
        return or_(mine, and_(Report.status.in_(DISPATCHED_STATUSES), or_(
            Report.unit_id == viewer.unit_id,
            exists(select(ReportUnit.report_id).where(ReportUnit.report_id == Report.id,
                                                      ReportUnit.unit_id == viewer.unit_id)))))
    return mine


def access(viewer: Viewer, *, reporter_id: int, street_id: int, unit_id: int | None = None,
           status: str | None = None, cooperating_unit_ids=(), merged_reporter_ids=()) -> Access | None:
    """How much of one report this viewer may see: 'full', 'summary', or None (answer 404).
    Must agree with `visible` (tests/test_visibility_agreement.py asks both on generated rows)."""
    if viewer.sees_everything or reporter_id == viewer.user_id:
        return FULL
    if viewer.role == "representative":
        on_my_street = viewer.street_id is not None and street_id == viewer.street_id
        return SUMMARY if on_my_street or viewer.user_id in (merged_reporter_ids or ()) else None
    if (viewer.role == "unit_handler" and viewer.unit_id is not None and status in DISPATCHED_STATUSES
            and (unit_id == viewer.unit_id or viewer.unit_id in (cooperating_unit_ids or ()))):
        return FULL
    return None


def sees_walks_of_everyone(viewer: Viewer) -> bool:
    """Walks are a person's own trace: dispatchers and admins see everyone's, anyone else only
    their own (domain/walks.py filters by the viewer's user id otherwise)."""
    return viewer.sees_everything


def reads_programme(viewer: Viewer) -> bool:
    """The programme's results for the whole city (coverage of every street, statistics, the album):
    dispatchers, admins and leaders. A representative reads their own street's coverage only."""
    return viewer.sees_everything


def may_see_original_photo(viewer: Viewer) -> bool:
    return viewer.role == "admin"
