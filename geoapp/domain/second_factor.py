"""The second factor (双因素认证): a TOTP authenticator app (RFC 6238: 6 digits, 30-second steps, SHA-1,
what every authenticator app — Google/Microsoft Authenticator, 腾讯身份验证器 — understands).

- Enrolling: `start_enrolment` gives the user a secret (kept in users.totp_secret, not yet in use);
  the page shows it and its QR code; `confirm_enrolment` with one right code puts it in use
  (totp_enabled_at). Until then sign-in does not ask for codes, so a half-done enrolment locks no
  one out. `turn_off` (password and a code, checked by the page) removes it.
- Signing in: `accept_code` takes a code of the step before, the step of, or the step after the
  server's time (a phone's clock a little off), and only of a step later than the last code
  accepted (users.totp_last_step), written in the same statement that checks it: a code seen over
  someone's shoulder, or sent twice, is refused within its 30 seconds too, whichever request comes first.
- Who must have one: `must_enrol` — the three administrators (sysadmin, secadmin, auditor) when
  the policy says so, outside the demo; everyone else may.
"""
from __future__ import annotations

import datetime as dt
import hmac
import re

import pyotp
import segno
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import User
from ..translations import N_
from .errors import DomainError
from .vocabulary import ADMINISTRATOR_ROLES

STEP_S = 30
DRIFT_STEPS = 1  # a code of the step before or after is accepted: phones' clocks drift
_CODE = re.compile(r"[0-9]{6}")


class CodeRefused(DomainError):
    """A code that does not prove the second factor (401 on sign-in, 400 on the account page)."""
    status = 401
    code = "second_factor_wrong"
    text = N_("动态口令不正确，请查看验证器应用中当前的 6 位数字后重新输入。")


class CodeReused(CodeRefused):
    code = "second_factor_reused"
    text = N_("这个动态口令已经用过，请等验证器应用显示下一个口令后再输入。")


class SecondFactorRequired(DomainError):
    status = 409
    code = "second_factor_required"
    text = N_("安全策略要求管理员账号使用动态口令，不能关闭。")


def enabled(user: User) -> bool:
    return user.totp_enabled_at is not None and bool(user.totp_secret)


def must_enrol(user: User, policy, *, demo: bool) -> bool:
    """An administrator without a second factor while the policy requires one: sent to enrol before
    any other page. In the demo it is offered instead (the published demo accounts would otherwise
    each need a phone before anyone could look around)."""
    return (user.role in ADMINISTRATOR_ROLES and not enabled(user) and policy.totp_required_for_administrators
            and not demo)


def may_turn_off(user: User, policy, *, demo: bool) -> bool:
    return not (user.role in ADMINISTRATOR_ROLES and policy.totp_required_for_administrators and not demo)


def normalise(code: str | None) -> str:
    """What was typed, as the six digits an app shows ("123 456" and "123456 " are the same code)."""
    return re.sub(r"[\s-]", "", code or "")[:16]


def matching_step(secret: str, code: str | None, now: dt.datetime) -> int | None:
    """The time step whose code `code` is (within DRIFT_STEPS of now), or None."""
    code = normalise(code)
    if not secret or not _CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        # compared in constant time, and every step is compared: the time taken tells nothing
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
            found = current + offset
    return found


def _locked(session: Session, user_id: int) -> User:
    user = session.execute(select(User).where(User.id == user_id).with_for_update()).scalar_one_or_none()
    if user is None:
        raise LookupError(f"no user with id {user_id}")
    return user


def start_enrolment(session: Session, user_id: int) -> User:
    """The user's pending secret, made now if they have none (a page opened again shows the same
    one, so a QR code already scanned stays right). A second factor in use is left alone."""
    user = _locked(session, user_id)
    if not enabled(user) and not user.totp_secret:
        user.totp_secret = pyotp.random_base32()  # 32 base32 characters: 160 random bits, as RFC 4226 advises
    return user


def confirm_enrolment(session: Session, user_id: int, code: str | None, now: dt.datetime | None = None) -> User:
    """Put the pending secret in use once `code` shows the app holds it (CodeRefused otherwise)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    user = _locked(session, user_id)
    if enabled(user):
        return user
    step = matching_step(user.totp_secret or "", code, now)
    if step is None:
        raise CodeRefused()
    user.totp_enabled_at, user.totp_last_step = now, step  # this code cannot sign in a second time
    return user


def accept_code(session: Session, user_id: int, code: str | None, now: dt.datetime | None = None) -> int:
    """Accept `code` as the user's second factor now, or raise CodeRefused / CodeReused. The step is
    recorded in the same UPDATE that checks it is new, so of two requests with one code only the
    first gets through."""
    now = now or dt.datetime.now(dt.timezone.utc)
    secret, last = session.execute(select(User.totp_secret, User.totp_last_step)
                                   .where(User.id == user_id, User.totp_enabled_at.is_not(None))).one_or_none() \
        or (None, None)
    step = matching_step(secret or "", code, now)
    if step is None:
        raise CodeRefused()
    moved = session.execute(
        update(User).where(User.id == user_id, User.totp_enabled_at.is_not(None),
                           (User.totp_last_step.is_(None)) | (User.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False)).rowcount
    if not moved:
        raise CodeReused()
    return step


def turn_off(session: Session, user_id: int, code: str | None, policy, *, demo: bool,
             now: dt.datetime | None = None) -> User:
    """Remove the user's second factor, with a fresh code of it (the caller checked the password).
    Refused for an administrator while the policy requires it."""
    user = _locked(session, user_id)
    if not may_turn_off(user, policy, demo=demo):
        raise SecondFactorRequired()
    if enabled(user):
        accept_code(session, user_id, code, now)
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    return user


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    """The otpauth:// link an authenticator app reads from the QR code (or from a tap on the phone)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """The QR code as inline SVG markup (no script, no inline style: the CSP allows it as it is),
    white around it so a phone's camera finds it on a dark screen too."""
    return segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff",
                                                 svgclass="qr-code", title=title)


def grouped(secret: str) -> str:
    """The secret in groups of four, as typed into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
