"""The problem taxonomy as stored: album classes -> categories -> items (data from gis_data/categories.csv)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def category_tree(session: Session) -> list[dict]:
    rows = session.execute(text("""
        SELECT id, code, level, parent_id, name, name_en, unit_type, deadline_days
        FROM categories ORDER BY sort_order, code""")).all()
    nodes, roots = {}, []
    for r in rows:
        node = {"code": r.code, "level": r.level, "name": r.name, "name_en": r.name_en}
        if r.level == "item":
            node.update(unit_type=r.unit_type, deadline_days=float(r.deadline_days))
        else:
            node["children"] = []
        nodes[r.id] = node
    for r in rows:
        (nodes[r.parent_id]["children"] if r.parent_id else roots).append(nodes[r.id])
    return roots


def unit_list(session: Session) -> list[dict]:
    """The responsible units, in the data's order (units.csv)."""
    rows = session.execute(text("SELECT id, code, name, name_en, kind, unit_type FROM units ORDER BY id")).all()
    return [dict(r._mapping) for r in rows]
