"""How a report looks from outside: the API's JSON, a GeoJSON feature, a map marker.

Pure functions of a report record (geoapp.domain.reports), the language and the time zone — no
Flask here, so every surface (API, map, later the console, Open311 and the album) shows one report
the same way. Names that have an English form in the data (streets, units, categories) are picked
by `localized`; words (statuses, units) come from the gettext catalog (geoapp/translations), dates
and numbers from Babel's data for the reader's locale.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal

from .domain.reports import ReportRecord
from .domain import vocabulary
from .domain.vocabulary import REPORT_STATUSES
from .translations import DEFAULT_LANGUAGE, LOCALES, N_, translate

# The report's states as people read them: the vocabulary's table (every page shows a status through it).
STATUS_LABELS = vocabulary.STATUS_LABELS
# Colour of each status where reports are drawn by status (the console map, the phone's pages).
# One hue family per phase, built on the Okabe-Ito colour-blind-safe palette and told apart within
# a family by lightness: orange/yellow waiting for the dispatcher, blues at the unit, greens done,
# reddish purple/vermilion back for a decision, purple on the ledger, greys out of the loop.
STATUS_COLOURS = {
    "submitted": "#e69f00", "accepted": "#f0c419", "returned": "#cc79a7", "reopened": "#d55e00",
    "dispatched": "#56b4e9", "unit_accepted": "#0072b2", "in_progress": "#003f6b",
    "handled": "#009e73", "verified": "#7fd3b1", "closed": "#1b5e20", "ledger": "#6a3d9a",
    "rejected": "#8c8c8c", "merged": "#c4c4c4", "void": "#4d4d4d",
}
assert set(STATUS_COLOURS) == set(REPORT_STATUSES), "every status needs a colour"
OTHER_STATUS_COLOUR = "#57606a"


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, OTHER_STATUS_COLOUR)

# Map colour of each album class (A 公用设施, B 环境卫生与园林绿化, C 城市容貌); other codes fall back.
CLASS_COLOURS = {"A": "#1f6feb", "B": "#2da44e", "C": "#d4380d"}
OTHER_COLOUR = "#6e40c9"


def localized(row: Mapping[str, Any], field: str, lang: str) -> str:
    """`field` in the reader's language: the `<field>_en` column for English when it has a value."""
    if lang == "en" and row.get(f"{field}_en"):
        return row[f"{field}_en"]
    return row[field]


def status_label(status: str, lang: str) -> str:
    return translate(STATUS_LABELS[status], lang) if status in STATUS_LABELS else status


def class_colour(class_code: str) -> str:
    return CLASS_COLOURS.get(class_code, OTHER_COLOUR)


def local_time(moment: dt.datetime, tz: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A moment as the reader writes dates, in the city's time zone: "2026/11/25 16:35", "11/25/26, 4:35 PM"."""
    return format_datetime(moment, "short", tzinfo=ZoneInfo(tz), locale=LOCALES[lang])


def distance(metres: float, lang: str) -> str:
    """Whole metres with the reader's digit grouping and unit: "1,240 米", "1,240 m"."""
    number = format_decimal(round(metres), locale=LOCALES[lang])
    return translate(N_("{n} 米"), lang).format(n=number)


def photo(p: Mapping[str, Any]) -> dict[str, Any]:
    """A published photo as the API shows it; the URL applies the visibility rule (web/photos.py)."""
    return {"id": p["id"], "url": f"/api/v1/photos/{p['id']}", "kind": p["kind"],
            "taken_at": p["taken_at"].isoformat() if p["taken_at"] else None,
            "taken_at_source": p["taken_at_source"], "event_id": p.get("event_id")}


# What a summary (domain/visibility.py: another representative's report on my street) leaves out.
_NOT_IN_SUMMARY = ("client_id", "description", "reporter", "reporter_name", "reported", "dispatch_reason", "unit",
                   "cooperating_units", "verification", "extension_request")


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def report(rec: ReportRecord, access: str = "full") -> dict[str, Any]:
    """The API's JSON of one report (times in UTC, ISO 8601; names in both languages).
    access='summary' leaves out who reported it and what they wrote (see domain/visibility.py)."""
    out = {
        "id": rec["id"],
        "access": access,
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
                     "class_name": rec["class_name"], "class_name_en": rec["class_name_en"]},
        "description": rec["description"],
        "photos": [photo(p) for p in rec.get("photos", ())],
        "has_photo": bool(rec.get("photos")),
        "unit": {"id": rec["unit_id"], "code": rec["unit_code"], "name": rec["unit_name"],
                 "name_en": rec["unit_name_en"]},
        "dispatch_reason": rec["dispatch_reason"],
        "reporter": rec["reporter"],
        "reporter_name": rec["reporter_name"],
        "created_at": rec["created_at"].isoformat(),
        "updated_at": rec["updated_at"].isoformat(),
        # the lifecycle (geoapp/domain/lifecycle.py)
        "version": rec["version"],
        "deadline_at": _iso(rec["deadline_at"]),
        "overdue": rec.get("overdue", False),
        "dispatched_at": _iso(rec["dispatched_at"]),
        "handled_at": _iso(rec["handled_at"]),
        "closed_at": _iso(rec["closed_at"]),
        "merged_into": rec["merged_into_id"],
        "album": rec["album"],
        "ledger_promised_on": _iso(rec["ledger_promised_on"]),
        "cooperating_units": rec.get("cooperating_units", []),
        "extension_request": ({"until": _iso(rec["extension_requested_until"]), "reason": rec["extension_reason"]}
                              if rec["extension_requested_until"] else None),
        "verification": ({"reply_rating": rec["reply_rating"], "result_rating": rec["result_rating"],
                          "comment": rec["verify_comment"]} if rec["reply_rating"] is not None else None),
    }
    if access != "full":
        for key in _NOT_IN_SUMMARY:
            out.pop(key)
    return out


def event(e: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of a report's history, as the API shows it."""
    return {"id": e["id"], "at": e["at"].isoformat(), "action": e["action"], "from_status": e["from_status"],
            "to_status": e["to_status"], "actor": e["actor"], "actor_role": e["actor_role"],
            "data": e["data"]}


def feature(rec: ReportRecord, access: str = "full") -> dict[str, Any]:
    """One report as an RFC 7946 Feature (longitude first)."""
    props = report(rec, access)
    lat, lon = props.pop("lat"), props.pop("lon")
    return {"type": "Feature", "id": rec["id"], "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": props}


# A report as one row of a table (the CSV / XLSX / GeoPackage exports): (column key, header msgid).
# Numbers stay numbers and times are the city's local time, so a spreadsheet sorts and sums them.
REPORT_COLUMNS = (
    ("id", N_("编号")), ("status", N_("状态")), ("class", N_("大类")), ("category_code", N_("类别代码")),
    ("category", N_("问题类别")), ("street", N_("街路")), ("position_m", N_("距起点（米）")),
    ("distance_m", N_("离街路中线（米）")), ("lon", N_("经度")), ("lat", N_("纬度")),
    ("description", N_("描述")), ("reporter", N_("上报人")), ("created_at", N_("上报时间")),
    ("unit", N_("责任单位")), ("cooperating_units", N_("协办单位")), ("dispatched_at", N_("派遣时间")),
    ("deadline_at", N_("处置时限")), ("overdue", N_("是否超期")), ("handled_at", N_("办结时间")),
    ("closed_at", N_("结案时间")), ("reply_rating", N_("答复满意度")), ("result_rating", N_("办理结果满意度")),
    ("album", N_("列入图册")),
)


def _local(moment, tz: str):
    """A moment as the city's wall-clock time, without a zone (what a spreadsheet cell can hold)."""
    return moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None, microsecond=0) if moment is not None else None


def report_row(rec: ReportRecord, lang: str, tz: str) -> dict[str, Any]:
    """One report as the exports' row, keyed as REPORT_COLUMNS; yes/no in the reader's language."""
    yes, no = translate(N_("是"), lang), translate(N_("否"), lang)
    return {
        "id": rec["id"], "status": status_label(rec["status"], lang),
        "class": localized(rec, "class_name", lang), "category_code": rec["category_code"],
        "category": localized(rec, "category_name", lang), "street": localized(rec, "street_name", lang),
        "position_m": round(rec["position_m"], 1), "distance_m": round(rec["distance_m"], 1),
        "lon": round(rec["lon"], 7), "lat": round(rec["lat"], 7), "description": rec["description"],
        "reporter": rec["reporter_name"], "created_at": _local(rec["created_at"], tz),
        "unit": localized(rec, "unit_name", lang),
        "cooperating_units": "、".join(localized(u, "name", lang) for u in rec.get("cooperating_units") or ()),
        "dispatched_at": _local(rec["dispatched_at"], tz), "deadline_at": _local(rec["deadline_at"], tz),
        "overdue": yes if rec.get("overdue") else no, "handled_at": _local(rec["handled_at"], tz),
        "closed_at": _local(rec["closed_at"], tz), "reply_rating": rec["reply_rating"],
        "result_rating": rec["result_rating"], "album": yes if rec["album"] else no,
    }


def marker(rec: ReportRecord, lang: str, tz: str, access: str = "full") -> dict[str, Any]:
    """What the map needs to draw one report and its popup (all plain text; the page escapes it).
    A summary (domain/visibility.py) shows no description."""
    return {
        "id": rec["id"], "lat": round(rec["lat"], 7), "lon": round(rec["lon"], 7),
        "colour": class_colour(rec["class_code"]), "class": rec["class_code"],
        "description": rec["description"] if access == "full" else "",
        "street": localized(rec, "street_name", lang),
        "category": f'{rec["category_code"]} {localized(rec, "category_name", lang)}',
        "unit": localized(rec, "unit_name", lang),
        "status": status_label(rec["status"], lang),
        "distance": distance(rec["distance_m"], lang),
        "time": local_time(rec["created_at"], tz, lang),
    }


def album_entry(entry: Mapping[str, Any], lang: str, tz: str) -> dict[str, Any]:
    """One problem of an issued album (the snapshot geoapp/domain/album.py stored) as the album
    prints it: plain strings in the reader's language (the template escapes them)."""
    def when(iso: str | None) -> str:
        return local_time(dt.datetime.fromisoformat(iso), tz, lang) if iso else ""
    comma = ", " if lang == "en" else "、"
    street = localized(entry["street"], "name", lang)
    return {
        "no": entry["no"], "report_id": entry["report_id"], "status_code": entry["status"],
        "class": localized(entry["class"], "name", lang),
        "item": f'{entry["item"]["code"]} {localized(entry["item"], "name", lang)}',
        "street": street,
        "where": translate(N_("{street} 距起点 {distance}"), lang).format(
            street=street, distance=distance(entry["position_m"], lang)),
        "description": entry["description"],
        "reporter": entry["reporter_name"],
        "reported": when(entry["created_at"]),
        "unit": localized(entry["unit"], "name", lang),
        "cooperating": comma.join(localized(u, "name", lang) for u in entry["cooperating_units"]),
        "deadline": when(entry["deadline_at"]),
        "handled": when(entry["handled_at"]),
        "ledger_promised_on": entry["ledger_promised_on"] or "",
        "status": status_label(entry["status"], lang),
        "overdue": entry["overdue"],
        "carried_over": entry["carried_over"],
    }
