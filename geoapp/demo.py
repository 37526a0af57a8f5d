"""Demo data: the users rep01…rep29, dispatcher and admin, and a few hundred plausible reports.

Only with GEOAPP_DEMO=1 (the default, for a first run; Settings.demo). The demo password is published
(README), so it is given only to the demo accounts this module creates itself, never to an account
that exists already. A real deployment sets GEOAPP_DEMO=0 and creates its first admin with
`geoapp users init-admin` (a one-time password that must be changed at first sign-in).

Demo reports go through the real intake path (submit_report), so they are snapped and dispatched
exactly as a phone's would be; only their timestamps are spread over the past months.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .config import Settings
from .domain.intake import IntakeRules, Reporter, Submission, submit_report
from .models import Category, Representative, User

DEMO_NAMESPACE = uuid.UUID("6c0e3b9e-5d1a-4c43-9f0e-2a7d0c0d2024")
# Demo accounts only: a real deployment creates its users and sets passwords with `geoapp users`.
DEMO_PASSWORD = "jinzhou-demo"

PHRASES = [
    "{item}，{where}，请尽快处理。",
    "{where}发现{item}，影响行人通行。",
    "{item}（{where}），已持续数日，群众反映较多。",
    "巡查{street}时发现：{item}，位置在{where}。",
    "{where}{item}，存在安全隐患，建议尽快处置。",
]


def _demo_accounts(session: Session) -> list[User]:
    """The demo's accounts, unsaved: one representative per street, a dispatcher and an admin."""
    reps = session.execute(select(Representative).order_by(Representative.code)).scalars().all()
    accounts = [User(username=f"rep{n:02d}", display_name=rep.name, role="representative", representative_id=rep.id)
                for n, rep in enumerate(reps, start=1)]
    accounts += [User(username="dispatcher", display_name="调度员", role="dispatcher"),
                 User(username="admin", display_name="系统管理员", role="admin")]
    return accounts


def _ensure_users(session: Session) -> dict[str, User]:
    """Create the demo accounts that do not exist yet, with the demo password; return all users by name.
    An account that already exists keeps its password (or its lack of one): the demo password is
    never handed to an account this function did not create."""
    users = {u.username: u for u in session.execute(select(User)).scalars()}
    created = [u for u in _demo_accounts(session) if u.username not in users]
    if created:
        demo_hash = generate_password_hash(DEMO_PASSWORD)  # hashing is deliberately slow: once for all
        for user in created:
            user.password_hash = demo_hash
            users[user.username] = user
        session.add_all(created)
    session.flush()
    return users


def users_with_demo_password(session: Session) -> list[str]:
    """Accounts whose password is still the published demo one (all demo accounts share one hash,
    so this costs one check per distinct hash, not one per user)."""
    names = {u.username for u in _demo_accounts(session)}
    by_hash: dict[str, list[str]] = {}
    for user in session.execute(select(User).where(User.username.in_(names))).scalars():
        if user.password_hash:
            by_hash.setdefault(user.password_hash, []).append(user.username)
    return sorted(name for hashed, group in by_hash.items()
                  if check_password_hash(hashed, DEMO_PASSWORD) for name in group)


def load_demo(session: Session, settings: Settings, *, n_reports: int = 300, seed: int = 2024) -> str:
    if not settings.demo:
        message = "GEOAPP_DEMO=0: no demo users or reports created"
        leftover = users_with_demo_password(session)
        if leftover:
            message += ("\nWARNING: these accounts still have the published demo password: "
                        + ", ".join(leftover) + "; give each a new one with `geoapp users set-password NAME`")
        return message
    users = _ensure_users(session)
    already = session.execute(text("SELECT count(*) FROM reports")).scalar_one()
    if already:
        return f"demo users ready; {already} reports already stored, none added"
    rng = random.Random(seed)
    items = session.execute(select(Category).where(Category.level == "item").order_by(Category.code)).scalars().all()
    if not items:
        return "no categories loaded: run `geoapp gis load` first"
    streets = session.execute(text("SELECT id, code, name, from_name, to_name FROM streets ORDER BY code")).all()
    reps = [u for u in users.values() if u.role == "representative"]
    rules = IntakeRules(city_bbox=settings.city_bbox, snap_tolerance_m=settings.snap_tolerance_m,
                        photo_dir=settings.photo_dir, photo_max_bytes=1, photo_max_px=1)
    now = dt.datetime.now(dt.timezone.utc)
    created = 0
    for i in range(n_reports):
        user = rng.choice(reps)
        own = user.representative.street_id
        street = next(s for s in streets if s.id == own) if rng.random() < 0.85 else rng.choice(streets)
        lon, lat = session.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT ST_Transform(ST_Translate(ST_LineInterpolatePoint(ST_GeometryN(geom_m, 1), :f), :dx, :dy),
                                  4326) AS p
              FROM streets WHERE id = :id) q"""),
            {"id": street.id, "f": rng.uniform(0.02, 0.98), "dx": rng.uniform(-12, 12),
             "dy": rng.uniform(-12, 12)}).one()
        item = rng.choice(items)
        where = f"{street.name}{street.from_name}至{street.to_name}段"
        description = rng.choice(PHRASES).format(item=item.name, where=where, street=street.name)
        at = now - dt.timedelta(days=rng.uniform(0, 180), minutes=rng.uniform(0, 600))
        sub = Submission(client_id=uuid.uuid5(DEMO_NAMESPACE, str(i)), lat=lat, lon=lon, crs="wgs84",
                         category=item.code, description=description)
        reporter = Reporter(user_id=user.id, role="representative", street_id=own)
        _report, was_created = submit_report(session, reporter, sub, rules, at=at)
        created += was_created
    return f"demo users ready; {created} demo reports created"
