"""Users: their passwords, their sessions' version, and their API keys.

- API keys are shown once, when issued; only their SHA-256 is stored (they are 256-bit random, so a
  fast hash is enough and stays indexable).
- Passwords are stored as Werkzeug hashes (scrypt: deliberately slow, ~80 ms) and must pass
  `check_password_policy`. `authenticate` costs one hash check whether or not the user exists or has
  a password, so the time to refuse does not tell which usernames exist. A new password may not be
  one of the user's last N (the security policy's password_history, domain/security_policy.py):
  the hash it replaces is kept for that.
- `session_version` is carried by every signed-in web session (geoapp/web/auth.py); raising it
  (`end_sessions`: sign-out, any password change) ends all of that user's sessions at once.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ..models import User
from ..translations import N_, Text
from . import security_policy

MIN_PASSWORD_LENGTH = 10

# Guessed first by anyone trying passwords; compared case-insensitively. Short on purpose: it catches the
# obvious choices (including this programme's own demo password), the length rule does the rest.
COMMON_PASSWORDS = frozenset({
    "jinzhou-demo", "jinzhou123", "jinzhou2024", "jinzhou2025", "jinzhou2026", "jinzhou12345",
    "123456789a", "a123456789", "1234567890", "0123456789", "12345678910", "1234567890a",
    "password12", "password123", "password1234", "passw0rd123", "p@ssw0rd123", "p@ssword123",
    "qwertyuiop", "qwerty1234", "qwerty123456", "1qaz2wsx3edc", "1q2w3e4r5t", "qazwsxedc123",
    "zxcvbnm123", "asdfghjkl1", "abcdefghij", "abc1234567", "abcd123456", "aa123456789",
    "admin12345", "admin123456", "administrator", "iloveyou12", "woaini1314", "woaini520520",
    "5201314520", "1314520520", "11223344556", "147258369a", "9876543210", "changeme123",
})


class WeakPassword(ValueError):
    """A password the policy refuses, with the reason said in the reader's language."""

    # code -> the sentence's msgid (English from the catalog, geoapp/translations)
    MESSAGES = {
        "too_short": N_("密码至少需要 {n} 个字符。"),
        "one_character": N_("密码不能由同一个字符重复组成。"),
        "contains_username": N_("密码不能包含用户名。"),
        "common": N_("这个密码太常见，很容易被猜中，请换一个。"),
        "unchanged": N_("新密码不能与当前密码相同。"),
        "reused": N_("新密码不能与最近 {n} 次使用过的密码相同。"),
    }

    def __init__(self, code: str, **params):
        self.code = code
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str | None = None) -> str:
        """The reason in `lang` ("zh" or "en"); by default in the current request's language."""
        return Text(self.MESSAGES[self.code], **self.params).render(lang)


class WrongPassword(ValueError):
    """The current password given to confirm a change is not the user's."""


def check_password_policy(username: str, password: str) -> None:
    """Raise WeakPassword naming the first rule `password` breaks; return None when it passes."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword("too_short", n=MIN_PASSWORD_LENGTH)
    if len(set(password)) == 1:
        raise WeakPassword("one_character")
    name = (username or "").strip().lower()
    if name and name in password.lower():
        raise WeakPassword("contains_username")
    if password.lower() in COMMON_PASSWORDS:
        raise WeakPassword("common")


# An account that may act: not disabled, not past its expiry. Every way in (a password, a session,
# an API key) asks this, in SQL, so a disabled account's open sessions stop at their next request.
USABLE = and_(User.disabled_at.is_(None), or_(User.expires_at.is_(None), User.expires_at > func.now()))


def usable(user: User, now: dt.datetime | None = None) -> bool:
    now = now or dt.datetime.now(dt.timezone.utc)
    return user.disabled_at is None and (user.expires_at is None or user.expires_at > now)


def find_user(session: Session, username: str) -> User | None:
    return session.execute(select(User).where(User.username == (username or "").strip())).scalar_one_or_none()


def _existing(session: Session, username: str) -> User:
    user = find_user(session, username)
    if user is None:
        raise LookupError(f"no user named {username!r}")
    return user


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_api_key(session: Session, username: str) -> str:
    """A fresh key for the user; any earlier key stops working."""
    user = _existing(session, username)
    key = "ga_" + secrets.token_urlsafe(32)
    user.api_key_hash = hash_key(key)
    return key


def user_for_key(session: Session, key: str) -> User | None:
    if not key or len(key) > 200:
        return None
    return session.execute(select(User).where(User.api_key_hash == hash_key(key), USABLE)).scalar_one_or_none()


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, made like real ones, to check against when there is no real one."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if `password` is theirs. Exactly one password hash check in every case: an unknown
    user, or one without a password, is checked against a dummy hash, so it takes as long to refuse
    as a known user with a wrong password."""
    user = find_user(session, username)
    # a disabled or expired account is refused like a wrong password (after the same one hash check)
    real = user is not None and bool(user.password_hash) and usable(user)
    matches = check_password_hash(user.password_hash if real else _dummy_hash(), password or "")
    return user if real and matches else None


def user_for_session(session: Session, user_id: int, session_version: int) -> User | None:
    """The user a web session names, if that session has not been ended since it began."""
    return session.execute(
        select(User).where(User.id == user_id, User.session_version == session_version, USABLE)
    ).scalar_one_or_none()


def end_sessions(session: Session, user_id: int) -> None:
    """Every session this user signed in before now stops working (sign-out on all devices)."""
    # in SQL, so two sign-outs at once both count; a loaded User object is updated to match
    session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))


def _store_password(session: Session, user: User, password: str, *, must_change: bool) -> None:
    security_policy.remember_password(session, user)  # the one replaced joins the history (no reuse)
    user.password_hash = generate_password_hash(password)
    user.must_change_password = must_change
    user.password_changed_at = dt.datetime.now(dt.timezone.utc)
    session.flush()
    end_sessions(session, user.id)


def set_password(session: Session, username: str, password: str, *, must_change: bool = False) -> User:
    """Set a password chosen by an operator (`geoapp users set-password`). It must pass the policy;
    the user's sessions end; with `must_change` the user must choose a new one at next sign-in."""
    user = _existing(session, username)
    check_password_policy(user.username, password)
    _refuse_reuse(session, user, password)
    _store_password(session, user, password, must_change=must_change)
    return user


def _refuse_reuse(session: Session, user: User, password: str, *, current_checked: bool = False) -> None:
    """WeakPassword("reused") when `password` is one of the user's last N (the security policy's N)."""
    policy = security_policy.read(session)
    if security_policy.reused(session, user, password, policy, current_checked=current_checked):
        raise WeakPassword("reused", n=policy.password_history)


def change_password(session: Session, user_id: int, current: str, new: str) -> User:
    """The user's own change: `current` must be their password (WrongPassword), `new` must pass the
    policy and differ from it (WeakPassword). Ends every session of theirs; the caller re-signs the
    current one in with the returned user's new session_version."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise LookupError(f"no user with id {user_id}")
    check_password_policy(user.username, new)  # before the slow hash check: cheap refusals first
    if not user.password_hash or not check_password_hash(user.password_hash, current or ""):
        raise WrongPassword()
    if new == current:
        raise WeakPassword("unchanged")
    _refuse_reuse(session, user, new, current_checked=True)
    _store_password(session, user, new, must_change=False)
    return user


def one_time_password(username: str) -> str:
    """A random password that passes the policy (for an account whose owner must replace it)."""
    while True:
        password = secrets.token_urlsafe(12)  # 16 characters, 96 random bits
        try:
            check_password_policy(username, password)
        except WeakPassword:
            continue
        return password


def create_first_admin(session: Session, username: str = "admin",
                       display_name: str = "系统管理员") -> str | None:
    """Create the first admin with a one-time password and return that password (to be shown once);
    None, changing nothing, when an admin already exists. The password must be changed at first sign-in."""
    if session.execute(select(User.id).where(User.role == "admin").limit(1)).first() is not None:
        return None
    if find_user(session, username) is not None:
        raise ValueError(f"a user named {username!r} exists but is not an admin; choose another username")
    user = User(username=username, display_name=display_name, role="admin")
    session.add(user)
    session.flush()
    password = one_time_password(username)
    _store_password(session, user, password, must_change=True)
    return password
