"""Who may *do* what: one table, as the lifecycle's ACTIONS is one table for a report's steps.

Who may *see* which report stays geoapp/domain/visibility.py; which step of a report's lifecycle a
party may take stays geoapp/domain/lifecycle.ACTIONS. This table holds everything else a door (a
page, the JSON API, the CLI, Open311) asks before it calls the core: "may this role do this?".

等保 2.0 (GB/T 22239-2019) separates three administrators (三权分立): the system administrator
keeps accounts and the city's reference data, the security administrator keeps the password,
lockout and session policy, the audit administrator reads the trail. None of them reads a report,
dispatches or issues an album, and none may erase the trail (nobody may: the app's database role
can only append to it, geoapp/db_roles.py). `admin` — the install's first account — is a dispatcher
who may also keep accounts, so that a fresh install can be set up by one person; a city that keeps
the three apart creates a sysadmin, a secadmin and an auditor and stops using `admin` for accounts.
"""
from __future__ import annotations

from ..domain.errors import DomainError
from ..domain.vocabulary import DISPATCHER_ROLES, READ_ALL_ROLES
from ..translations import N_

# The operator at the server's command line (`geoapp …` as the service's account: audit.Actor.cli()).
# Whoever can run it can read the database's password anyway; the CLI is a door like the pages, so
# its acts go through the same core functions and are audited as "cli:<OS account>".
OPERATOR = "cli"

# capability → the roles that have it. A capability is named for what is done, in the domain's words.
MAY: dict[str, tuple[str, ...]] = {
    # the programme's work (pages and API under /console, /unit, /my, /pin, …)
    "reports.screen_and_dispatch": DISPATCHER_ROLES,
    "reports.read_programme": READ_ALL_ROLES,       # coverage, statistics, exports, the album
    "album.issue": DISPATCHER_ROLES,
    "reports.handle_for_unit": ("unit_handler",),
    "reports.submit": ("representative", "dispatcher", "admin"),
    # the map, the phone's pages, a report's page: the programme's people, not the administrators
    "programme.use": ("representative", "dispatcher", "unit_handler", "admin", "leader"),
    # the system administrator (系统管理员)
    "users.manage": ("sysadmin", "admin", OPERATOR),           # create, disable, expire, reset, role, unit
    "units.manage": ("sysadmin", "admin", OPERATOR),           # names, contacts, e-mail, active
    "streets.hand_over": ("sysadmin", "admin", OPERATOR),      # a street's representative, from a date
    "city_data.reload": ("sysadmin", "admin", OPERATOR),       # gis_data/ with a preview
    # the security administrator (安全管理员)
    "security.policy": ("secadmin", OPERATOR),                # password, lockout, session; second factors
    # the audit administrator (审计管理员)
    "audit.read": ("auditor",),                      # /admin/audit, GET /api/v1/audit, the CSV
}

# roles whose work is administration only: the programme's pages (the map, the console, …) are not theirs
ADMINISTRATORS_ONLY = ("sysadmin", "secadmin", "auditor")


class NotPermitted(DomainError):
    """The actor's role does not have the capability (403)."""
    status = 403
    code = "not_permitted"
    text = N_("您的角色无权执行此操作。")


def may(role: str | None, capability: str) -> bool:
    if capability not in MAY:
        raise KeyError(f"unknown capability {capability!r}: add it to geoapp.core.permissions.MAY")
    return role in MAY[capability]


def roles_with(capability: str) -> tuple[str, ...]:
    if capability not in MAY:
        raise KeyError(f"unknown capability {capability!r}: add it to geoapp.core.permissions.MAY")
    return MAY[capability]


def require(role: str | None, capability: str) -> None:
    if not may(role, capability):
        raise NotPermitted()
