"""The closed lists of the domain, each defined once. The models build their CHECK constraints from
these tuples, the loader and the request schema validate against them, and pages read their labels
from the presenter — so adding a status or a CRS is a change here plus a migration, nowhere else."""
from __future__ import annotations

from ..translations import N_

# A report's states, in the order of the closed loop (信息收集 → 受理 → 派遣 → 处置 → 核查 → 结案).
# Their transitions are one table, geoapp/domain/lifecycle.py; adding a state here needs a migration
# (the CHECK constraint is built from this tuple).
REPORT_STATUSES = (
    "submitted",      # 已提交: waiting to be screened
    "accepted",       # 已受理: screened, a real problem, not yet dispatched
    "rejected",       # 不予受理: not a problem for this programme (with a reason)
    "merged",         # 已合并: a duplicate; its outcome is the surviving report's (merged_into_id)
    "dispatched",     # 已派遣: sent to a lead unit with a deadline
    "unit_accepted",  # 已签收: the unit took it (feedback 1)
    "in_progress",    # 处置中: the unit reported progress (feedback 2)
    "handled",        # 已办结: the unit finished, with an after photo (feedback 3)
    "verified",       # 已核实: the reporter confirmed it, satisfied
    "closed",         # 已结案
    "returned",       # 已回退: the unit handed it back ("not our responsibility"); the dispatcher decides again
    "reopened",       # 返工: verification unsatisfied, or a dispatcher's decision; back to the same unit
    "ledger",         # 挂账: a long-term item with a promised date, visible until done
    "void",           # 已作废: reported in error
)
# The report's states as people read them (msgids; English in the catalog); every page shows a
# status through this table (geoapp/present.status_label).
STATUS_LABELS = {
    "submitted": N_("已提交"),
    "accepted": N_("已受理"),
    "rejected": N_("不予受理"),
    "merged": N_("已合并"),
    "dispatched": N_("已派遣"),
    "unit_accepted": N_("已签收"),
    "in_progress": N_("处置中"),
    "handled": N_("已办结"),
    "verified": N_("已评价"),
    "closed": N_("已结案"),
    "returned": N_("已回退"),
    "reopened": N_("返工"),
    "ledger": N_("挂账"),
    "void": N_("已作废"),
}
assert set(STATUS_LABELS) == set(REPORT_STATUSES), "every status needs a label"

# What each state means for who acts next: one row per state. Every tab, queue, filter and figure
# that groups states takes its group from here (statuses_of), never from a list typed out again.
STATUS_KIND = {
    "submitted": "to_screen",      # the dispatcher screens it
    "accepted": "to_screen",       # screened, not yet dispatched
    "returned": "to_decide",       # the unit handed it back: the dispatcher decides again
    "dispatched": "with_unit",     # the unit's deadline clock runs in these four
    "unit_accepted": "with_unit",
    "in_progress": "with_unit",
    "reopened": "with_unit",
    "handled": "handled",          # the unit finished; the reporter verifies, the dispatcher closes
    "verified": "finished",
    "closed": "finished",
    "ledger": "ledger",            # a long-term item with a promised date
    "rejected": "withdrawn",       # out of the loop: not a problem, a duplicate, reported in error
    "merged": "withdrawn",
    "void": "withdrawn",
}
assert set(STATUS_KIND) == set(REPORT_STATUSES), "every status needs a kind"


def statuses_of(*kinds: str) -> tuple[str, ...]:
    """The states of these kinds, in the lifecycle's order."""
    unknown = set(kinds) - set(STATUS_KIND.values())
    assert not unknown, f"unknown status kinds {unknown}"
    return tuple(s for s in REPORT_STATUSES if STATUS_KIND[s] in kinds)


# The unit's deadline clock runs in these states (overdue = deadline passed while in one of them);
# a ledger item is late against its promised date instead.
RUNNING_STATUSES = statuses_of("with_unit")
# The unit finished it (whatever the reporter and the dispatcher did next).
HANDLED_STATUSES = statuses_of("handled", "finished")
# Out of the loop without being handled: never handed over in the end, never in the album.
WITHDRAWN_STATUSES = statuses_of("withdrawn")
# Still being worked on: with the unit, or on the ledger.
OPEN_STATUSES = statuses_of("with_unit", "ledger")
# A unit's handler sees a report once it has been dispatched to their unit (lead or cooperating).
DISPATCHED_STATUSES = statuses_of("with_unit", "handled", "finished", "to_decide", "ledger")

# Coordinate systems a client may send a point in: GPS (WGS-84) or the offset datum of Chinese web
# maps and WeChat's wx.getLocation (GCJ-02). Stored reports are always WGS-84.
INPUT_CRS = ("wgs84", "gcj02")
DEFAULT_CRS = "wgs84"

USER_ROLES = ("representative", "dispatcher", "unit_handler", "admin", "leader", "sysadmin", "secadmin", "auditor")
# 等保 2.0's three administrators (三权分立), each with its own duty and nothing else — no report, no
# dispatch page, no map (what each may do: geoapp/core/permissions.py):
# - sysadmin (系统管理员): accounts, units, streets' representatives, the city data;
# - secadmin (安全管理员): the password, lockout and session policy, second factors;
# - auditor (审计管理员): reads and exports the audit trail (/admin/audit, GET /api/v1/audit).
# (`admin` is the install's first account: a dispatcher who may also do the sysadmin's work.)
ADMINISTRATOR_ROLES = ("sysadmin", "secadmin", "auditor")
# Who screens, dispatches and decides (the lifecycle's "dispatcher" party; the console's actions).
DISPATCHER_ROLES = ("dispatcher", "admin")
# Who reads every report and the programme's results (coverage, statistics, the album). A leader
# (领导: the committee's and the government's) reads everything and acts on nothing.
READ_ALL_ROLES = DISPATCHER_ROLES + ("leader",)

# Units: the city's departments, and the construction-management bureaus of the districts.
UNIT_KINDS = ("municipal_department", "construction_management")

# Representatives: ordinary representatives send 2 watermarked photos a month, committee members 4.
REPRESENTATIVE_KINDS = ("representative", "committee_member")
MONTHLY_QUOTAS = {"representative": 2, "committee_member": 4}

# A report's photos: `before` when reported ([2]); `progress` and `after` come with the unit's feedbacks.
PHOTO_KINDS = ("before", "progress", "after")
# How many photos one report may carry, per kind, when sent.
MAX_PHOTOS_PER_REPORT = 3

# Statuses after which a report is no longer an open problem; "is this already reported?" looks
# only at reports not in these.
FINISHED_STATUSES = statuses_of("finished", "withdrawn")
# "Already reported nearby": open reports of the same item within this distance along the same street.
NEARBY_ALONG_M = 20.0

# Verification: two ratings, 1 (very unsatisfied) to 5 (very satisfied); below SATISFIED on either
# reopens the report to the same unit (回头看).
RATINGS = (1, 2, 3, 4, 5)
SATISFIED = 3
