"""Read audit (等保 2.0: staff reading the people's reports is an important action): one audit row,
written independently of the request (a read has no transaction to join), when staff open a report
or a list of reports — the console's and the unit's pages and the reports API. A representative
reading their own street's reports is not recorded (it is their own work, many times a day); the
map's cells and tiles are not either (counts, not reports)."""
from __future__ import annotations

from flask import request
from flask_login import current_user

from ..domain import audit
from .auth import audit_now

NOT_STAFF = ("representative",)


def staff_read(object_type: str, object_id=None, **details) -> None:
    if not current_user.is_authenticated or current_user.role in NOT_STAFF:
        return
    audit_now(audit.REPORT_VIEW, object_type=object_type, object_id=object_id,
              details={"path": request.path[:200], **details})


def staff_list_read(total: int, shown: int) -> None:
    """A list: what it was filtered by (the query string) and how many it matched and showed."""
    staff_read("report_list", filters={k: v[:200] for k, v in request.args.items()}, total=total, shown=shown)
