"""The handling lifecycle (随时办): what may happen to a report, who may do it, and what it needs.

The closed loop of China's digital urban management — 信息收集 → 案卷建立 → 任务派遣 → 任务处理 →
处理反馈 → 核查结案 → 综合评价 — with Jiayuguan's practice: a lead unit, cooperating units and a
deadline per item; three feedbacks (签收 / 处置中 / 办结); a double satisfaction rating; reopening
(回头看), hand-back (回退), extension (延期), the ledger (挂账).

`ACTIONS` is the whole rule as data: for each action, the parties who may take it, the fields it
needs, and the moves it makes (from state → to state; `None` = stays where it is). Pages, the API,
the tests and the README table all read it; nothing else decides whether a transition is allowed.
`perform` applies one action inside the caller's transaction: it checks visibility (404), party
(403), version (409, optimistic locking: a stale writer gets the current state), state (409) and
fields (400), then updates the row with `WHERE version = :seen` (so two concurrent writers cannot
both win), writes a ReportEvent and the notifications.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from ..models import Category, Report, ReportEvent, ReportUnit, Unit
from ..translations import N_, Text, translate
from . import notifications
from .errors import (
    ActionForbidden, ActionPrecondition, BadInput, NotFound, StaleVersion, TransitionNotAllowed, UnknownAction,
)
from .dispatch import suggest_dispatch
from .inputs import field_label
from .reports import ReportRecord, access_to, get_report
from .visibility import Viewer
from .vocabulary import (DISPATCHED_STATUSES, FINISHED_STATUSES, RUNNING_STATUSES, SATISFIED, STATUS_LABELS,
                         WITHDRAWN_STATUSES, statuses_of)

# The parties to a report, as the table names them (a user may be several at once).
DISPATCHER = "dispatcher"          # committee staff and the bureau's dispatchers (and admins)
LEAD_UNIT = "lead_unit"            # a handler of the unit the report is dispatched to
COOPERATING_UNIT = "cooperating_unit"
REPORTER = "reporter"              # who reported it (or a report merged into it: see verify)
PARTIES = (DISPATCHER, LEAD_UNIT, COOPERATING_UNIT, REPORTER)

SCREENABLE = statuses_of("to_screen", "to_decide")
SCREENED = tuple(s for s in DISPATCHED_STATUSES) + ("accepted",)


@dataclass(frozen=True)
class Action:
    label: str                      # msgid: what a button says
    parties: tuple[str, ...]
    moves: Mapping[str, str | None]  # from state -> to state (None: stays)
    needs: tuple[str, ...] = ()     # fields that must be given (see ActionFields)
    optional: tuple[str, ...] = ()
    notify: str | None = None       # notification kind (domain/notifications.py) sent on success
    photo_kind: str | None = None   # the kind of photos this action may attach (domain/report_photos.py)


def _stay(states) -> dict[str, None]:
    return {s: None for s in states}


ACTIONS: dict[str, Action] = {
    "accept": Action(N_("受理"), (DISPATCHER,), {"submitted": "accepted", "returned": "accepted"}),
    "reject": Action(N_("驳回（不予受理）"), (DISPATCHER,), {s: "rejected" for s in SCREENABLE}, needs=("reason",),
                     notify="rejected"),
    "merge": Action(N_("合并为重复"), (DISPATCHER,), {s: "merged" for s in SCREENABLE}, needs=("into",),
                    notify="merged"),
    "dispatch": Action(N_("派遣"), (DISPATCHER,), {s: "dispatched" for s in SCREENABLE}, needs=("unit",),
                       optional=("cooperating", "deadline", "reason"), notify="dispatched"),
    "unit_accept": Action(N_("签收"), (LEAD_UNIT,), {"dispatched": "unit_accepted", "reopened": "unit_accepted"}),
    "progress": Action(N_("反馈进展"), (LEAD_UNIT, COOPERATING_UNIT),
                       {"unit_accepted": "in_progress", "in_progress": "in_progress", "reopened": "in_progress",
                        "ledger": None},
                       needs=("text",), photo_kind="progress"),
    "handled": Action(N_("办结"), (LEAD_UNIT,),
                      {"unit_accepted": "handled", "in_progress": "handled", "reopened": "handled",
                       "ledger": "handled"},
                      needs=("text", "photos"), photo_kind="after", notify="handled"),
    "hand_back": Action(N_("回退（非本单位职责）"), (LEAD_UNIT,),
                        {"dispatched": "returned", "unit_accepted": "returned"}, needs=("reason",),
                        notify="returned"),
    "request_extension": Action(N_("申请延期"), (LEAD_UNIT,), _stay(RUNNING_STATUSES), needs=("until", "reason"),
                                notify="extension_requested"),
    "grant_extension": Action(N_("同意延期"), (DISPATCHER,), _stay(RUNNING_STATUSES), optional=("until", "reason"),
                              notify="extension_decided"),
    "refuse_extension": Action(N_("不同意延期"), (DISPATCHER,), _stay(RUNNING_STATUSES), needs=("reason",),
                               notify="extension_decided"),
    "edit_deadline": Action(N_("修改时限"), (DISPATCHER,), _stay(RUNNING_STATUSES), needs=("deadline", "reason")),
    "verify": Action(N_("评价"), (REPORTER,), {"handled": "verified"},
                     needs=("reply_rating", "result_rating"), optional=("comment",)),
    "close": Action(N_("结案"), (DISPATCHER,), {"verified": "closed", "handled": "closed"}, optional=("reason",)),
    "reopen": Action(N_("返工（回头看）"), (DISPATCHER,),
                     {"handled": "reopened", "verified": "reopened", "closed": "reopened"}, needs=("reason",),
                     notify="reopened"),
    "ledger": Action(N_("列入台账"), (DISPATCHER,), {s: "ledger" for s in RUNNING_STATUSES},
                     needs=("promised_on", "reason")),
    "void": Action(N_("作废"), (DISPATCHER,), {s: "void" for s in SCREENABLE}, needs=("reason",)),
    "album": Action(N_("问题图册"), (DISPATCHER,), _stay(SCREENED), needs=("flag",)),
}


@dataclass
class ActionFields:
    """An action's inputs, already parsed and checked by geoapp.domain.inputs.ActionInput."""
    version: int
    reason: str | None = None
    text: str | None = None
    comment: str | None = None
    into: int | None = None
    unit: str | None = None
    cooperating: tuple[str, ...] = ()
    deadline: dt.datetime | None = None
    until: dt.datetime | None = None
    promised_on: dt.date | None = None
    reply_rating: int | None = None
    result_rating: int | None = None
    flag: bool | None = None
    photos: list[bytes] = field(default_factory=list)

    def given(self, name: str) -> bool:
        value = getattr(self, name)
        return value not in (None, "", [], ())


@dataclass(frozen=True)
class Rules:
    """What an action needs from the settings: deadlines and the photo pipeline."""
    deadline_for: Callable[[dt.datetime, float], dt.datetime]   # (start, deadline_days) -> deadline
    store_photos: Callable[..., None] | None = None               # (session, report, event_id, kind, photos, unit_name)


def rules_from_settings(settings) -> Rules:
    """Deadlines on the official calendar in the configured office hours; feedback photos through the
    same pipeline as the representative's (checked, bounded, metadata stripped, watermarked)."""
    from .intake import IntakeRules, _read_photos
    from .photos import check_photo_count
    from .report_photos import Evidence, add_photos, store_original
    from .working_time import OfficeHours, deadline_for

    hours = OfficeHours.from_settings(settings)
    intake = IntakeRules.from_settings(settings)

    def store_photos(session: Session, rec: ReportRecord, event_id: int, kind: str, uploads: list[bytes],
                     author: str) -> None:
        check_photo_count(len(uploads))
        photos = _read_photos(uploads, intake)
        try:
            originals = [store_original(intake.photo_dir, p) for p in photos]
            add_photos(session, intake.photo_dir, photos, originals, Evidence(
                report_id=rec["id"], street_name=rec["street_name"], lon=rec["lon"], lat=rec["lat"],
                reporter_name=author, received_at=dt.datetime.now(dt.timezone.utc), tz=intake.display_tz),
                kind=kind, event_id=event_id)
        finally:
            for p in photos:
                p.close()

    return Rules(deadline_for=lambda start, days: deadline_for(start, days, hours), store_photos=store_photos)


def parties(viewer: Viewer, rec: ReportRecord) -> set[str]:
    """Which parties this viewer is to this report."""
    found = set()
    if viewer.dispatches:
        found.add(DISPATCHER)
    if viewer.role == "unit_handler" and rec["status"] in DISPATCHED_STATUSES:
        if viewer.unit_id == rec["unit_id"]:
            found.add(LEAD_UNIT)
        elif viewer.unit_id in rec.get("cooperating_unit_ids", ()):
            found.add(COOPERATING_UNIT)
    if viewer.user_id == rec["reporter_id"]:
        found.add(REPORTER)
    return found


def available_actions(viewer: Viewer, rec: ReportRecord) -> list[str]:
    """The actions this viewer could take on this report now (what the pages offer as buttons)."""
    mine = parties(viewer, rec)
    return [name for name, a in ACTIONS.items()
            if mine.intersection(a.parties) and rec["status"] in a.moves
            and _precondition(name, rec) is None]


def _precondition(action: str, rec: ReportRecord) -> Text | None:
    """A reason of the report's own that refuses an action the state allows (None: go ahead)."""
    if action in ("grant_extension", "refuse_extension") and rec.get("extension_requested_until") is None:
        return Text(N_("没有待审批的延期申请。"))
    if action == "album" and rec["status"] in WITHDRAWN_STATUSES:
        return Text(N_("已合并、不予受理或作废的问题不能列入图册。"))
    return None


def action_label(action: str, lang: str | None = None) -> str:
    return translate(ACTIONS[action].label, lang)


def perform(session: Session, viewer: Viewer, report_id: int, action: str, fields: ActionFields,
            rules: Rules, now: dt.datetime | None = None) -> ReportRecord:
    """Take `action` on the report as `viewer`; the updated record. The caller commits."""
    if action not in ACTIONS:
        raise UnknownAction(action=str(action)[:40], allowed=", ".join(ACTIONS))
    spec = ACTIONS[action]
    _lock_involved(session, report_id, action, fields)
    rec = get_report(session, report_id)
    if rec is None or access_to(viewer, rec) is None:
        raise NotFound(report_id=report_id)
    label = Text(spec.label)
    if not parties(viewer, rec).intersection(spec.parties):
        raise ActionForbidden(action=action, action_label=label)
    if rec["version"] != fields.version:
        raise StaleVersion(seen=fields.version, version=rec["version"], status=rec["status"],
                           status_label=Text(status_label_msgid(rec["status"])))
    if rec["status"] not in spec.moves:
        raise TransitionNotAllowed(action=action, action_label=label, status=rec["status"],
                                   status_label=Text(status_label_msgid(rec["status"])))
    refused = _precondition(action, rec)
    if refused is not None:
        raise ActionPrecondition(reason=refused)
    for name in spec.needs:
        if not fields.given(name):
            raise BadInput(field=name, field_label=field_label(name), problem=Text(N_("必填。")))
    if fields.photos and spec.photo_kind is None:
        raise BadInput(field="photo", field_label=field_label("photo"), problem=Text(N_("此操作不能附带照片。")))

    now = now or dt.datetime.now(dt.timezone.utc)
    to = spec.moves[rec["status"]]
    changes, data = _EFFECTS.get(action, _no_effect)(session, rec, fields, rules, now)
    to = changes.pop("_to", to)  # verify decides between verified and reopened
    new_status = to or rec["status"]
    done = session.execute(
        update(Report).where(Report.id == report_id, Report.version == fields.version)
        .values(status=new_status, version=Report.version + 1, updated_at=now, **changes)
        .returning(Report.id)).scalar_one_or_none()
    if done is None:  # another writer committed between our read and our write
        current = session.execute(select(Report.version, Report.status).where(Report.id == report_id)).one()
        raise StaleVersion(seen=fields.version, version=current.version, status=current.status,
                           status_label=Text(status_label_msgid(current.status)))
    for key in ("reason", "text", "comment"):
        if fields.given(key):
            data.setdefault(key, getattr(fields, key))
    event_id = session.execute(insert(ReportEvent).values(
        report_id=report_id, actor_id=viewer.user_id, at=now, action=action, from_status=rec["status"],
        to_status=new_status, data=data).returning(ReportEvent.id)).scalar_one()
    if fields.photos:
        rules.store_photos(session, rec, event_id, spec.photo_kind, fields.photos, _unit_name(session, viewer))
    after = get_report(session, report_id)
    kind = "reopened" if action == "verify" and new_status == "reopened" else spec.notify
    if kind:
        notifications.notify_transition(session, after, kind, actor_id=viewer.user_id, data=data)
    return after


def _lock_involved(session: Session, report_id: int, action: str, fields: ActionFields) -> None:
    """Lock the report's row, and a merge's target too, in id order (two merges of A into B and B into
    A never deadlock), before anything is read: every check below then sees what the other writers
    committed, and nobody changes these rows until this transaction ends. Without it a merge read its
    target unlocked, so A→B and B→A, or a merge into B and a void of B, could both succeed."""
    ids = {report_id}
    if action == "merge" and isinstance(fields.into, int):
        ids.add(fields.into)
    session.execute(select(Report.id).where(Report.id.in_(sorted(ids))).order_by(Report.id).with_for_update())


def status_label_msgid(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def _unit_name(session: Session, viewer: Viewer) -> str:
    if viewer.unit_id is None:
        return ""
    return session.execute(select(Unit.name).where(Unit.id == viewer.unit_id)).scalar_one()


# --- what each action changes besides the status --------------------------------------------------
# Each effect returns (column changes, event data). They run after every check has passed.

Effect = Callable[[Session, ReportRecord, ActionFields, Rules, dt.datetime], tuple[dict, dict]]


def _no_effect(session, rec, f, rules, now):
    return {}, {}


def _deadline_days(session: Session, rec: ReportRecord) -> float:
    return float(session.execute(select(Category.deadline_days).where(Category.code == rec["category_code"],
                                                                      Category.level == "item")).scalar_one())


def _unit_id(session: Session, code: str, field_name: str) -> int:
    unit = session.execute(select(Unit.id, Unit.active).where(Unit.code == code)).one_or_none()
    if unit is None:
        raise BadInput(field=field_name, field_label=field_label(field_name), problem=Text(N_("未知的单位编码“{code}”。"), code=code))
    if not unit.active:  # the system administrator took it out of service (geoapp/core/administration.py)
        raise BadInput(field=field_name, field_label=field_label(field_name),
                       problem=Text(N_("单位“{code}”已停用，不能派遣。"), code=code))
    return unit.id


def _dispatch(session, rec, f: ActionFields, rules: Rules, now):
    lead = _unit_id(session, f.unit, "unit")
    cooperating = sorted({_unit_id(session, c, "cooperating") for c in f.cooperating} - {lead})
    computed = rules.deadline_for(now, _deadline_days(session, rec))
    deadline = f.deadline or computed
    if deadline <= now:
        raise BadInput(field="deadline", field_label=field_label("deadline"), problem=Text(N_("处置时限须晚于现在。")))
    suggestion = suggest_dispatch(session, rec)
    suggested = suggestion.unit_id if suggestion is not None else None
    overridden = lead != suggested
    if overridden and not f.given("reason"):
        raise BadInput(field="reason", field_label=field_label("reason"),
                       problem=Text(N_("改派到非建议单位时须说明理由。")))
    if f.deadline is not None and f.deadline != computed and not f.given("reason"):
        raise BadInput(field="reason", field_label=field_label("reason"), problem=Text(N_("修改处置时限时须说明理由。")))
    session.execute(delete(ReportUnit).where(ReportUnit.report_id == rec["id"]))
    if cooperating:
        session.execute(insert(ReportUnit), [{"report_id": rec["id"], "unit_id": u} for u in cooperating])
    changes = {"unit_id": lead, "deadline_at": deadline, "dispatched_at": now,
               "dispatch_reason": f.reason if overridden else suggestion.reason,
               "extension_requested_until": None, "extension_reason": None}
    data = {"unit": f.unit, "unit_id": lead, "cooperating": list(f.cooperating), "deadline": deadline.isoformat(),
            "computed_deadline": computed.isoformat(), "suggested_unit_id": suggested,
            "overridden": overridden}
    return changes, data


def _merge(session, rec, f: ActionFields, rules, now):
    if f.into == rec["id"]:
        raise ActionPrecondition(reason=Text(N_("不能合并到自身。")))
    target = session.execute(select(Report.status, Report.merged_into_id).where(Report.id == f.into)).one_or_none()
    if target is None:
        raise ActionPrecondition(reason=Text(N_("要合并到的问题 {report_id} 不存在。"), report_id=f.into))
    if target.status in WITHDRAWN_STATUSES:
        raise ActionPrecondition(reason=Text(N_("不能合并到已合并、不予受理或作废的问题 {report_id}。"),
                                             report_id=f.into))
    # the reports merged into this one follow it to the survivor (no chains to walk later)
    session.execute(update(Report).where(Report.merged_into_id == rec["id"])
                    .values(merged_into_id=f.into, version=Report.version + 1))
    # the survivor changed too (it has one more duplicate): a dispatcher acting on it from what they
    # saw before the merge (a void, a merge of it elsewhere) is told to look again (409)
    session.execute(update(Report).where(Report.id == f.into).values(version=Report.version + 1))
    return {"merged_into_id": f.into, "deadline_at": None}, {"into": f.into}


def _hand_back(session, rec, f, rules, now):
    # the unit that handed it back: the next suggestion leaves it out (domain/dispatch.py)
    return {"deadline_at": None, "extension_requested_until": None, "extension_reason": None}, \
        {"unit_id": rec["unit_id"], "unit": rec["unit_code"]}


def _request_extension(session, rec, f: ActionFields, rules, now):
    if rec["deadline_at"] is not None and f.until <= rec["deadline_at"]:
        raise BadInput(field="until", field_label=field_label("until"), problem=Text(N_("延期后的时限须晚于当前时限。")))
    return {"extension_requested_until": f.until, "extension_reason": f.reason}, {"until": f.until.isoformat()}


def _grant_extension(session, rec, f: ActionFields, rules, now):
    until = f.until or rec["extension_requested_until"]
    return ({"deadline_at": until, "extension_requested_until": None, "extension_reason": None},
            {"until": until.isoformat(), "previous_deadline": _iso(rec["deadline_at"]), "granted": True})


def _refuse_extension(session, rec, f, rules, now):
    return ({"extension_requested_until": None, "extension_reason": None},
            {"until": _iso(rec["extension_requested_until"]), "granted": False})


def _edit_deadline(session, rec, f: ActionFields, rules, now):
    return {"deadline_at": f.deadline}, {"deadline": f.deadline.isoformat(), "previous_deadline": _iso(rec["deadline_at"])}


def _handled(session, rec, f, rules, now):
    return {"handled_at": now, "extension_requested_until": None, "extension_reason": None}, {}


def _verify(session, rec, f: ActionFields, rules, now):
    satisfied = f.reply_rating >= SATISFIED and f.result_rating >= SATISFIED
    data = {"reply_rating": f.reply_rating, "result_rating": f.result_rating, "satisfied": satisfied}
    changes = {"reply_rating": f.reply_rating, "result_rating": f.result_rating, "verify_comment": f.comment}
    if not satisfied:
        if not f.given("comment"):
            raise BadInput(field="comment", field_label=field_label("comment"),
                           problem=Text(N_("不满意时请写明原因，单位将据此返工。")))
        # 回头看: back to the same unit, with a fresh time limit for the rework
        changes.update(_to="reopened", handled_at=None,
                       deadline_at=rules.deadline_for(now, _deadline_days(session, rec)))
    return changes, data


def _close(session, rec, f, rules, now):
    return {"closed_at": now}, {}


def _reopen(session, rec, f, rules, now):
    return {"closed_at": None, "handled_at": None,
            "deadline_at": rules.deadline_for(now, _deadline_days(session, rec))}, {}


def _ledger(session, rec, f: ActionFields, rules, now):
    return {"ledger_promised_on": f.promised_on}, {"promised_on": f.promised_on.isoformat()}


def _album(session, rec, f: ActionFields, rules, now):
    return {"album": bool(f.flag)}, {"flag": bool(f.flag)}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


_EFFECTS: dict[str, Effect] = {
    "dispatch": _dispatch, "merge": _merge, "hand_back": _hand_back, "request_extension": _request_extension,
    "grant_extension": _grant_extension, "refuse_extension": _refuse_extension, "edit_deadline": _edit_deadline,
    "handled": _handled, "verify": _verify, "close": _close, "reopen": _reopen, "ledger": _ledger, "album": _album,
}
assert set(_EFFECTS) <= set(ACTIONS)


# --- the table as rows ---------------------------------------------------------------------------

def lifecycle_table() -> list[dict[str, Any]]:
    """ACTIONS as rows (README, tests, the API's /lifecycle): action, parties, from, to, needs."""
    return [{"action": name, "label": a.label, "parties": list(a.parties), "from": frm, "to": to or frm,
             "needs": list(a.needs), "optional": list(a.optional)}
            for name, a in ACTIONS.items() for frm, to in a.moves.items()]


__all__ = ["ACTIONS", "Action", "ActionFields", "Rules", "perform", "parties", "available_actions",
           "lifecycle_table", "PARTIES", "FINISHED_STATUSES"]
