"""submit_report(): validate -> snap -> dispatch -> store, in one transaction, idempotent on client_id."""
from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from ..models import Category, Report, ReportEvent
from .coords import BBox, to_wgs84
from .dispatch import CategoryItem, dispatch_unit_for
from .errors import BadInput, ClientIdConflict, NotARepresentative, UnknownCategory
from .photos import prepare_photo
from .reports import get_report
from .snapping import snap_to_street

MAX_DESCRIPTION = 2000
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


@dataclass
class Submission:
    client_id: Any
    lat: Any
    lon: Any
    crs: Any = "wgs84"
    category: Any = None
    description: Any = None
    photo: bytes | None = None


def _parse_client_id(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise BadInput(field="client_id", field_zh="client_id",
                       problem="must be a UUID generated on the device",
                       problem_zh="须为设备生成的 UUID。") from None


def _parse_number(value: Any, field: str, field_zh: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise BadInput(field=field, field_zh=field_zh, problem="is required", problem_zh="必填。")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(field=field, field_zh=field_zh, problem=f"'{value}' is not a number",
                       problem_zh=f"“{value}”不是数字。") from None


def _parse_description(value: Any) -> str:
    text_ = (value or "").strip() if isinstance(value, str) else ""
    if not text_:
        raise BadInput(field="description", field_zh="问题描述", problem="is required (one sentence is enough)",
                       problem_zh="必填（一句话即可）。")
    if len(text_) > MAX_DESCRIPTION:
        raise BadInput(field="description", field_zh="问题描述",
                       problem=f"is {len(text_)} characters; at most {MAX_DESCRIPTION}",
                       problem_zh=f"共 {len(text_)} 字，最多 {MAX_DESCRIPTION} 字。")
    return text_


def find_item(session: Session, code: Any) -> CategoryItem:
    code = str(code or "").strip()
    row = session.execute(
        select(Category).where(Category.code == code, Category.level == "item")
    ).scalar_one_or_none()
    if row is None:
        raise UnknownCategory(category=code)
    return CategoryItem(row.id, row.code, row.name, row.unit_type)


def _existing(session: Session, client_id: uuid.UUID, reporter: Reporter) -> dict | None:
    row = session.execute(
        text("SELECT id, reporter_id FROM reports WHERE client_id = :cid"), {"cid": client_id}
    ).one_or_none()
    if row is None:
        return None
    if row.reporter_id != reporter.user_id:
        raise ClientIdConflict()
    return get_report(session, row.id)


def submit_report(session: Session, reporter: Reporter, sub: Submission, rules: IntakeRules,
                  at: dt.datetime | None = None) -> tuple[dict, bool]:
    """Returns (report, created). A repeat of an earlier client_id returns that report, created=False.

    `at` backdates an imported report (demo data, history from the WeChat group); default now.

    The caller owns the transaction: nothing is stored unless it commits, and the photo file is
    removed again if this function fails after writing it.
    """
    client_id = _parse_client_id(sub.client_id)
    existing = _existing(session, client_id, reporter)
    if existing is not None:
        return existing, False
    if reporter.role not in SUBMITTING_ROLES:
        raise NotARepresentative()

    lat = _parse_number(sub.lat, "lat", "纬度")
    lon = _parse_number(sub.lon, "lon", "经度")
    point = to_wgs84(lon, lat, str(sub.crs or "wgs84"), rules.city_bbox)
    item = find_item(session, sub.category)
    description = _parse_description(sub.description)
    photo = (prepare_photo(sub.photo, max_bytes=rules.photo_max_bytes, max_px=rules.photo_max_px)
             if sub.photo is not None else None)

    snap = snap_to_street(session, point.lon, point.lat, rules.snap_tolerance_m)
    dispatch = dispatch_unit_for(session, item, snap.street_id, point.lon, point.lat)

    photo_rel = f"{client_id.hex[:2]}/{client_id}.jpg" if photo else None
    report_id = session.execute(
        insert(Report)
        .values(
            client_id=client_id,
            reported_lon=lon, reported_lat=lat, reported_crs=str(sub.crs or "wgs84").lower(),
            geom=f"SRID=4326;POINT({point.lon!r} {point.lat!r})",
            street_id=snap.street_id, distance_m=snap.distance_m, position_m=snap.position_m,
            on_own_street=(reporter.street_id == snap.street_id),
            category_id=item.id, description=description, reporter_id=reporter.user_id,
            photo_path=photo_rel, unit_id=dispatch.unit_id, dispatch_reason=dispatch.reason,
            **({"created_at": at, "updated_at": at} if at else {}),
        )
        .on_conflict_do_nothing(index_elements=["client_id"])
        .returning(Report.id)
    ).scalar_one_or_none()
    if report_id is None:  # a concurrent retry of the same submission won the race
        existing = _existing(session, client_id, reporter)
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
    if photo is not None:
        _store_photo(rules.photo_dir / photo_rel, photo, session)
    return get_report(session, report_id), True


def _store_photo(path: Path, data: bytes, session: Session) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)

    # The row and the file live or die together: drop the file if the transaction rolls back.
    committed = []

    @event.listens_for(session, "after_commit", once=True)
    def _keep(_session):
        committed.append(True)

    @event.listens_for(session, "after_rollback", once=True)
    def _discard(_session):
        if not committed:
            path.unlink(missing_ok=True)
