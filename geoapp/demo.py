"""Demo data: the users rep01…rep29, handler01…handler19 (one per unit), dispatcher and admin, and a few
hundred plausible reports spread over the handling lifecycle.

Only with GEOAPP_DEMO=1 (the default, for a first run; Settings.demo). The demo password is published
(README), so it is given only to the demo accounts this module creates itself, never to an account
that exists already. A real deployment sets GEOAPP_DEMO=0 and creates its first admin with
`geoapp users init-admin` (a one-time password that must be changed at first sign-in).

Demo walks (a third of the representatives walk all of their street twice a month, a third about
half of it, the rest little or nothing) go through the real walk path (walks.record_chunk), so
coverage per road (/coverage) shows a believable picture. Demo reports go through the real intake path (submit_report), so they are snapped and dispatched
exactly as a phone's would be; only their timestamps are spread over the past months. Then each goes
through the real lifecycle (domain/lifecycle.perform, at simulated moments): most are dispatched,
accepted and handled with an after photo — some on time, some late — and rated; some are reopened
and handled again, some handed back, put on the ledger, rejected, merged or still waiting, so the
console and the statistics have something true to show.
"""
from __future__ import annotations

import datetime as dt
import random
import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .config import Settings
from .domain.intake import IntakeRules, Reporter, Submission, submit_report
from .models import Category, Representative, Unit, User

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
    """The demo's accounts, unsaved: one representative per street, a handler per unit, a dispatcher,
    an admin, a leader, and 等保's three administrators (sysadmin, secadmin, auditor)."""
    reps = session.execute(select(Representative).order_by(Representative.code)).scalars().all()
    accounts = [User(username=f"rep{n:02d}", display_name=rep.name, role="representative", representative_id=rep.id)
                for n, rep in enumerate(reps, start=1)]
    units = session.execute(select(Unit).order_by(Unit.id)).scalars().all()  # units.csv order
    accounts += [User(username=f"handler{n:02d}", display_name=f"{unit.name}经办人", role="unit_handler",
                      unit_id=unit.id) for n, unit in enumerate(units, start=1)]
    accounts += [User(username="dispatcher", display_name="调度员", role="dispatcher"),
                 User(username="admin", display_name="系统管理员", role="admin"),
                 User(username="leader", display_name="人大环资城建委领导", role="leader"),
                 User(username="sysadmin", display_name="系统管理员（账号）", role="sysadmin"),
                 User(username="secadmin", display_name="安全管理员", role="secadmin"),
                 User(username="auditor", display_name="审计管理员", role="auditor")]
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


def _demo_policy(session: Session) -> None:
    """Passwords do not expire in the demo (its accounts share the published password, and a demo
    left running must not send everyone to "change password" after 90 days). Only while no one has
    saved the policy: a security administrator's own choice is never overwritten by a later load."""
    from .domain import audit, security_policy

    policy = security_policy.read(session)
    if policy.updated_by is None and policy.password_max_age_days != 0:
        security_policy.update_policy(session, audit.Actor(username="demo", role="cli"), password_max_age_days=0)


def load_demo(session: Session, settings: Settings, *, n_reports: int = 300, seed: int = 2024) -> str:
    if not settings.demo:
        message = "GEOAPP_DEMO=0: no demo users or reports created"
        leftover = users_with_demo_password(session)
        if leftover:
            message += ("\nWARNING: these accounts still have the published demo password: "
                        + ", ".join(leftover) + "; give each a new one with `geoapp users set-password NAME`")
        return message
    users = _ensure_users(session)
    _demo_policy(session)
    walked = _demo_walks(session, settings, users, random.Random(seed + 1))
    already = session.execute(text("SELECT count(*) FROM reports")).scalar_one()
    if already:
        return f"demo users ready; {walked}; {already} reports already stored, none added"
    rng = random.Random(seed)
    items = session.execute(select(Category).where(Category.level == "item").order_by(Category.code)).scalars().all()
    if not items:
        return "no categories loaded: run `geoapp gis load` first"
    streets = session.execute(text("SELECT id, code, name, from_name, to_name FROM streets ORDER BY code")).all()
    reps = [u for u in users.values() if u.role == "representative"]
    # every report comes with a photo, through the real pipeline (watermarked), so the album and the
    # quotas have something true to show (a small picture: about 50 ms each)
    rules = IntakeRules.from_settings(settings)
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
        photos = [_before_photo(rng)]
        sub = Submission(client_id=uuid.uuid5(DEMO_NAMESPACE, str(i)), lat=lat, lon=lon, crs="wgs84",
                         category=item.code, description=description, photos=photos)
        reporter = Reporter(user_id=user.id, role="representative", street_id=own)
        _report, was_created = submit_report(session, reporter, sub, rules, at=at)
        created += was_created
    outcomes = _spread_over_lifecycle(session, settings, users, rng, now)
    from .web.albums import issue_demo_album  # renders the PDF with the app's templates
    album = issue_demo_album(session, now)     # 第1期: the two months before last
    issued = f"; album 第{album['number']}期 issued ({len(album['entries'])} problems)" if album else ""
    return (f"demo users ready; {walked}; {created} demo reports created; "
            + ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())) + issued)


# How the demo's representatives walk their streets (coverage per road has something true to show):
# a third walk all of it, twice a month; a third walk about half of it (a stretch that moves a little
# from month to month), once a month; the rest have not walked it for months, or never.
WALK_MONTHS = 4
WALK_STEP_M, WALK_STEP_S = 7.0, 5.0     # a point every 5 s at a walker's pace


def _demo_walks(session: Session, settings: Settings, users: dict[str, User], rng: random.Random) -> str:
    """The demo's walks, sent through the real path (walks.record_chunk: cleaning, matching to the
    streets, walk_intervals), at moments over the past months. Once: none are added when walks exist."""
    from .domain.walks import Chunk, Point, Walker, WalkRules, record_chunk

    if session.execute(text("SELECT count(*) FROM walks")).scalar_one():
        return "demo walks already stored, none added"
    rules = WalkRules.from_settings(settings)
    zone = ZoneInfo(settings.display_tz)
    now = dt.datetime.now(zone)
    reps = sorted((u for u in users.values() if u.role == "representative"), key=lambda u: u.username)
    month_starts = [now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)]
    for _ in range(WALK_MONTHS - 1):
        month_starts.insert(0, (month_starts[0] - dt.timedelta(days=1)).replace(day=1))
    plans = []   # (user, fraction from, fraction to, local start)
    for n, user in enumerate(reps):
        kind = ("full", "half", "none")[n % 3]
        for m, first in enumerate(month_starts):
            if kind == "full":
                spans = [(0.0, 1.0), (1.0, 0.0)]
            elif kind == "half":
                a = rng.uniform(0.0, 0.15) + 0.05 * (m % 2)
                spans = [(a, a + 0.5)]
            else:
                spans = [(0.2, 0.45)] if m == 0 and n % 2 == 0 else []
            for f0, f1 in spans:
                latest = min(now - dt.timedelta(hours=2), (first + dt.timedelta(days=32)).replace(day=1))
                window_h = max((latest - first).total_seconds() / 3600 - 10, 1)
                start = first + dt.timedelta(hours=rng.uniform(0, window_h))
                start = start.replace(hour=rng.randint(8, 16))
                if start < now - dt.timedelta(hours=1):
                    plans.append((user, f0, f1, start))
    chunks = 0
    for k, (user, f0, f1, start) in enumerate(plans):
        rep = user.representative
        coords = session.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (
              SELECT ST_Transform(ST_Translate(ST_LineInterpolatePoint(line, :f0 + (:f1 - :f0) * g / n),
                                               (random() - 0.5) * 8, (random() - 0.5) * 8), 4326) AS p, g
              FROM (SELECT ST_GeometryN(geom_m, 1) AS line,
                           GREATEST(ceil(abs(:f1 - :f0) * length_m / :step)::int, 1) AS n
                    FROM streets WHERE id = :street) s, generate_series(0, n) g) q ORDER BY g"""),
            {"street": rep.street_id, "f0": f0, "f1": f1, "step": WALK_STEP_M}).all()
        points = tuple(Point(lon, lat, (start + dt.timedelta(seconds=WALK_STEP_S * i)).astimezone(dt.timezone.utc),
                             rng.uniform(4, 12)) for i, (lon, lat) in enumerate(coords))
        walk_id = uuid.uuid5(DEMO_NAMESPACE, f"walk-{user.username}-{k}")
        for c in range(0, len(points), 1000):   # the phone sends a long walk in pieces
            piece = points[max(c - 1, 0):c + 1000]
            if len(piece) >= 2:
                record_chunk(session, Walker(user.id, rep.id), Chunk(walk_id, c // 1000, "wgs84", piece), rules)
                chunks += 1
    return f"{len(plans)} demo walks ({chunks} chunks)"


def _picture(rng: random.Random, ground: tuple[int, int, int], tones: tuple[int, int], shapes: int) -> bytes:
    """A plain camera-sized picture of blocks on a ground (the demo has no real photos)."""
    import io

    from PIL import Image, ImageDraw
    image = Image.new("RGB", (960, 720), ground)
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        x, y = rng.randrange(0, 900), rng.randrange(0, 660)
        draw.rectangle((x, y, x + rng.randrange(40, 200), y + rng.randrange(20, 120)),
                       fill=tuple(rng.randrange(*tones) for _ in range(3)))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _before_photo(rng: random.Random) -> bytes:
    """A darker, busier 'before' picture for a demo report."""
    return _picture(rng, (96, 92, 84), (30, 150), 24)


def _after_photo(rng: random.Random) -> bytes:
    """A plain 'after' picture for the demo's handled reports (a real unit sends its own photo)."""
    return _picture(rng, (150, 160, 150), (90, 220), 12)


def _spread_over_lifecycle(session: Session, settings: Settings, users: dict[str, User], rng: random.Random,
                           now: dt.datetime) -> dict[str, int]:
    """Take each demo report through the lifecycle as the real users would, at plausible moments."""
    from .domain import lifecycle
    from .domain.lifecycle import ActionFields
    from .domain.reports import get_report
    from .domain.visibility import Viewer

    rules = lifecycle.rules_from_settings(settings)
    dispatcher = Viewer.of(users["dispatcher"])
    handler_of = {u.unit_id: Viewer.of(u) for u in users.values() if u.role == "unit_handler"}
    photo = _after_photo(rng)
    unit_codes = [c for (c,) in session.execute(text("SELECT code FROM units ORDER BY id"))]
    reports = session.execute(text("SELECT id, reporter_id, street_id, category_id, created_at FROM reports "
                                   "ORDER BY created_at")).all()
    viewers = {u.id: Viewer.of(u) for u in users.values()}
    first_on = {}  # (street, item) -> an earlier report, for merging duplicates
    hour = dt.timedelta(hours=1)

    def act(viewer, rec, action, at, **fields):
        at = min(at, now - dt.timedelta(minutes=1))
        return lifecycle.perform(session, viewer, rec["id"], action, ActionFields(version=rec["version"], **fields),
                                 rules, now=at)

    for row in reports:
        rec = get_report(session, row.id)
        age_days = (now - row.created_at).total_seconds() / 86400
        roll = rng.random()
        t = row.created_at + dt.timedelta(hours=rng.uniform(1, 20))
        key = (row.street_id, row.category_id)
        if age_days < 5 and roll < 0.7:
            continue                                   # still to be screened
        if roll < 0.03:
            act(dispatcher, rec, "reject", t, reason="不属于“随手拍”受理范围（小区内部设施）。")
            continue
        if roll < 0.05:
            act(dispatcher, rec, "void", t, reason="重复提交，内容有误。")
            continue
        if roll < 0.10 and key in first_on:
            act(dispatcher, rec, "merge", t, into=first_on[key])
            continue
        first_on.setdefault(key, row.id)
        if roll < 0.13 and age_days < 10:
            act(dispatcher, rec, "accept", t)
            continue
        # recent reports are still under way: some stop at each stage (several of them now overdue)
        stop_at = rng.choice(("dispatched", "unit_accepted", "in_progress", "handled")) \
            if age_days < 30 and rng.random() < 0.6 else None
        rec = act(dispatcher, rec, "dispatch", t, unit=rec["unit_code"])
        if rng.random() < 0.3:
            rec = act(dispatcher, rec, "album", t + dt.timedelta(minutes=5), flag=True)
        handler = handler_of[rec["unit_id"]]
        span = rec["deadline_at"] - t
        t += min(span / 4, 2 * hour)
        if t > now:
            continue
        if rng.random() < 0.04:                        # 回退: not ours; the dispatcher sends it elsewhere
            rec = act(handler, rec, "hand_back", t, reason="该设施不属于本单位养护范围。")
            if rng.random() < 0.5:
                other = rng.choice([c for c in unit_codes if c != rec["unit_code"]])
                rec = act(dispatcher, rec, "dispatch", t + 2 * hour, unit=other,
                          reason="原单位回退，经核实改派。")
                handler = handler_of[rec["unit_id"]]
                span = rec["deadline_at"] - t
            else:
                continue
        if stop_at == "dispatched":
            continue
        rec = act(handler, rec, "unit_accept", t)
        t += span / 3
        if t > now or stop_at == "unit_accepted":
            continue
        rec = act(handler, rec, "progress", t, text="已安排人员现场查看，正在处置。")
        if stop_at == "in_progress":
            if rng.random() < 0.3:                     # 延期: waiting for the dispatcher's decision
                act(handler, rec, "request_extension", t + hour, reason="需协调施工队伍并采购材料。",
                    until=(rec["deadline_at"] or t) + dt.timedelta(days=rng.randint(3, 10)))
            continue
        if rng.random() < 0.02:
            rec = act(dispatcher, rec, "ledger", t + hour, reason="需纳入明年改造计划，列入台账。",
                      promised_on=(t + dt.timedelta(days=rng.randint(20, 120))).date())
            continue
        t = rec["dispatched_at"] + span * rng.choice((0.5, 0.7, 0.9, 0.95, 1.3, 1.8))  # some late
        if t > now:
            continue
        rec = act(handler, rec, "handled", t, text="已处置完毕，恢复正常。", photos=[photo])
        t += dt.timedelta(hours=rng.uniform(3, 72))
        if t > now or stop_at == "handled":
            continue
        reporter = viewers[row.reporter_id]
        if rng.random() < 0.12:                        # 回头看: not satisfied, back to the same unit
            rec = act(reporter, rec, "verify", t, reply_rating=rng.choice((2, 3)), result_rating=rng.choice((1, 2)),
                      comment="处理不彻底，问题仍然存在。")
            t += 2 * hour
            if t > now or (age_days < 40 and rng.random() < 0.6):  # the rework still to come
                continue
            rec = act(handler, rec, "unit_accept", t)
            t += dt.timedelta(hours=rng.uniform(4, 40))
            if t > now:
                continue
            rec = act(handler, rec, "handled", t, text="已返工处理。", photos=[photo])
            t += dt.timedelta(hours=24)
            if t > now:
                continue
        rec = act(reporter, rec, "verify", t, reply_rating=rng.choice((4, 5, 5)), result_rating=rng.choice((3, 4, 5)))
        if t + 4 * hour < now:
            act(dispatcher, rec, "close", t + 4 * hour)
    counts = session.execute(text("SELECT status, count(*) FROM reports GROUP BY status")).all()
    return {status: n for status, n in counts}
