"""load_city_data(): validate gis_data/ and bring the database in line with it, in one transaction.

Rows are matched by their codes. Loading the same files twice changes nothing (updates are only
written where a value differs); a replacement data set replaces the old one whole, or not at all.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .validate import CityData, GisDataError, read_city_data


@dataclass
class LoadCounts:
    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(self.inserted.values()) + sum(self.updated.values()) + sum(self.deleted.values())

    def summary(self) -> str:
        tables = sorted(set(self.inserted) | set(self.updated) | set(self.deleted))
        return "; ".join(f"{t}: +{self.inserted.get(t, 0)} ~{self.updated.get(t, 0)} -{self.deleted.get(t, 0)}"
                         for t in tables)


def _sync(session: Session, counts: LoadCounts, table: str, keys: tuple[str, ...], values: dict[str, str],
          rows: list[dict], scope: str = "TRUE", later: list | None = None) -> None:
    """Upsert `rows` into `table` by `keys` and delete rows (within `scope`) absent from them.

    `values` maps column -> SQL expression over bind parameters (geometry needs a constructor).
    With `later`, the deletion is queued there instead: rows that others point at (units,
    streets) may only go once those others have been moved to their replacements.
    """
    cols = list(keys) + [c for c in values if c not in keys]
    exprs = [values.get(c, f":{c}") for c in cols]
    updatable = [c for c in cols if c not in keys]
    sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(exprs)}) "
           f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in updatable)
           + f" WHERE ({', '.join(f'{table}.{c}' for c in updatable)}) IS DISTINCT FROM "
             f"({', '.join(f'EXCLUDED.{c}' for c in updatable)}) RETURNING (xmax = 0) AS inserted")
    ins = upd = 0
    for row in rows:
        result = session.execute(text(sql), row).one_or_none()
        if result is not None:
            ins, upd = (ins + 1, upd) if result.inserted else (ins, upd + 1)
    counts.inserted[table] = counts.inserted.get(table, 0) + ins
    counts.updated[table] = counts.updated.get(table, 0) + upd
    present = {tuple(r[k] for k in keys) for r in rows}

    def delete_stale() -> None:
        existing = session.execute(text(f"SELECT {', '.join(keys)} FROM {table} WHERE {scope}")).all()
        stale = [tuple(e) for e in existing if tuple(e) not in present]
        for key in stale:
            session.execute(text(f"DELETE FROM {table} WHERE " + " AND ".join(f"{k} = :{k}" for k in keys)),
                            dict(zip(keys, key, strict=True)))
        counts.deleted[table] = counts.deleted.get(table, 0) + len(stale)

    if later is None:
        delete_stale()
    else:
        later.append(delete_stale)


def _ids(session: Session, table: str) -> dict[str, int]:
    return dict(session.execute(text(f"SELECT code, id FROM {table}")).all())


def _store(session: Session, data: CityData) -> LoadCounts:
    counts = LoadCounts()
    later: list = []
    geom = "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:geojson), 4326))"
    # children first where they may be dropped, so foreign keys never dangle mid-load
    _sync(session, counts, "units", ("code",), {"name": ":name", "name_en": ":name_en", "kind": ":kind",
                                              "unit_type": ":unit_type"}, data.units, later=later)
    unit_ids = _ids(session, "units")

    session.execute(text("SET CONSTRAINTS ALL DEFERRED"))
    street_rows = [{**{k: s[k] for k in ("code", "name", "name_en", "district", "from_name", "to_name", "source")},
                    "geojson": json.dumps(s["geojson"])} for s in data.streets]
    rep_rows = [{"code": r["code"], "name": r["name"], "kind": r["kind"], "monthly_quota": r["monthly_quota"],
                 "street_code": r["street_id"]} for r in data.representatives]
    keep_reps = {r["code"] for r in rep_rows}
    for code in [c for (c,) in session.execute(text("SELECT code FROM representatives")).all() if c not in keep_reps]:
        session.execute(text("DELETE FROM representatives WHERE code = :c"), {"c": code})
        counts.deleted["representatives"] = counts.deleted.get("representatives", 0) + 1
    _sync(session, counts, "streets", ("code",),
          {c: f":{c}" for c in ("name", "name_en", "district", "from_name", "to_name", "source")} | {"geom": geom},
          street_rows, later=later)
    street_ids = _ids(session, "streets")
    _sync(session, counts, "representatives", ("code",),
          {"name": ":name", "kind": ":kind", "monthly_quota": ":monthly_quota",
           "street_id": "(SELECT id FROM streets WHERE code = :street_code)"}, rep_rows)
    _sync(session, counts, "street_units", ("street_id", "unit_type"), {"unit_id": ":unit_id"},
          [{"street_id": street_ids[s["code"]], "unit_type": t, "unit_id": unit_ids[u]}
           for s in data.streets for t, u in s["overrides"].items()])

    _sync(session, counts, "zones", ("code",), {"name": ":name", "district_code": ":district_code", "geom": geom},
          [{"code": z["code"], "name": z["name"], "district_code": z["district_code"],
            "geojson": json.dumps(z["geojson"])} for z in data.zones])
    zone_ids = _ids(session, "zones")
    _sync(session, counts, "zone_units", ("zone_id", "unit_type"), {"unit_id": ":unit_id"},
          [{"zone_id": zone_ids[z["code"]], "unit_type": t, "unit_id": unit_ids[u]}
           for z in data.zones for t, u in z["units"].items()])

    classes, groups, items = {}, {}, []
    for order, row in enumerate(data.categories):
        classes.setdefault(row["class_code"], {"code": row["class_code"], "level": "class", "parent": None,
                                               "name": row["class_name"], "name_en": row["class_name_en"],
                                               "unit_type": None, "deadline_days": None, "sort_order": order})
        groups.setdefault(row["category_code"], {"code": row["category_code"], "level": "category",
                                                 "parent": row["class_code"], "name": row["category_name"],
                                                 "name_en": row["category_name_en"], "unit_type": None,
                                                 "deadline_days": None, "sort_order": order})
        items.append({"code": row["item_code"], "level": "item", "parent": row["category_code"],
                      "name": row["item_name"], "name_en": row["item_name_en"], "unit_type": row["unit_type"],
                      "deadline_days": row["deadline_days"], "sort_order": order})
    values = {c: f":{c}" for c in ("level", "name", "name_en", "unit_type", "deadline_days", "sort_order")}
    values["parent_id"] = "(SELECT id FROM categories p WHERE p.code = :parent)"
    for rows in (classes.values(), groups.values(), items):  # parents before children
        _sync(session, counts, "categories", ("code",), values, list(rows), scope="FALSE")
    keep = set(classes) | set(groups) | {i["code"] for i in items}
    stale = [c for (c,) in session.execute(text("SELECT code FROM categories ORDER BY level = 'item' DESC, "
                                                "level = 'category' DESC")).all() if c not in keep]
    for code in stale:
        session.execute(text("DELETE FROM categories WHERE code = :c"), {"c": code})
    counts.deleted["categories"] = len(stale)
    for delete_stale in reversed(later):  # streets, then units
        delete_stale()
    return counts


def load_city_data(session: Session, directory: Path, city_bbox) -> LoadCounts:
    """Validate everything first, then store; the caller's transaction makes it all-or-nothing."""
    data = read_city_data(Path(directory), city_bbox)
    try:
        with session.begin_nested():
            return _store(session, data)
    except IntegrityError as exc:
        detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        raise GisDataError(str(directory), "database",
                           f"the new data set conflicts with stored data (reports still refer to something "
                           f"it removes?): {detail}") from None
