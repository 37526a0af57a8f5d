"""A report's lifecycle as every door takes it: one step (`act`) or a duplicate group's merge
(`merge_group`), in the caller's transaction, with the audit row of each step written in that same
transaction and linked to the report event it made. A refused step (not the actor's, a stale
version, a state that does not allow it) is recorded too, independently of the request's
transaction, which rolls back: the refusal stays in the trail.

Who may take which step stays the lifecycle's ACTIONS table (geoapp/domain/lifecycle.py); who may
see the report stays geoapp/domain/visibility.py.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain import audit, duplicates, lifecycle
from ..domain.errors import DomainError
from ..domain.visibility import Viewer
from ..models import ReportEvent


def _last_event(session: Session, report_id: int) -> dict:
    # the report's row is locked by the step until commit: its newest event is the one just made
    row = session.execute(select(ReportEvent.id, ReportEvent.action, ReportEvent.from_status, ReportEvent.to_status)
                          .where(ReportEvent.report_id == report_id).order_by(ReportEvent.id.desc()).limit(1)).one()
    return {"event_id": row.id, "action": row.action, "from": row.from_status, "to": row.to_status}


def _refused(session: Session, actor: audit.Actor, report_id, action: str, exc: DomainError) -> None:
    audit.record_independently(session.get_bind(), actor, audit.REPORT_ACTION, object_type="report",
                               object_id=report_id, outcome="refused",
                               details={"action": str(action)[:40], "refusal": exc.code, "status": exc.status})


def act(session: Session, actor: audit.Actor, viewer: Viewer, report_id: int, action: str,
        fields: lifecycle.ActionFields, rules: lifecycle.Rules) -> lifecycle.ReportRecord:
    """One lifecycle step; the updated record."""
    try:
        record = lifecycle.perform(session, viewer, report_id, action, fields, rules)
    except DomainError as exc:
        _refused(session, actor, report_id, action, exc)
        raise
    audit.record(session, actor, audit.REPORT_ACTION, object_type="report", object_id=report_id,
                 details=_last_event(session, report_id))
    return record


def merge_group(session: Session, actor: audit.Actor, viewer: Viewer, survivor_id: int,
                members: Iterable[tuple[int, int]], rules: lifecycle.Rules):
    """The duplicates page's merge: every member but the survivor merged into it, each step audited."""
    try:
        survivor, merged = duplicates.merge_group(session, viewer, survivor_id, members, rules)
    except DomainError as exc:
        _refused(session, actor, survivor_id, "merge", exc)
        raise
    for report_id in merged:
        audit.record(session, actor, audit.REPORT_ACTION, object_type="report", object_id=report_id,
                     details=dict(_last_event(session, report_id), into=survivor_id))
    return survivor, merged

