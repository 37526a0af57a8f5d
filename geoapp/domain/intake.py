"""submit_report(): validate -> snap -> dispatch -> store, in one transaction, idempotent on client_id.

A report and its photos live or die together without ever deleting a file on a guess: each file is
written first, under a name made from its own content (so a retry writes the same file), then the
rows that name it are committed. The published copy's watermark carries the report's id, known only
once its id is drawn, so the order is: every photo checked and decoded; the originals written; the
report's id drawn from its sequence; each published copy made and written; the report inserted
(its triggers lock the shared counter rows, so this comes after the photo work); the photos rows
added; the caller commits. If the commit fails — or seems to fail while it in fact reached PostgreSQL —
the files stay; files that no row names are removed later by `geoapp photos sweep`
(report_photos.sweep_orphan_photos), and only once they are older than any transaction could be.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ..models import Category, Report, ReportEvent
from .coords import BBox, to_wgs84
from .dispatch import CategoryItem, dispatch_unit_for
from .errors import ClientIdConflict, ClientIdReused, NotARepresentative, UnknownCategory
from .inputs import ReportInput, validate
from .photos import ReadPhoto, check_photo_count, read_photo, require_watermark_font
from .report_photos import Evidence, publish_photos, store_original
from .report_photos import sweep_orphan_photos  # noqa: F401  (its home before the photos table; cli, tests)
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
    photo_max_bytes: int  # each photo's
    photo_max_px: int     # the published copy's long edge
    display_tz: str = "Asia/Shanghai"  # the city's: an EXIF time without offset, the watermark's times

    @classmethod
    def from_settings(cls, settings: "Settings") -> "IntakeRules":
        return cls(city_bbox=settings.city_bbox, snap_tolerance_m=settings.snap_tolerance_m,
                   photo_dir=settings.photo_dir, photo_max_bytes=int(settings.upload_max_mb * 1024 * 1024),
                   photo_max_px=settings.photo_max_px, display_tz=settings.display_tz)


@dataclass(kw_only=True)
class Submission:
    """What a client sent, unchecked: the fields go through ReportInput, the one declared schema."""
    client_id: Any
    lon: Any
    lat: Any
    crs: Any = None
    category: Any = None
    description: Any = None
    photos: list[bytes] = field(default_factory=list)  # in the order sent; at most MAX_PHOTOS_PER_REPORT

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "photos" and v is not None}


def fingerprint(report: ReportInput, photos: list[bytes]) -> str:
    """What makes two submissions the same one: a retry repeats it exactly (the same photos in the
    same order); anything else is a new report."""
    digests = [hashlib.sha256(p).hexdigest() for p in photos]
    fields = {"lon": report.lon, "lat": report.lat, "crs": report.crs, "category": report.category,
              "description": report.description}
    if len(digests) <= 1:
        # the form of the one-photo days, so a retry sent across the upgrade still matches its report
        fields["photo"] = digests[0] if digests else None
    else:
        fields["photos"] = digests
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=True)
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
    check_photo_count(len(sub.photos))
    data = validate(ReportInput, sub.fields())
    digest = fingerprint(data, sub.photos)
    existing = _existing(session, data.client_id, reporter, digest)
    if existing is not None:
        return existing, False
    if reporter.role not in SUBMITTING_ROLES:
        raise NotARepresentative()

    point = to_wgs84(data.lon, data.lat, data.crs, rules.city_bbox)
    item = find_item(session, data.category)
    if sub.photos:
        require_watermark_font()  # before any file is written: without it no published copy can be made
    photos = _read_photos(sub.photos, rules)
    try:
        return _store(session, reporter, data, digest, point, item, photos, rules, at)
    finally:
        for photo in photos:
            photo.close()


def _read_photos(uploads: list[bytes], rules: IntakeRules) -> list[ReadPhoto]:
    """Every photo checked and decoded before anything is stored: one bad photo refuses the report."""
    photos: list[ReadPhoto] = []
    try:
        for upload in uploads:
            photos.append(read_photo(upload, max_bytes=rules.photo_max_bytes, max_px=rules.photo_max_px,
                                     tz=rules.display_tz))
    except BaseException:
        for photo in photos:
            photo.close()
        raise
    return photos


def _store(session: Session, reporter: Reporter, data: ReportInput, digest: str, point, item: CategoryItem,
           photos: list[ReadPhoto], rules: IntakeRules, at: dt.datetime | None) -> tuple[ReportRecord, bool]:
    snap = snap_to_street(session, point.lon, point.lat, rules.snap_tolerance_m)
    dispatch = dispatch_unit_for(session, item, snap.street_id, point.lon, point.lat)

    # the files first, then the rows that name them (see the module's docstring)
    originals = [store_original(rules.photo_dir, photo) for photo in photos]
    # The watermark names the report, so its id is drawn first and every published copy made before
    # the report's row is inserted: that insert's triggers lock the counter rows every report at this
    # spot shares (report_cells, coverage_marks), and they stay locked until the commit. With the
    # photo work done by then, concurrent reports wait on each other for the last inserts only
    # (bench/parallel_intake.py). A concurrent retry that wins leaves this id unused.
    report_id = session.execute(text("SELECT nextval(pg_get_serial_sequence('reports', 'id'))")).scalar_one()
    published = []
    if photos:
        reporter_name = session.execute(text("SELECT display_name FROM users WHERE id = :id"),
                                        {"id": reporter.user_id}).scalar_one()
        # the point as reported (in WGS-84), not the snapped one: where the representative stood
        published = publish_photos(rules.photo_dir, photos, originals, Evidence(
            report_id=report_id, street_name=snap.street_name, lon=point.lon, lat=point.lat,
            reporter_name=reporter_name, received_at=at or dt.datetime.now(dt.timezone.utc),
            tz=rules.display_tz))
    inserted = session.execute(
        insert(Report)
        .values(
            id=report_id, client_id=data.client_id, submission_sha256=digest,
            reported_lon=data.lon, reported_lat=data.lat, reported_crs=data.crs,
            geom=f"SRID=4326;POINT({point.lon!r} {point.lat!r})",
            street_id=snap.street_id, distance_m=snap.distance_m, position_m=snap.position_m,
            on_own_street=(reporter.street_id == snap.street_id),
            category_id=item.id, description=data.description, reporter_id=reporter.user_id,
            unit_id=dispatch.unit_id, dispatch_reason=dispatch.reason,
            **({"created_at": at, "updated_at": at} if at else {}),
        )
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(Report.id)
    ).scalar_one_or_none()
    if inserted is None:  # a concurrent retry of the same submission won the race
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
    session.add_all(published)
    session.flush()
    return get_report(session, report_id), True
