"""What the representative's pages read besides reports: a street's outline (to draw it) and the
path of a category item through the taxonomy (class › category › item, as a report's page says it)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from ..models import Category, Street


def street_outline(session: Session, street_id: int) -> dict[str, Any] | None:
    """A street's names, ends, length and WGS-84 geometry (GeoJSON), or None."""
    row = session.execute(
        select(Street.id, Street.code, Street.name, Street.name_en, Street.from_name, Street.to_name,
               Street.length_m, func.ST_AsGeoJSON(Street.geom, 7).label("geometry"))
        .where(Street.id == street_id)).one_or_none()
    if row is None:
        return None
    out = dict(row._mapping)
    out["geometry"] = json.loads(row.geometry)
    return out


def category_path(session: Session, item_code: str) -> list[dict[str, Any]]:
    """[class, category, item], each {code, name, name_en}; the taxonomy has exactly these three levels."""
    item, group, klass = aliased(Category), aliased(Category), aliased(Category)
    row = session.execute(
        select(klass.code, klass.name, klass.name_en, group.code, group.name, group.name_en,
               item.code, item.name, item.name_en)
        .select_from(item)
        .join(group, group.id == item.parent_id)
        .join(klass, klass.id == group.parent_id)
        .where(item.code == item_code, item.level == "item")).one_or_none()
    if row is None:
        return []
    return [{"code": row[i], "name": row[i + 1], "name_en": row[i + 2]} for i in (0, 3, 6)]
