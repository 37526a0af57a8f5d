"""Which key street is this point on, how far from it, and where along it?

Measured in the metric CRS (models.METRIC_SRID) against the generated `geom_m` columns, with the
nearest street found by PostGIS's KNN operator on the GiST index.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from ..models import METRIC_SRID
from .coords import to_wgs84
from .errors import NoStreets, OffStreet


@dataclass(frozen=True)
class Snap:
    street_id: int
    street_code: str
    street_name: str
    distance_m: float
    position_m: float  # metres from the street's start, following its parts in order
    street_name_en: str | None = None  # for English refusals; None when the data has no English name


# The position along the street is street_measure() (migration 0009): the one measure reports,
# walks and coverage per road share (the parts of a street counted in order).
_NEAREST_STREET = text(f"""
WITH p AS (
    SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {METRIC_SRID}) AS g
), nearest AS (
    SELECT s.id, s.code, s.name, s.name_en, s.geom_m, ST_Distance(s.geom_m, p.g) AS distance_m
    FROM streets s, p
    ORDER BY s.geom_m <-> p.g
    LIMIT 1
)
SELECT n.id, n.code, n.name, n.name_en, n.distance_m, street_measure(n.geom_m, p.g) AS position_m
FROM nearest n, p
""")


def nearest_street(session: Session, lon: float, lat: float) -> Snap:
    row = session.execute(_NEAREST_STREET, {"lon": lon, "lat": lat}).one_or_none()
    if row is None:
        raise NoStreets()
    return Snap(row.id, row.code, row.name, float(row.distance_m), float(row.position_m), row.name_en)


def _distance_text(distance: float, tolerance: float) -> str:
    # "30 m from X; must be within 30 m" would read as a contradiction: show the decimal then.
    # Digits grouped by thousands ("1,240"), as both Chinese and English write them.
    return f"{distance:,.0f}" if round(distance) > tolerance else f"{distance:,.1f}"


def snap_to_street(session: Session, lon: float, lat: float, tolerance_m: float) -> Snap:
    """The street a WGS-84 point belongs to, or OffStreet naming the nearest one and the distance."""
    snap = nearest_street(session, lon, lat)
    if snap.distance_m > tolerance_m:
        raise OffStreet(
            street=snap.street_name,
            street_en=snap.street_name_en or snap.street_name,
            distance=_distance_text(snap.distance_m, tolerance_m),
            distance_m=round(snap.distance_m, 1),
            tolerance=tolerance_m,
        )
    return snap


def locate(session: Session, lon: float, lat: float, crs: str, city_bbox, tolerance_m: float):
    """Where a sent point lies: (the WGS-84 point, its Snap), or the refusal intake would give.
    Intake and the phone's preview (GET /api/v1/snap) both call this: one rule, never re-implemented."""
    point = to_wgs84(lon, lat, crs, city_bbox)
    return point, snap_to_street(session, point.lon, point.lat, tolerance_m)
