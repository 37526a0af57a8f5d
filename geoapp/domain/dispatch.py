"""Which unit handles a report, and why? The one place the dispatch rule is decided.

The rule, in order:
  1. the category item names a unit *type* (e.g. sanitation, area_construction);
  2. if the street the report is tied to names its own maintaining unit for that type, that unit
     (a city department maintaining an arterial overrides the district);
  3. otherwise the zone containing the report's point names the concrete unit for that type;
  4. a point just outside every zone (a report may lie up to the snap tolerance off the street)
     takes the zone under its snapped position on the street.
The rule data (zones, overrides, item -> type) lives in gis_data/, not here.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from ..models import METRIC_SRID
from .errors import NoHandlingUnit


@dataclass(frozen=True)
class CategoryItem:
    id: int
    code: str
    name: str
    unit_type: str


@dataclass(frozen=True)
class Dispatch:
    unit_id: int
    unit_code: str
    unit_name: str
    rule: str  # street_override | zone | zone_of_street
    reason: str


_STREET_OVERRIDE = text("""
SELECT u.id, u.code, u.name, s.name AS street_name
FROM street_units su JOIN units u ON u.id = su.unit_id JOIN streets s ON s.id = su.street_id
WHERE su.street_id = :street_id AND su.unit_type = :unit_type
""")

# Zones must not overlap (the loader refuses that); on a shared border the lowest code wins.
_ZONE_UNIT = text(f"""
WITH p AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {METRIC_SRID}) AS g),
snapped AS (
    SELECT ST_ClosestPoint(s.geom_m, p.g) AS g FROM streets s, p WHERE s.id = :street_id
), candidates AS (
    SELECT z.id, z.code, z.name, 1 AS via FROM zones z, p WHERE ST_Covers(z.geom_m, p.g)
    UNION ALL
    SELECT z.id, z.code, z.name, 2 AS via FROM zones z, snapped WHERE ST_Covers(z.geom_m, snapped.g)
)
SELECT c.code AS zone_code, c.name AS zone_name, c.via, u.id, u.code, u.name
FROM candidates c
LEFT JOIN zone_units zu ON zu.zone_id = c.id AND zu.unit_type = :unit_type
LEFT JOIN units u ON u.id = zu.unit_id
ORDER BY c.via, c.code
LIMIT 1
""")


def dispatch_unit_for(session: Session, item: CategoryItem, street_id: int, lon: float, lat: float) -> Dispatch:
    label = f"「{item.code} {item.name}」（{item.unit_type}）"
    row = session.execute(_STREET_OVERRIDE, {"street_id": street_id, "unit_type": item.unit_type}).one_or_none()
    if row is not None:
        return Dispatch(row.id, row.code, row.name, "street_override",
                        f"问题类别{label}：{row.street_name}指定由{row.name}养护，优先于责任区分派。")
    row = session.execute(
        _ZONE_UNIT, {"lon": lon, "lat": lat, "street_id": street_id, "unit_type": item.unit_type}
    ).one_or_none()
    if row is None or row.id is None:
        raise NoHandlingUnit(unit_type=item.unit_type)
    if row.via == 1:
        return Dispatch(row.id, row.code, row.name, "zone",
                        f"问题类别{label}：点位位于{row.zone_name}责任区，由该区的{row.name}处理。")
    return Dispatch(row.id, row.code, row.name, "zone_of_street",
                    f"问题类别{label}：点位在责任区边界外，按所在街路位置归{row.zone_name}责任区，由{row.name}处理。")


# A unit that handed a report back (回退, "not our responsibility") is not suggested for it again:
# the next candidate is the unit of the same type whose zone lies nearest the report.
_NEAREST_OTHER_UNIT = text(f"""
SELECT u.id, u.code, u.name, z.name AS zone_name
FROM units u JOIN zone_units zu ON zu.unit_id = u.id AND zu.unit_type = :unit_type
JOIN zones z ON z.id = zu.zone_id
WHERE u.id <> ALL(:excluded)
ORDER BY ST_Distance(z.geom_m, ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), {METRIC_SRID})), u.code
LIMIT 1
""")

_REPORT_FACTS = text("""
SELECT r.street_id, ST_X(r.geom) AS lon, ST_Y(r.geom) AS lat, c.id AS item_id, c.code, c.name, c.unit_type,
       COALESCE(ARRAY(SELECT DISTINCT (e.data->>'unit_id')::int FROM report_events e
                      WHERE e.report_id = r.id AND e.action = 'hand_back'), '{}') AS handed_back
FROM reports r JOIN categories c ON c.id = r.category_id WHERE r.id = :id
""")


def suggest_dispatch(session: Session, report: dict) -> Dispatch | None:
    """The rule's unit for a stored report, leaving out the units that handed it back; None when no
    unit of the item's type is left (the dispatcher chooses one, with a reason)."""
    facts = session.execute(_REPORT_FACTS, {"id": report["id"]}).one()
    item = CategoryItem(facts.item_id, facts.code, facts.name, facts.unit_type)
    try:
        first = dispatch_unit_for(session, item, facts.street_id, facts.lon, facts.lat)
    except NoHandlingUnit:
        first = None
    excluded = list(facts.handed_back)
    if first is not None and first.unit_id not in excluded:
        return first
    row = session.execute(_NEAREST_OTHER_UNIT, {"unit_type": item.unit_type, "excluded": excluded or [0],
                                                "lon": facts.lon, "lat": facts.lat}).one_or_none()
    if row is None:
        return None
    return Dispatch(row.id, row.code, row.name, "after_hand_back",
                    f"问题类别「{item.code} {item.name}」（{item.unit_type}）：原单位已回退，"
                    f"建议由责任区最近的{row.name}（{row.zone_name}）处理。")
