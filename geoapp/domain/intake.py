"""submit_report(): validate -> snap -> dispatch -> store, in one transaction, idempotent on client_id.

A report and its photo live or die together without ever deleting a file on a guess: the photo is
written first, under a name made from its own content (so a retry writes the same file), then the
row that names it is committed. If the commit fails — or seems to fail while it in fact reached
PostgreSQL — the file stays; files that no row names are removed later by `geoapp photos sweep`
(sweep_orphan_photos below), and only once they are older than any transaction could be.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ..models import Category, Report, ReportEvent
from .coords import BBox, to_wgs84
from .dispatch import CategoryItem, dispatch_unit_for
from .errors import ClientIdConflict, ClientIdReused, NotARepresentative, PhotoStoreUnavailable, UnknownCategory
from .inputs import ReportInput, validate
from .photos import prepare_photo
from .reports import ReportRecord, get_report
from .snapping import snap_to_street

if TYPE_CHECKING:
    from ..config import Settings

SUBMITTING_ROLES = ("representative", "dispatcher", "admin")


@dataclass(frozen=True)
class Reporter:
    user_id: int
    role: str
    street_id: int | None  # the representative's own street


@dataclass(frozen=True)
class IntakeRules:
    city_bbox: BBox
    snap_tolerance_m: float
    photo_dir: Path
    photo_max_bytes: int
    photo_max_px: int

    @classmethod
    def from_settings(cls, settings: "Settings") -> "IntakeRules":
        return cls(city_bbox=settings.city_bbox, snap_tolerance_m=settings.snap_tolerance_m,
                   photo_dir=settings.photo_dir, photo_max_bytes=int(settings.upload_max_mb * 1024 * 1024),
                   photo_max_px=settings.photo_max_px)


@dataclass(kw_only=True)
class Submission:
    """What a client sent, unchecked: the fields go through ReportInput, the one declared schema."""
    client_id: Any
    lon: Any
    lat: Any
    crs: Any = None
    category: Any = None
    description: Any = None
    photo: bytes | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "photo" and v is not None}


def fingerprint(report: ReportInput, photo: bytes | None) -> str:
    """What makes two submissions the same one: a retry repeats it exactly; anything else is a new report."""
    canonical = json.dumps({
        "lon": report.lon, "lat": report.lat, "crs": report.crs, "category": report.category,
        "description": report.description, "photo": hashlib.sha256(photo).hexdigest() if photo else None,
    }, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_item(session: Session, code: Any) -> CategoryItem:
    code = str(code or "").strip()
    row = session.execute(
        select(Category).where(Category.code == code, Category.level == "item")
    ).scalar_one_or_none()
    if row is None:
        raise UnknownCategory(category=code)
    return CategoryItem(row.id, row.code, row.name, row.unit_type)


def _existing(session: Session, client_id: uuid.UUID, reporter: Reporter, digest: str) -> ReportRecord | None:
    row = session.execute(
        text("SELECT id, reporter_id, submission_sha256 FROM reports WHERE client_id = :cid"), {"cid": client_id}
    ).one_or_none()
    if row is None:
        return None
    if row.reporter_id != reporter.user_id:
        raise ClientIdConflict()
    if row.submission_sha256 is not None and row.submission_sha256 != digest:
        raise ClientIdReused(report_id=row.id)
    return get_report(session, row.id)


def submit_report(session: Session, reporter: Reporter, sub: Submission, rules: IntakeRules,
                  at: dt.datetime | None = None) -> tuple[ReportRecord, bool]:
    """Returns (report record, created). A true retry of an earlier client_id returns that report,
    created=False; the same client_id with different content is refused (ClientIdReused).

    `at` backdates an imported report (demo data, history from the WeChat group); default now.
    The caller owns the transaction: nothing is stored unless it commits.
    """
    data = validate(ReportInput, sub.fields())
    digest = fingerprint(data, sub.photo)
    existing = _existing(session, data.client_id, reporter, digest)
    if existing is not None:
        return existing, False
    if reporter.role not in SUBMITTING_ROLES:
        raise NotARepresentative()

    point = to_wgs84(data.lon, data.lat, data.crs, rules.city_bbox)
    item = find_item(session, data.category)
    photo = (prepare_photo(sub.photo, max_bytes=rules.photo_max_bytes, max_px=rules.photo_max_px)
             if sub.photo is not None else None)

    snap = snap_to_street(session, point.lon, point.lat, rules.snap_tolerance_m)
    dispatch = dispatch_unit_for(session, item, snap.street_id, point.lon, point.lat)

    # the file first, then the row that names it (see the module's docstring)
    photo_rel = store_photo(rules.photo_dir, photo) if photo is not None else None
    report_id = session.execute(
        insert(Report)
        .values(
            client_id=data.client_id, submission_sha256=digest,
            reported_lon=data.lon, reported_lat=data.lat, reported_crs=data.crs,
            geom=f"SRID=4326;POINT({point.lon!r} {point.lat!r})",
            street_id=snap.street_id, distance_m=snap.distance_m, position_m=snap.position_m,
            on_own_street=(reporter.street_id == snap.street_id),
            category_id=item.id, description=data.description, reporter_id=reporter.user_id,
            photo_path=photo_rel, unit_id=dispatch.unit_id, dispatch_reason=dispatch.reason,
            **({"created_at": at, "updated_at": at} if at else {}),
        )
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(Report.id)
    ).scalar_one_or_none()
    if report_id is None:  # a concurrent retry of the same submission won the race
        existing = _existing(session, data.client_id, reporter, digest)
        assert existing is not None
        return existing, False

    session.add(ReportEvent(
        report_id=report_id, actor_id=reporter.user_id, action="submit", from_status=None,
        **({"at": at} if at else {}),
        to_status="submitted",
        data={"street": snap.street_code, "distance_m": round(snap.distance_m, 1),
              "unit": dispatch.unit_code, "dispatch_rule": dispatch.rule},
    ))
    session.flush()
    return get_report(session, report_id), True


def store_photo(photo_dir: Path, data: bytes) -> str:
    """Write a processed photo under its SHA-256 (atomically) and return its path relative to
    photo_dir. Writing the same photo again is harmless. A store that cannot be written (read-only,
    full, missing) is a 503: the caller's transaction then rolls back and nothing is stored."""
    digest = hashlib.sha256(data).hexdigest()
    rel = f"{digest[:2]}/{digest}.jpg"
    path = photo_dir / rel
    try:
        if path.exists() and path.stat().st_size == len(data):
            os.utime(path)  # a fresh mtime: the sweep must not take it while its row is being committed
            return rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise PhotoStoreUnavailable(reason=exc.strerror or type(exc).__name__) from None
    return rel


def sweep_orphan_photos(session: Session, photo_dir: Path, *, older_than_s: float = 3600,
                        dry_run: bool = False) -> list[Path]:
    """Remove photo files that no report names and that are older than `older_than_s` (a file
    younger than that may belong to a transaction still in flight). Returns what was (or would be)
    removed."""
    if not photo_dir.is_dir():
        return []
    named = {p for (p,) in session.execute(text("SELECT photo_path FROM reports WHERE photo_path IS NOT NULL"))}
    cutoff = time.time() - older_than_s
    removed = []
    for path in sorted(photo_dir.glob("*/*")):
        if not path.is_file() or path.stat().st_mtime > cutoff:
            continue
        if path.relative_to(photo_dir).as_posix() in named:
            continue
        if not dry_run:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
