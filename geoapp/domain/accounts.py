"""Users and their API keys. Keys are shown once, when issued; only their SHA-256 is stored."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import User


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_api_key(session: Session, username: str) -> str:
    """A fresh key for the user; any earlier key stops working."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise LookupError(f"no user named {username!r}")
    key = "ga_" + secrets.token_urlsafe(32)
    user.api_key_hash = hash_key(key)
    return key


def user_for_key(session: Session, key: str) -> User | None:
    if not key or len(key) > 200:
        return None
    return session.execute(select(User).where(User.api_key_hash == hash_key(key))).scalar_one_or_none()


def set_password(session: Session, username: str, password: str) -> None:
    from werkzeug.security import generate_password_hash

    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise LookupError(f"no user named {username!r}")
    user.password_hash = generate_password_hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    from werkzeug.security import check_password_hash

    user = session.execute(select(User).where(User.username == (username or "").strip())).scalar_one_or_none()
    if user is None or not user.password_hash or not check_password_hash(user.password_hash, password or ""):
        return None
    return user
