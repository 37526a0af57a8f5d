"""等保 2.0's password and session policy (身份鉴别: 口令复杂度和定期更换, 登录失败处理, 超时自动退出),
set by the security administrator on /admin/security and read from one row (migration 0015).

- `read(session)` is the one way to read it; the web layer keeps the answer for the rest of the
  request (web/auth.current_policy). A database without the row (a half-migrated one) gets DEFAULTS.
- `update_policy(session, actor, **fields)` checks the capability and every range, refuses with a
  BadInput that names the field in the reader's language, and records POLICY_CHANGED with the
  values before and after in the same transaction: the change and its record commit together.
- Password history: a user's replaced password hashes are kept (`remember_password`, called when a
  password is stored), and `reused` tells whether a new password is one of the last N — the current
  one counts as the first of them. At most HISTORY_KEPT hashes are kept per user, so raising N on
  the policy page takes effect at once for what was kept.
- Password age: `password_expired` — set longer ago than password_max_age_days (0: never); sign-in
  then marks the account must_change_password (`require_change_if_expired`), the same path a
  one-time password takes, so every page sends the user to change it.
- Lockout (lockout_failures within lockout_minutes, per username) and the staff idle timeout are
  enforced by web/auth.py, which reads them from here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from ..core.permissions import require
from ..models import PasswordHistory, SecurityPolicy, User
from ..translations import N_, Text
from . import audit
from .errors import BadInput

HISTORY_KEPT = 24  # the policy's largest password_history (the CHECK constraint's bound)


@dataclasses.dataclass(frozen=True)
class Policy:
    password_max_age_days: int = 90             # 0: passwords never expire
    password_history: int = 5                   # the last N passwords (the current one too) not again
    lockout_failures: int = 5                   # failed sign-ins per username within lockout_minutes...
    lockout_minutes: int = 30                   # ...then refused until that window ends
    idle_timeout_minutes: int = 30              # a staff session unused this long ends
    totp_required_for_administrators: bool = True
    updated_at: dt.datetime | None = None
    updated_by: int | None = None

    def settings(self) -> dict[str, Any]:
        """The values the security administrator sets (what the audit row's before/after holds)."""
        return {name: getattr(self, name) for name in FIELDS}


DEFAULTS = Policy()

# field -> (its label's msgid, lowest, highest): the ranges migration 0015's CHECK constraints hold too
RANGES: dict[str, tuple[str, int, int]] = {
    "password_max_age_days": (N_("密码有效期（天）"), 0, 365),
    "password_history": (N_("密码历史（个）"), 0, HISTORY_KEPT),
    "lockout_failures": (N_("登录失败次数上限"), 3, 20),
    "lockout_minutes": (N_("锁定时长（分钟）"), 1, 1440),
    "idle_timeout_minutes": (N_("工作人员空闲超时（分钟）"), 5, 480),
}
SWITCHES: dict[str, str] = {
    "totp_required_for_administrators": N_("三类管理员必须使用动态口令"),
}
FIELDS = tuple(RANGES) + tuple(SWITCHES)

_COLUMNS = FIELDS + ("updated_at", "updated_by")
_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII digits only: "１２" or "1e3" is not a number of days


def read(session: Session) -> Policy:
    """The policy in force. Read as a plain row, not an ORM object: a long-lived session's identity
    map would otherwise keep answering with the values it first saw."""
    table = SecurityPolicy.__table__
    row = session.execute(select(*(table.c[name] for name in _COLUMNS)).where(table.c.id == 1)).one_or_none()
    return Policy(**row._mapping) if row is not None else DEFAULTS


def _bad(field: str, label: str, problem: str, **params) -> BadInput:
    return BadInput(field=field, field_label=Text(label), problem=Text(problem, **params))


def _whole_number(field: str, value: Any) -> int:
    label, low, high = RANGES[field]
    if isinstance(value, bool):  # bool is an int to Python, never a number of days to a person
        value = None
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if _DIGITS.fullmatch(value) else None
    if not isinstance(value, int) or not low <= value <= high:
        raise _bad(field, label, N_("须为 {low} 到 {high} 之间的整数。"), low=low, high=high)
    return value


def _switch(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(field, SWITCHES[field], N_("须为“是”或“否”。"))
    return value


def validate(**fields) -> dict[str, Any]:
    """The given fields, each checked (BadInput naming the first bad one); unknown names refused."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise _bad(unknown[0], N_("安全策略"), N_("没有这一项。"))
    return {name: (_whole_number(name, value) if name in RANGES else _switch(name, value))
            for name, value in fields.items()}


def update_policy(session: Session, actor: audit.Actor, **fields) -> Policy:
    """Change some of the policy's values (the others stay) and record who changed what from what.
    The row is locked while it changes, so two administrators saving at once do not lose either's
    record of the value before."""
    require(actor.role, "security.policy")
    values = validate(**fields)
    table = SecurityPolicy.__table__
    locked = session.execute(select(table.c.id).where(table.c.id == 1).with_for_update()).one_or_none()
    if locked is None:  # the migration made it; recreated with the defaults if someone removed it
        session.execute(insert(table).values(id=1))
    before = read(session)
    session.execute(update(table).where(table.c.id == 1)
                    .values(**values, updated_at=dt.datetime.now(dt.timezone.utc), updated_by=actor.user_id))
    after = read(session)
    changed = sorted(name for name in FIELDS if getattr(before, name) != getattr(after, name))
    audit.record(session, actor, audit.POLICY_CHANGED, object_type="security_policy", object_id=1,
                 details={"before": before.settings(), "after": after.settings(), "changed": changed})
    return after


# --- password history and age ---------------------------------------------------------------------

def reused(session: Session, user: User, password: str, policy: Policy, *, current_checked: bool = False) -> bool:
    """True when `password` is one of the user's last policy.password_history passwords, the current
    one included (`current_checked`: the caller already compared it with the current one)."""
    n = policy.password_history
    if n <= 0 or not password:
        return False
    hashes = [user.password_hash] if user.password_hash and not current_checked else []
    earlier = n - 1 if user.password_hash else n  # the current password is one of the N
    if earlier > 0:
        hashes += session.execute(
            select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user.id)
            .order_by(PasswordHistory.id.desc()).limit(earlier)).scalars().all()
    # every hash is checked, even after a match: the time taken does not tell which one matched
    return any([check_password_hash(h, password) for h in hashes])


def remember_password(session: Session, user: User, now: dt.datetime | None = None) -> None:
    """Keep the user's current password hash in the history before it is replaced."""
    if not user.password_hash:
        return
    now = now or dt.datetime.now(dt.timezone.utc)
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash,
                                set_at=user.password_changed_at or user.created_at or now))
    session.flush()
    kept = (select(PasswordHistory.id).where(PasswordHistory.user_id == user.id)
            .order_by(PasswordHistory.id.desc()).limit(HISTORY_KEPT))
    session.execute(delete(PasswordHistory).where(PasswordHistory.user_id == user.id,
                                                  PasswordHistory.id.not_in(kept.scalar_subquery())))


def password_expired(user: User, policy: Policy, now: dt.datetime | None = None) -> bool:
    """The password was set longer ago than the policy allows (an account never given one has none
    to expire; one set before the date was recorded counts from the account's creation)."""
    if policy.password_max_age_days <= 0 or not user.password_hash:
        return False
    since = user.password_changed_at or user.created_at
    now = now or dt.datetime.now(dt.timezone.utc)
    return since is not None and now - since > dt.timedelta(days=policy.password_max_age_days)


def require_change_if_expired(session: Session, user: User, policy: Policy,
                              now: dt.datetime | None = None) -> bool:
    """At sign-in: an expired password must be changed before anything else (must_change_password,
    as for a one-time password). True when it was marked now."""
    if user.must_change_password or not password_expired(user, policy, now):
        return False
    session.execute(update(User).where(User.id == user.id).values(must_change_password=True)
                    .execution_options(synchronize_session=False))
    return True
