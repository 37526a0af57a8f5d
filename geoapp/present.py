"""How a report looks from outside: the API's JSON, a GeoJSON feature, a map marker.

Pure functions of a report record (geoapp.domain.reports), the language and the time zone — no
Flask here, so every surface (API, map, later the console, Open311 and the album) shows one report
the same way. Names that have an English form in the data (streets, units, categories) are picked
by `localized`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from .domain.reports import ReportRecord
from .domain.vocabulary import REPORT_STATUSES

# The report's states as people read them; every page shows a status through this table.
STATUS_LABELS = {
    "submitted": {"zh": "已提交", "en": "submitted"},
}
assert set(STATUS_LABELS) == set(REPORT_STATUSES), "every status needs a label"

# Map colour of each album class (A 公用设施, B 环境卫生与园林绿化, C 城市容貌); other codes fall back.
CLASS_COLOURS = {"A": "#1f6feb", "B": "#2da44e", "C": "#d4380d"}
OTHER_COLOUR = "#6e40c9"


def localized(row: Mapping[str, Any], field: str, lang: str) -> str:
    """`field` in the reader's language: the `<field>_en` column for English when it has a value."""
    if lang == "en" and row.get(f"{field}_en"):
        return row[f"{field}_en"]
    return row[field]


def status_label(status: str, lang: str) -> str:
    return STATUS_LABELS.get(status, {}).get(lang, status)


def class_colour(class_code: str) -> str:
    return CLASS_COLOURS.get(class_code, OTHER_COLOUR)


def local_time(moment: dt.datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def report(rec: ReportRecord) -> dict[str, Any]:
    """The API's JSON of one report (times in UTC, ISO 8601; names in both languages)."""
    return {
        "id": rec["id"],
        "client_id": str(rec["client_id"]),
        "status": rec["status"],
        "lat": round(rec["lat"], 7),
        "lon": round(rec["lon"], 7),
        "reported": {"lat": rec["reported_lat"], "lon": rec["reported_lon"], "crs": rec["reported_crs"]},
        "street": {"id": rec["street_id"], "code": rec["street_code"], "name": rec["street_name"],
                   "name_en": rec["street_name_en"]},
        "distance_m": round(rec["distance_m"], 1),
        "position_m": round(rec["position_m"], 1),
        "on_own_street": rec["on_own_street"],
        "category": {"code": rec["category_code"], "name": rec["category_name"],
                     "name_en": rec["category_name_en"], "class_code": rec["class_code"],
                     "class_name": rec["class_name"]},
        "description": rec["description"],
        "has_photo": rec["photo_path"] is not None,
        "unit": {"id": rec["unit_id"], "code": rec["unit_code"], "name": rec["unit_name"],
                 "name_en": rec["unit_name_en"]},
        "dispatch_reason": rec["dispatch_reason"],
        "reporter": rec["reporter"],
        "created_at": rec["created_at"].isoformat(),
        "updated_at": rec["updated_at"].isoformat(),
    }


def feature(rec: ReportRecord) -> dict[str, Any]:
    """One report as an RFC 7946 Feature (longitude first)."""
    props = report(rec)
    lat, lon = props.pop("lat"), props.pop("lon")
    return {"type": "Feature", "id": rec["id"], "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": props}


def marker(rec: ReportRecord, lang: str, tz: str) -> dict[str, Any]:
    """What the map needs to draw one report and its popup (all plain text; the page escapes it)."""
    return {
        "id": rec["id"], "lat": round(rec["lat"], 7), "lon": round(rec["lon"], 7),
        "colour": class_colour(rec["class_code"]), "class": rec["class_code"],
        "description": rec["description"],
        "street": localized(rec, "street_name", lang),
        "category": f'{rec["category_code"]} {localized(rec, "category_name", lang)}',
        "unit": localized(rec, "unit_name", lang),
        "status": status_label(rec["status"], lang),
        "distance": f'{rec["distance_m"]:.0f} m',
        "time": local_time(rec["created_at"], tz),
    }
