"""Reading reports back: one report as a plain dict, and pages of them for maps and the API."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_SELECT = """
SELECT r.id, r.client_id, r.status, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat,
       r.reported_lon, r.reported_lat, r.reported_crs,
       r.street_id, s.code AS street_code, s.name AS street_name,
       r.distance_m, r.position_m, r.on_own_street,
       c.code AS category_code, c.name AS category_name, c.name_en AS category_name_en,
       cls.code AS class_code, cls.name AS class_name,
       r.description, r.photo_path, u.id AS unit_id, u.code AS unit_code, u.name AS unit_name,
       r.dispatch_reason, r.created_at, r.updated_at, usr.username AS reporter
FROM reports r
JOIN streets s ON s.id = r.street_id
JOIN categories c ON c.id = r.category_id
JOIN categories grp ON grp.id = c.parent_id
JOIN categories cls ON cls.id = grp.parent_id
JOIN units u ON u.id = r.unit_id
JOIN users usr ON usr.id = r.reporter_id
"""


def _as_dict(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "client_id": str(row.client_id),
        "status": row.status,
        "lat": round(row.lat, 7),
        "lon": round(row.lon, 7),
        "reported": {"lat": row.reported_lat, "lon": row.reported_lon, "crs": row.reported_crs},
        "street": {"id": row.street_id, "code": row.street_code, "name": row.street_name},
        "distance_m": round(row.distance_m, 1),
        "position_m": round(row.position_m, 1),
        "on_own_street": row.on_own_street,
        "category": {"code": row.category_code, "name": row.category_name, "name_en": row.category_name_en,
                     "class_code": row.class_code, "class_name": row.class_name},
        "description": row.description,
        "has_photo": row.photo_path is not None,
        "unit": {"id": row.unit_id, "code": row.unit_code, "name": row.unit_name},
        "dispatch_reason": row.dispatch_reason,
        "reporter": row.reporter,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def get_report(session: Session, report_id: int) -> dict[str, Any] | None:
    row = session.execute(text(_SELECT + " WHERE r.id = :id"), {"id": report_id}).one_or_none()
    return _as_dict(row) if row else None


def list_reports(
    session: Session,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    statuses: list[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of reports (newest first) and the total that match the filters."""
    where, params = [], {"limit": limit, "offset": offset}
    if bbox is not None:
        where.append("r.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    if statuses:
        where.append("r.status = ANY(:statuses)")
        params["statuses"] = list(statuses)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = session.execute(text("SELECT count(*) FROM reports r" + clause), params).scalar_one()
    rows = session.execute(
        text(_SELECT + clause + " ORDER BY r.created_at DESC, r.id DESC LIMIT :limit OFFSET :offset"), params
    ).all()
    return [_as_dict(r) for r in rows], total
