"""Duplicate suggestions: open reports of the same problem, and merging a group of them in one action.

A group is the open reports of one category item on one street that lie close together ALONG the
street (reports.position_m, the metres from its start), reported within a time window:

- sorted by position_m per (street, item), a new group starts wherever the gap to the previous
  report is more than `along_m` (gaps and islands). So groups CHAIN: reports at 0, 15 and 30 m with
  along_m = 20 are one group, though the ends are 30 m apart — each is within 20 m of the next, and
  the same pothole photographed from three spots must not be split at an arbitrary point;
- the window counts back from now: only reports created in the last `window` are considered, so
  a report made 40 days ago is never suggested with today's (the problem may have come back);
- "open" is what the phone's "already reported nearby" means: not finished
  (vocabulary.FINISHED_STATUSES; merged ones are finished). Reports still being screened
  (lifecycle.SCREENABLE) can be merged; already dispatched ones can only survive, so a group is
  offered only when it has at least one report that can be merged into another.

Different streets never group, even at a crossing where two reports lie a few metres apart: each
belongs to its own street and its own representative, and position_m is measured along it.

Merging is the lifecycle's `merge` action (domain/lifecycle.py) taken on each member in one
transaction, each with the version the dispatcher saw: one stale member refuses the whole merge.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..models import Report
from ..translations import N_, Text
from .errors import ActionForbidden, ActionPrecondition, BadInput, NotFound, StaleVersion
from .inputs import MAX_MERGE_GROUP
from .lifecycle import ACTIONS, SCREENABLE, ActionFields, Rules, perform, status_label_msgid
from .reports import ReportRecord, access_to, get_report
from .visibility import Viewer
from .vocabulary import FINISHED_STATUSES

# The largest group one merge takes (a page never shows more; it bounds one transaction).
MAX_GROUP = MAX_MERGE_GROUP
# Groups one suggestion list holds at most, the most recently reported first.
MAX_GROUPS = 200

# One query: the candidates, their islands along each (street, item), and the islands of two or more
# with something to merge. Window functions only; no pairwise self-join.
_GROUPS = text("""
WITH candidate AS (
    SELECT r.id, r.street_id, r.category_id, r.position_m, r.created_at, r.status, r.version,
           r.status = ANY(:mergeable) AS mergeable,
           CASE WHEN r.position_m - lag(r.position_m) OVER along > :along_m THEN 1 ELSE 0 END AS starts
    FROM reports r
    WHERE r.status <> ALL(:finished)
      AND r.created_at >= CAST(:now AS timestamptz) - CAST(:window AS interval)
      AND (CAST(:street AS text) IS NULL
           OR r.street_id = (SELECT s.id FROM streets s WHERE s.code = CAST(:street AS text)))
    WINDOW along AS (PARTITION BY r.street_id, r.category_id ORDER BY r.position_m, r.id)
), island AS (
    SELECT c.*, sum(c.starts) OVER (PARTITION BY c.street_id, c.category_id
                                    ORDER BY c.position_m, c.id) AS island
    FROM candidate c
), sized AS (
    SELECT i.*,
           count(*) OVER g AS size,
           bool_or(i.mergeable) OVER g AS any_mergeable,
           max(i.created_at) OVER g AS latest
    FROM island i
    WINDOW g AS (PARTITION BY i.street_id, i.category_id, i.island)
), ranked AS (
    SELECT z.*, dense_rank() OVER (ORDER BY z.latest DESC, z.street_id, z.category_id, z.island) AS rank
    FROM sized z
    WHERE z.size >= 2 AND z.any_mergeable
)
SELECT k.rank, k.id, k.position_m, k.created_at, k.status, k.version, k.mergeable,
       s.id AS street_id, s.code AS street_code, s.name AS street_name, s.name_en AS street_name_en,
       c.id AS item_id, c.code AS item_code, c.name AS item_name, c.name_en AS item_name_en
FROM ranked k
JOIN streets s ON s.id = k.street_id
JOIN categories c ON c.id = k.category_id
WHERE k.rank <= :max_groups
ORDER BY k.rank, k.position_m, k.id
""")


def duplicate_groups(session: Session, along_m: float, window: dt.timedelta, street: str | None = None,
                     now: dt.datetime | None = None, max_groups: int = MAX_GROUPS) -> list[dict[str, Any]]:
    """The suggested groups, the most recently reported first:
    [{street {id, code, name, name_en}, item {id, code, name, name_en},
      members [{id, position_m, created_at, status, version, mergeable}] (along the street)}]."""
    rows = session.execute(_GROUPS, {
        "mergeable": list(SCREENABLE), "finished": list(FINISHED_STATUSES), "along_m": along_m,
        "now": now or dt.datetime.now(dt.timezone.utc), "window": window, "street": street,
        "max_groups": max_groups}).all()
    groups: list[dict[str, Any]] = []
    for row in rows:
        if not groups or groups[-1]["_rank"] != row.rank:
            groups.append({"_rank": row.rank,
                           "street": {"id": row.street_id, "code": row.street_code, "name": row.street_name,
                                      "name_en": row.street_name_en},
                           "item": {"id": row.item_id, "code": row.item_code, "name": row.item_name,
                                    "name_en": row.item_name_en},
                           "members": []})
        groups[-1]["members"].append({"id": row.id, "position_m": float(row.position_m),
                                      "created_at": row.created_at, "status": row.status,
                                      "version": row.version, "mergeable": row.mergeable})
    for g in groups:
        del g["_rank"]
    return groups


def default_survivor(members: Sequence[dict[str, Any]]) -> int:
    """The report the others are merged into unless the dispatcher picks another: one already
    dispatched (its unit is on it; the earliest such), else the earliest reported."""
    def earliest(ms):
        return min(ms, key=lambda m: (m["created_at"], m["id"]))["id"]
    under_way = [m for m in members if not m["mergeable"]]
    return earliest(under_way or members)


def merge_group(session: Session, viewer: Viewer, survivor_id: int, members: Iterable[tuple[int, int]],
                rules: Rules, now: dt.datetime | None = None) -> tuple[ReportRecord, list[int]]:
    """Merge every member but the survivor into the survivor, in the caller's transaction:
    (the survivor's record, the ids merged). `members` are (id, version as the page saw it) and
    include the survivor; any refusal (a stale version: 409) raises, and the caller rolls back."""
    seen = dict(_distinct(members))
    if survivor_id not in seen:
        raise BadInput(field="into", field_label=Text(N_("合并到")),
                       problem=Text(N_("保留的问题须是本组成员之一。")))
    if len(seen) < 2:
        raise BadInput(field="members", field_label=Text(N_("本组问题")),
                       problem=Text(N_("至少需要两个问题才能合并。")))
    _check_survivor(session, viewer, survivor_id)
    _lock_group(session, survivor_id, seen)
    now = now or dt.datetime.now(dt.timezone.utc)
    merged = sorted(i for i in seen if i != survivor_id)
    for report_id in merged:
        perform(session, viewer, report_id, "merge", ActionFields(version=seen[report_id], into=survivor_id),
                rules, now=now)
    return get_report(session, survivor_id), merged


def _distinct(members: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: dict[int, int] = {}
    for report_id, version in members:
        if report_id in out:
            raise BadInput(field="members", field_label=Text(N_("本组问题")),
                           problem=Text(N_("问题 {report_id} 出现了两次。"), report_id=report_id))
        out[report_id] = version
    if len(out) > MAX_GROUP:
        raise BadInput(field="members", field_label=Text(N_("本组问题")),
                       problem=Text(N_("一次最多合并 {max} 个问题。"), max=MAX_GROUP))
    return list(out.items())


def _check_survivor(session: Session, viewer: Viewer, survivor_id: int) -> None:
    """Only a dispatcher merges; a report one may not see is 404 first, as everywhere."""
    rec = get_report(session, survivor_id)
    if rec is None or access_to(viewer, rec) is None:
        raise NotFound(report_id=survivor_id)
    if not viewer.dispatches:
        raise ActionForbidden(action="merge", action_label=Text(ACTIONS["merge"].label))


def _lock_group(session: Session, survivor_id: int, seen: dict[int, int]) -> None:
    """Lock every member until the merge commits, in id order (two merges never deadlock; nobody
    voids the survivor meanwhile); then the survivor must be as the page saw it, and the group one
    item on one street (a client cannot merge a pothole into a litter report)."""
    rows = session.execute(select(Report.id, Report.version, Report.status, Report.street_id, Report.category_id)
                           .where(Report.id.in_(list(seen))).order_by(Report.id).with_for_update()).all()
    found = {r.id: r for r in rows}
    for report_id in seen:
        if report_id not in found:
            raise NotFound(report_id=report_id)
    survivor = found[survivor_id]
    if survivor.version != seen[survivor_id]:
        raise StaleVersion(seen=seen[survivor_id], version=survivor.version, status=survivor.status,
                           status_label=Text(status_label_msgid(survivor.status)))
    if len({(r.street_id, r.category_id) for r in rows}) > 1:
        raise ActionPrecondition(reason=Text(N_("只能合并同一街路上同一细项的问题。")))
