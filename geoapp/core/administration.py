"""The system administrator's work (系统管理员): accounts and units. One function per act, called by the
/admin pages (geoapp/web/admin.py) and the CLI (`geoapp users …`, `geoapp units …`) alike.

Each function takes the caller's Session (the door opens the one transaction: `with db.transaction()`)
and the Actor; it checks the capability (permissions.MAY), refuses bad input with a DomainError (a
4xx that says why, in the reader's language), changes the rows and records the audit row in that
same transaction: the change and its record commit together or not at all.

Nothing here deletes an account: a person who leaves is disabled (or expires on a date), so their
reports keep their reporter and the trail keeps its actor.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain import audit
from ..domain.accounts import end_sessions, find_user, hash_key, one_time_password, _store_password
from ..domain.errors import BadInput, DomainError
from ..domain.vocabulary import USER_ROLES
from ..models import Representative, Unit, User
from ..translations import N_, Text
from .permissions import require

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
ROLE_LABELS = {
    "representative": N_("人大代表"), "dispatcher": N_("调度员"), "unit_handler": N_("单位经办人"),
    "admin": N_("管理员（调度）"), "leader": N_("领导"), "sysadmin": N_("系统管理员"),
    "secadmin": N_("安全管理员"), "auditor": N_("审计管理员"),
}


class AdminRefused(DomainError):
    """An administrative act the rules do not allow (409: the request was understood, the state refuses it)."""
    status = 409
    code = "admin_refused"
    text = N_("{reason}")


def _bad(field: str, label: str, problem: str, **params) -> BadInput:
    return BadInput(field=field, field_label=Text(label), problem=Text(problem, **params))


def _user(session: Session, username: str, *, lock: bool = True) -> User:
    query = select(User).where(User.username == (username or "").strip())
    user = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if user is None:
        raise _bad("username", N_("用户名"), N_("没有名为“{name}”的账号。"), name=str(username)[:64])
    return user


def _unit(session: Session, code: str | None, *, lock: bool = False) -> Unit:
    query = select(Unit).where(Unit.code == (code or "").strip())
    unit = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if unit is None:
        raise _bad("unit", N_("单位"), N_("未知的单位编码“{code}”。"), code=str(code)[:32])
    return unit


def _representative(session: Session, code: str | None, take_over: bool = False) -> Representative:
    rep = session.execute(select(Representative).where(Representative.code == (code or "").strip())
                          ).scalar_one_or_none()
    if rep is None:
        raise _bad("representative", N_("代表"), N_("未知的代表编码“{code}”。"), code=str(code)[:32])
    if take_over:  # a handover: the seat passes on (hand_over_street ends the holders' accounts)
        return rep
    holder = session.execute(select(User.username).where(User.representative_id == rep.id)
                             .order_by(User.id).limit(1)).scalar_one_or_none()
    return rep if holder is None else _taken(rep, holder)


def _taken(rep: Representative, holder: str):
    raise AdminRefused(reason=Text(N_("代表“{code}”已有账号“{holder}”；先改那个账号的角色或停用它。"),
                                   code=rep.code, holder=holder))


def _not_self(actor: audit.Actor, user: User, what: str) -> None:
    # an administrator cannot widen or end their own access: someone else must do it (and be audited)
    if actor.user_id is not None and actor.user_id == user.id:
        raise AdminRefused(reason=Text(what))


@dataclass(frozen=True)
class Placement:
    """What a role needs besides itself: a unit (handler) or a representative record (representative)."""
    unit_code: str | None = None
    representative_code: str | None = None
    take_over: bool = False   # the representative record may be held already (a handover)


def _place(session: Session, user: User, role: str, placement: Placement) -> dict:
    if role not in USER_ROLES:
        raise _bad("role", N_("角色"), N_("未知的角色“{role}”。"), role=str(role)[:32])
    unit = _unit(session, placement.unit_code) if role == "unit_handler" else None
    rep = None
    if role == "representative":
        rep = user.representative if (user.representative is not None and not placement.representative_code) \
            else _representative(session, placement.representative_code, placement.take_over)
    user.role = role
    user.unit_id = unit.id if unit else None
    user.representative_id = rep.id if rep else None
    return {"role": role, "unit": unit.code if unit else None, "representative": rep.code if rep else None}


def create_user(session: Session, actor: audit.Actor, username: str, display_name: str, role: str,
                placement: Placement = Placement(), email: str | None = None) -> tuple[User, str]:
    """A new account with a one-time password (shown once; to be changed at first sign-in)."""
    require(actor.role, "users.manage")
    username = (username or "").strip().lower()
    if not (2 <= len(username) <= 64) or not set(username) <= USERNAME_CHARS:
        raise _bad("username", N_("用户名"), N_("用户名须为 2–64 个小写字母、数字或 . _ -。"))
    if find_user(session, username) is not None:
        raise AdminRefused(reason=Text(N_("已有名为“{name}”的账号。"), name=username))
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 100:
        raise _bad("display_name", N_("姓名"), N_("必填，至多 100 个字。"))
    user = User(username=username, display_name=display_name, role="dispatcher", email=_email(email))
    session.add(user)
    placed = _place(session, user, role, placement)
    session.flush()
    password = one_time_password(username)
    _store_password(session, user, password, must_change=True)
    audit.record(session, actor, audit.USER_CREATED, object_type="user", object_id=username,
                 details={**placed, "display_name": display_name})
    return user, password


def _email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 200 or value.count("@") != 1 or " " in value or value.startswith("@") or value.endswith("@"):
        raise _bad("email", N_("电子邮箱"), N_("“{value}”不是电子邮箱地址。"), value=value[:200])
    return value


def set_disabled(session: Session, actor: audit.Actor, username: str, disabled: bool) -> User:
    """Disable (its sessions and API key stop at their next request) or enable an account."""
    require(actor.role, "users.manage")
    user = _user(session, username)
    if disabled:
        _not_self(actor, user, N_("不能停用自己的账号。"))
    if (user.disabled_at is not None) == disabled:
        return user  # already so: a repeated click changes nothing and records nothing
    user.disabled_at = dt.datetime.now(dt.timezone.utc) if disabled else None
    if disabled:
        end_sessions(session, user.id)
    audit.record(session, actor, audit.USER_DISABLED if disabled else audit.USER_ENABLED,
                 object_type="user", object_id=user.username)
    return user


def set_expiry(session: Session, actor: audit.Actor, username: str, day: dt.date | None, tz: str) -> User:
    """The account stops working at the start of `day` in the city's zone (None: never)."""
    require(actor.role, "users.manage")
    user = _user(session, username)
    at = dt.datetime.combine(day, dt.time(), ZoneInfo(tz)) if day else None
    if at is not None and at <= dt.datetime.now(dt.timezone.utc):
        _not_self(actor, user, N_("不能让自己的账号立即过期。"))
    before = user.expires_at
    user.expires_at = at
    audit.record(session, actor, audit.USER_EXPIRY_SET, object_type="user", object_id=user.username,
                 details={"expires_on": day.isoformat() if day else None,
                          "before": before.isoformat() if before else None})
    return user


def reset_password(session: Session, actor: audit.Actor, username: str) -> str:
    """A one-time password for the account (shown once to the administrator, who hands it over);
    the user must choose their own at next sign-in; their sessions end."""
    require(actor.role, "users.manage")
    user = _user(session, username)
    _not_self(actor, user, N_("自己的密码请在“改密码”中修改。"))
    password = one_time_password(user.username)
    _store_password(session, user, password, must_change=True)
    audit.record(session, actor, audit.PASSWORD_RESET, object_type="user", object_id=user.username)
    return password


def change_role(session: Session, actor: audit.Actor, username: str, role: str,
                placement: Placement = Placement()) -> User:
    """A new role (with the unit or representative record it needs); the user's sessions end, so no
    page keeps acting with the old role."""
    require(actor.role, "users.manage")
    user = _user(session, username)
    _not_self(actor, user, N_("不能修改自己的角色。"))
    before = {"role": user.role, "unit": user.unit.code if user.unit else None,
              "representative": user.representative.code if user.representative else None}
    placed = _place(session, user, role, placement)
    if placed == before:
        return user
    session.flush()
    end_sessions(session, user.id)
    event = audit.ROLE_CHANGED if placed["role"] != before["role"] else audit.ASSIGNMENT_CHANGED
    audit.record(session, actor, event, object_type="user", object_id=user.username,
                 details={"before": before, "after": placed})
    return user


def move_handler(session: Session, actor: audit.Actor, username: str, unit_code: str) -> User:
    """A unit's handler moves to another unit: from now on they see and act on that unit's reports."""
    user = _user(session, username, lock=False)
    if user.role != "unit_handler":
        raise AdminRefused(reason=Text(N_("“{name}”不是单位经办人。"), name=user.username))
    return change_role(session, actor, username, "unit_handler", Placement(unit_code=unit_code))


def issue_api_key(session: Session, actor: audit.Actor, username: str) -> str:
    """A new API key for the account (shown once); the old one stops working."""
    import secrets

    require(actor.role, "users.manage")
    user = _user(session, username)
    key = "ga_" + secrets.token_urlsafe(32)
    user.api_key_hash = hash_key(key)
    audit.record(session, actor, audit.API_KEY_ISSUED, object_type="user", object_id=user.username)
    return key


def revoke_api_key(session: Session, actor: audit.Actor, username: str) -> User:
    require(actor.role, "users.manage")
    user = _user(session, username)
    if user.api_key_hash is None:
        return user
    user.api_key_hash = None
    audit.record(session, actor, audit.API_KEY_REVOKED, object_type="user", object_id=user.username)
    return user


# --- a street's representative, handed over on a date ------------------------------------------

@dataclass(frozen=True)
class Handover:
    street_code: str
    representative_code: str
    on: dt.date
    to_username: str
    from_usernames: tuple[str, ...]
    one_time_password: str | None   # when the new holder's account was made by the handover


def holders(session: Session, representative_id: int) -> list[User]:
    """The accounts that hold a seat now (usable: not disabled, not expired)."""
    from ..domain.accounts import USABLE

    return list(session.execute(select(User).where(User.representative_id == representative_id, USABLE)
                                .order_by(User.id)).scalars())


def hand_over_street(session: Session, actor: audit.Actor, street_code: str, to_username: str, on: dt.date,
                     tz: str, *, new_display_name: str | None = None) -> Handover:
    """From the start of `on` (the city's zone) the street's representative is `to_username` (an
    existing account without a street, or a new one when `new_display_name` is given). The previous
    holders' accounts expire then; their reports keep their reporter and keep counting for the street
    (coverage and quotas count every account that held the seat). Audited; one row per handover."""
    from ..models import Street, StreetHandover

    require(actor.role, "streets.hand_over")
    street = session.execute(select(Street).where(Street.code == (street_code or "").strip())).scalar_one_or_none()
    if street is None or street.representative is None:
        raise _bad("street", N_("街路"), N_("未知的街路编码“{code}”。"), code=str(street_code)[:32])
    seat = street.representative
    session.execute(select(Representative.id).where(Representative.id == seat.id).with_for_update())
    today = dt.datetime.now(ZoneInfo(tz)).date()
    if on < today - dt.timedelta(days=31):
        raise _bad("on", N_("交接日期"), N_("交接日期不能早于一个月前。"))
    previous = [u for u in holders(session, seat.id)]
    password = None
    to = find_user(session, (to_username or "").strip().lower())
    if to is None:
        if not new_display_name:
            raise _bad("to", N_("接任者"), N_("没有名为“{name}”的账号；要新建账号请填写姓名。"), name=str(to_username)[:64])
        to, password = create_user(session, actor, to_username, new_display_name, "representative",
                                   Placement(representative_code=seat.code, take_over=True))
    elif to.role in ("sysadmin", "secadmin", "auditor", "admin"):
        raise AdminRefused(reason=Text(N_("管理员账号不能接任街路代表。")))
    elif to.representative_id is not None and to.representative_id != seat.id and usable_account(to):
        raise AdminRefused(reason=Text(N_("“{name}”已是另一条街路的代表。"), name=to.username))
    if to in previous:
        raise AdminRefused(reason=Text(N_("“{name}”已是这条街路的代表。"), name=to.username))
    to.role, to.unit_id, to.representative_id = "representative", None, seat.id
    to.disabled_at = None
    if to.expires_at is not None and to.expires_at <= dt.datetime.combine(on, dt.time(), ZoneInfo(tz)):
        to.expires_at = None
    ends = dt.datetime.combine(on, dt.time(), ZoneInfo(tz))
    for old in previous:
        if old.expires_at is None or old.expires_at > ends:
            old.expires_at = ends
        if ends <= dt.datetime.now(dt.timezone.utc):
            end_sessions(session, old.id)
    session.flush()
    end_sessions(session, to.id)  # their pages start again with the street
    for old in previous or [None]:
        session.add(StreetHandover(street_id=street.id, representative_id=seat.id,
                                   from_user_id=old.id if old else None, to_user_id=to.id, on_date=on,
                                   by_user_id=actor.user_id, by=actor.username or ""))
    handover = Handover(street.code, seat.code, on, to.username, tuple(u.username for u in previous), password)
    audit.record(session, actor, audit.STREET_HANDED_OVER, object_type="street", object_id=street.code,
                 details={"representative": seat.code, "on": on.isoformat(), "to": to.username,
                          "from": list(handover.from_usernames), "new_account": password is not None})
    return handover


def usable_account(user: User) -> bool:
    from ..domain.accounts import usable

    return usable(user)


# --- units ------------------------------------------------------------------------------------

UNIT_FIELDS = ("contact_name", "phone", "email", "active")


def update_unit(session: Session, actor: audit.Actor, code: str, *, contact_name: str | None,
                phone: str | None, email: str | None, active: bool) -> Unit:
    """A unit's contacts, notification e-mail and whether it is offered for dispatch. Its name and
    kind come from the city data (gis_data/units.csv) and change by reloading it."""
    require(actor.role, "units.manage")
    unit = _unit(session, code, lock=True)
    contact_name = (contact_name or "").strip() or None
    phone = (phone or "").strip() or None
    if contact_name and len(contact_name) > 100:
        raise _bad("contact_name", N_("联系人"), N_("至多 100 个字。"))
    if phone and (len(phone) > 40 or not set(phone) <= set("0123456789+-() 转")):
        raise _bad("phone", N_("电话"), N_("只能包含数字、+、-、括号和空格。"))
    after = {"contact_name": contact_name, "phone": phone, "email": _email(email), "active": bool(active)}
    before = {name: getattr(unit, name) for name in UNIT_FIELDS}
    if after == before:
        return unit
    for name, value in after.items():
        setattr(unit, name, value)
    audit.record(session, actor, audit.UNIT_CHANGED, object_type="unit", object_id=unit.code,
                 details={"before": before, "after": after})
    return unit
