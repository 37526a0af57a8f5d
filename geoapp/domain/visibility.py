"""Who may see which report, and how much of it: the one rule, used by every page and every API.

- dispatchers and admins: every report, in full;
- a representative: their own reports in full, and the other reports on their own street as a
  summary (position, category, status, published photos, dates — not who reported it nor the
  description) so they do not report a problem twice; nothing else;
- a unit's handler: the reports dispatched to their unit, in full ([3] refines this);
- the original (unwatermarked) photo: admins only;
- walks: one's own; dispatchers and admins everyone's.
A report one may not see is answered 404, never 403, so its existence is not revealed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, false, or_, true

from ..models import Report, User

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
        return self.role in ("dispatcher", "admin")


def visible(viewer: Viewer) -> ColumnElement[bool]:
    """SQL condition on `reports`: the rows this viewer may see at all (full or summary)."""
    if viewer.sees_everything:
        return true()
    if viewer.role == "representative":
        mine = Report.reporter_id == viewer.user_id
        return or_(mine, Report.street_id == viewer.street_id) if viewer.street_id is not None else mine
    if viewer.role == "unit_handler" and viewer.unit_id is not None:
        return Report.unit_id == viewer.unit_id
    return false()


def access(viewer: Viewer, *, reporter_id: int, street_id: int, unit_id: int | None = None) -> Access | None:
    """How much of one report this viewer may see: 'full', 'summary', or None (answer 404).
    Must agree with `visible` (tests/test_visibility.py checks both on the same rows)."""
    if viewer.sees_everything or reporter_id == viewer.user_id:
        return FULL
    if viewer.role == "representative":
        return SUMMARY if viewer.street_id is not None and street_id == viewer.street_id else None
    if viewer.role == "unit_handler" and viewer.unit_id is not None and unit_id == viewer.unit_id:
        return FULL
    return None


def sees_walks_of_everyone(viewer: Viewer) -> bool:
    """Walks are a person's own trace: dispatchers and admins see everyone's, anyone else only
    their own (domain/walks.py filters by the viewer's user id otherwise)."""
    return viewer.sees_everything


def may_see_original_photo(viewer: Viewer) -> bool:
    return viewer.role == "admin"
