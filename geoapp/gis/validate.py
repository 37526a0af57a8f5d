"""Reading gis_data/ files and refusing bad data with a message naming the file, row or feature,
and the problem. Pure Python + Shapely; geometric checks run in the metric CRS."""
from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from pyproj import Transformer

from ..domain.vocabulary import MONTHLY_QUOTAS, REPRESENTATIVE_KINDS, UNIT_KINDS
from shapely import ops
from shapely.geometry import shape
from shapely.validation import explain_validity

from ..models import METRIC_SRID

WGS84_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326",
               "urn:ogc:def:crs:EPSG::4326", "EPSG:4490", "urn:ogc:def:crs:EPSG::4490"}
GAP_TOLERANCE_M = 1.0  # a street may leave the zones by less than this (rounding of shared borders)
OVERLAP_TOLERANCE_M2 = 1.0

_transformer = Transformer.from_crs(4326, METRIC_SRID, always_xy=True)


def _to_metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(_transformer.transform(xy[:, 0], xy[:, 1])))


class GisDataError(ValueError):
    """Bad city data: says which file, which row or feature, and what is wrong."""

    def __init__(self, file: str, where: str, problem: str):
        self.file, self.where, self.problem = file, where, problem
        super().__init__(f"{file}: {where}: {problem}")


@dataclass
class CityData:
    units: list[dict] = field(default_factory=list)
    streets: list[dict] = field(default_factory=list)  # geometry as GeoJSON dict, plus "metric" Shapely
    zones: list[dict] = field(default_factory=list)
    representatives: list[dict] = field(default_factory=list)
    categories: list[dict] = field(default_factory=list)  # item rows


def _read_csv(path: Path, required: list[str]) -> list[tuple[int, dict]]:
    if not path.exists():
        raise GisDataError(path.name, "file", "is missing")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise GisDataError(path.name, "header", f"missing column(s) {', '.join(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
            for c in required:
                if not clean.get(c):
                    raise GisDataError(path.name, f"row {line}", f"'{c}' is empty")
            rows.append((line, clean))
    if not rows:
        raise GisDataError(path.name, "file", "has no rows")
    return rows


def _read_features(path: Path, allowed: tuple[str, ...], bbox, required: list[str]) -> list[tuple[str, dict, dict, object]]:
    if not path.exists():
        raise GisDataError(path.name, "file", "is missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GisDataError(path.name, f"line {exc.lineno}", f"is not valid JSON ({exc.msg})") from None
    if doc.get("type") != "FeatureCollection":
        raise GisDataError(path.name, "file", "must be a GeoJSON FeatureCollection")
    crs_member = doc.get("crs")
    crs = None
    if crs_member is not None:
        props = crs_member.get("properties") if isinstance(crs_member, dict) else None
        crs = (props or {}).get("name") or ((props or {}).get("code") and f"EPSG:{props['code']}") or repr(crs_member)
    if crs and crs not in WGS84_NAMES:
        raise GisDataError(path.name, "crs", f"is {crs}; geometries must be WGS-84 (or CGCS2000) longitude/latitude")
    out = []
    for n, feature in enumerate(doc.get("features") or [], start=1):
        props = feature.get("properties") or {}
        where = f"feature {n}" + (f" ({props.get('id')} {props.get('name', '')})" if props.get("id") else "")
        for key in required:
            if props.get(key) in (None, ""):
                raise GisDataError(path.name, where, f"property '{key}' is missing")
        geom_json = feature.get("geometry")
        if not geom_json:
            raise GisDataError(path.name, where, "has no geometry")
        if geom_json.get("type") not in allowed:
            raise GisDataError(path.name, where, f"geometry is {geom_json.get('type')}; expected {' or '.join(allowed)}")
        try:
            geom = shape(geom_json)
        except Exception as exc:  # malformed coordinate arrays
            raise GisDataError(path.name, where, f"geometry cannot be read ({exc})") from None
        if geom.is_empty:
            raise GisDataError(path.name, where, "geometry is empty")
        x0, y0, x1, y1 = geom.bounds
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            raise GisDataError(path.name, where, "coordinates are not finite numbers")
        inside = bbox[0] <= x0 and x1 <= bbox[2] and bbox[1] <= y0 and y1 <= bbox[3]
        # before the range check: swapped Jinzhou coordinates have "latitudes" of 121 > 90
        if not inside and bbox[1] <= x0 and x1 <= bbox[3] and bbox[0] <= y0 and y1 <= bbox[2]:
            raise GisDataError(path.name, where, "coordinates are in latitude, longitude order; GeoJSON is [lon, lat]")
        if max(abs(x0), abs(x1)) > 180 or max(abs(y0), abs(y1)) > 90:
            raise GisDataError(path.name, where, f"coordinates like ({x0:.1f}, {y0:.1f}) are not longitude/latitude: "
                                                 "wrong CRS? geometries must be WGS-84 longitude/latitude")
        if not inside:
            raise GisDataError(path.name, where, f"coordinates ({x0:.4f}…{x1:.4f} E, {y0:.4f}…{y1:.4f} N) "
                                                 f"lie outside the city extent {bbox}")
        if not geom.is_valid:
            raise GisDataError(path.name, where, f"geometry is invalid ({explain_validity(geom)})")
        out.append((where, props, geom_json, geom))
    if not out:
        raise GisDataError(path.name, "file", "has no features")
    return out


def read_city_data(directory: Path, city_bbox) -> CityData:
    d = Path(directory)
    data = CityData()

    unit_rows = _read_csv(d / "units.csv", ["code", "name", "name_en", "kind", "unit_type"])
    seen: Counter = Counter()
    for line, row in unit_rows:
        if row["kind"] not in UNIT_KINDS:
            raise GisDataError("units.csv", f"row {line}", f"kind '{row['kind']}' is not one of {', '.join(UNIT_KINDS)}")
        seen[row["code"]] += 1
        if seen[row["code"]] > 1:
            raise GisDataError("units.csv", f"row {line}", f"unit code {row['code']} appears twice")
        data.units.append(row)
    unit_codes = {u["code"] for u in data.units}

    # A unit may be named for a type other than its own: that is what an override is for
    # (the city's facilities office maintaining an arterial instead of the district).
    def check_unit(file: str, where: str, code: str, what: str) -> None:
        if code not in unit_codes:
            raise GisDataError(file, where, f"{what} unit {code}, which is not in units.csv")
    unit_types = {u["unit_type"] for u in data.units}

    streets = _read_features(d / "streets.geojson", ("LineString", "MultiLineString"), city_bbox,
                             ["id", "name", "district"])
    ids: Counter = Counter()
    for where, props, geom_json, geom in streets:
        ids[props["id"]] += 1
        if ids[props["id"]] > 1:
            raise GisDataError("streets.geojson", where, f"street id {props['id']} appears twice")
        metric = _to_metric(geom)
        if metric.length < 1.0:
            raise GisDataError("streets.geojson", where, "is shorter than 1 m")
        overrides = props.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise GisDataError("streets.geojson", where, "'overrides' must be an object unit_type -> unit code")
        for code in overrides.values():
            check_unit("streets.geojson", where, code, "override names")
        data.streets.append({
            "code": props["id"], "name": props["name"], "name_en": props.get("name_en") or props["name"],
            "district": props["district"], "from_name": props.get("from") or "", "to_name": props.get("to") or "",
            "source": props.get("source") or "", "geojson": geom_json, "metric": metric, "where": where,
            "overrides": overrides,
        })
    street_codes = {s["code"] for s in data.streets}

    zones = _read_features(d / "zones.geojson", ("Polygon", "MultiPolygon"), city_bbox,
                           ["id", "name", "district_code", "units"])
    for where, props, geom_json, geom in zones:
        mapping = props["units"]
        if not isinstance(mapping, dict):
            raise GisDataError("zones.geojson", where, "'units' must be an object unit_type -> unit code")
        for unit_type, code in mapping.items():
            check_unit("zones.geojson", where, code, f"maps {unit_type} to")
        data.zones.append({"code": props["id"], "name": props["name"], "district_code": str(props["district_code"]),
                           "geojson": geom_json, "metric": _to_metric(geom), "where": where,
                           "units": mapping})
    for i, a in enumerate(data.zones):
        for b in data.zones[i + 1:]:
            overlap = a["metric"].intersection(b["metric"]).area
            if overlap > OVERLAP_TOLERANCE_M2:
                raise GisDataError("zones.geojson", a["where"],
                                   f"overlaps {b['code']} {b['name']} by {overlap:,.0f} m²; zones must not overlap")
    coverage = ops.unary_union([z["metric"] for z in data.zones])
    for s in data.streets:
        gap = s["metric"].difference(coverage).length
        if gap > GAP_TOLERANCE_M:
            raise GisDataError("zones.geojson", "coverage",
                               f"{gap:,.0f} m of street {s['code']} {s['name']} lie in no zone (a zone gap under the street)")

    rep_rows = _read_csv(d / "representatives.csv", ["code", "name", "kind", "monthly_quota", "street_id"])
    per_street = defaultdict(list)
    for line, row in rep_rows:
        if row["kind"] not in REPRESENTATIVE_KINDS:
            raise GisDataError("representatives.csv", f"row {line}",
                               f"kind '{row['kind']}' is not representative or committee_member")
        if row["monthly_quota"] not in {str(q) for q in MONTHLY_QUOTAS.values()}:
            raise GisDataError("representatives.csv", f"row {line}", f"monthly_quota must be 2 or 4, not {row['monthly_quota']}")
        if row["street_id"] not in street_codes:
            raise GisDataError("representatives.csv", f"row {line}", f"street {row['street_id']} is not in streets.geojson")
        per_street[row["street_id"]].append(row["code"])
        data.representatives.append({**row, "monthly_quota": int(row["monthly_quota"])})
    if len({r["code"] for r in data.representatives}) != len(data.representatives):
        raise GisDataError("representatives.csv", "code", "a representative code appears twice")
    for s in data.streets:
        reps = per_street.get(s["code"], [])
        if len(reps) != 1:
            problem = "has no representative" if not reps else f"has {len(reps)} representatives ({', '.join(reps)})"
            raise GisDataError("representatives.csv", f"street {s['code']} {s['name']}",
                               f"{problem}; every street needs exactly one")

    cat_rows = _read_csv(d / "categories.csv", ["class_code", "class_name", "class_name_en", "category_code",
                                                "category_name", "category_name_en", "item_code", "item_name",
                                                "item_name_en", "unit_type", "deadline_days"])
    names: dict[str, tuple] = {}
    for line, row in cat_rows:
        for level, code, label in (("class", row["class_code"], (row["class_name"], row["class_name_en"])),
                                   ("category", row["category_code"],
                                    (row["category_name"], row["category_name_en"], row["class_code"]))):
            if names.setdefault((level, code), label) != label:
                raise GisDataError("categories.csv", f"row {line}",
                                   f"{level} {code} is named or placed differently than on an earlier row")
        if ("item", row["item_code"]) in names:
            raise GisDataError("categories.csv", f"row {line}", f"item code {row['item_code']} appears twice")
        names[("item", row["item_code"])] = ()
        try:
            deadline = float(row["deadline_days"])
        except ValueError:
            deadline = -1
        if not deadline > 0 or round(deadline, 2) != deadline:
            raise GisDataError("categories.csv", f"row {line}", f"deadline_days must be a positive number with at most 2 decimals, not '{row['deadline_days']}'")
        if row["unit_type"] not in unit_types:
            raise GisDataError("categories.csv", f"row {line}",
                               f"item {row['item_code']} {row['item_name']} has no handling unit: "
                               f"no unit in units.csv has unit_type '{row['unit_type']}'")
        for z in data.zones:
            if row["unit_type"] not in z["units"]:
                raise GisDataError("categories.csv", f"row {line}",
                                   f"item {row['item_code']} {row['item_name']} has no handling unit in zone "
                                   f"{z['code']} {z['name']} (zones.geojson maps no '{row['unit_type']}' unit there)")
        data.categories.append({**row, "deadline_days": deadline})
    codes = Counter([c for (_lvl, c) in names])
    clash = [c for c, n in codes.items() if n > 1]
    if clash:
        raise GisDataError("categories.csv", "codes", f"code {clash[0]} is used at two levels; codes must be unique")
    return data
