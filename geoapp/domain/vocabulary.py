"""The closed lists of the domain, each defined once. The models build their CHECK constraints from
these tuples, the loader and the request schema validate against them, and pages read their labels
from the presenter — so adding a status or a CRS is a change here plus a migration, nowhere else."""
from __future__ import annotations

# A report's states. The handling workflow ([3]) adds to this list, with a migration.
REPORT_STATUSES = ("submitted",)

# Coordinate systems a client may send a point in: GPS (WGS-84) or the offset datum of Chinese web
# maps and WeChat's wx.getLocation (GCJ-02). Stored reports are always WGS-84.
INPUT_CRS = ("wgs84", "gcj02")
DEFAULT_CRS = "wgs84"

USER_ROLES = ("representative", "dispatcher", "unit_handler", "admin")

# Units: the city's departments, and the construction-management bureaus of the districts.
UNIT_KINDS = ("municipal_department", "construction_management")

# Representatives: ordinary representatives send 2 watermarked photos a month, committee members 4.
REPRESENTATIVE_KINDS = ("representative", "committee_member")
MONTHLY_QUOTAS = {"representative": 2, "committee_member": 4}

# A report's photos: `before` when reported ([2]); `progress` and `after` come with handling ([3]).
PHOTO_KINDS = ("before", "progress", "after")
# How many photos one report may carry, per kind, when sent.
MAX_PHOTOS_PER_REPORT = 3

# Statuses after which a report is no longer an open problem ([3] adds them to REPORT_STATUSES);
# "is this already reported?" looks only at reports not in these.
FINISHED_STATUSES = ("closed", "rejected", "merged", "void")
# "Already reported nearby": open reports of the same item within this distance along the same street.
NEARBY_ALONG_M = 20.0
