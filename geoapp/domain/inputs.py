"""What a client may send: the declared schemas of requests, and the rules all user text obeys.

Every request body and query goes through one of these pydantic models before anything else sees
it, so a value is either normalised (what is stored is exactly what was checked) or refused with a
BadInput naming the field and the problem in both languages. Nothing here trusts Python's lax
parsing: numbers are plain ASCII decimals and finite; text has no NUL, control characters or
unpaired surrogates, and is more than invisible characters.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
import uuid
from typing import Annotated, Any

from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..translations import N_, Text
from .errors import BadInput, UnknownCrs
from .vocabulary import DEFAULT_CRS, INPUT_CRS, RATINGS, REPORT_STATUSES

MAX_DESCRIPTION = 2000
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 100, 1000

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_INTEGER = re.compile(r"[0-9]{1,9}")
# Characters that show nothing: a text made only of these (and spaces) is empty.
_INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180e"}

# kind of failure -> (pydantic's own English, for its error object; the msgid said to the reader).
# The English the reader sees comes from the catalog (geoapp/translations), like every UI string.
_PROBLEMS = {
    "missing": ("is required", N_("必填。")),
    "number": ("must be a number written with the digits 0-9 (e.g. 41.1165)", N_("须为用数字 0-9 书写的数值（例如 41.1165）。")),
    "finite": ("must be a finite number", N_("须为有限数值。")),
    "integer": ("must be a whole number written with the digits 0-9", N_("须为用数字 0-9 书写的整数。")),
    "uuid": ("must be a UUID generated on the device (not the all-zero UUID)", N_("须为设备生成的 UUID（不能全为零）。")),
    "text": ("must be text", N_("须为文本。")),
    "empty": ("is required (one sentence is enough)", N_("必填（一句话即可）。")),
    "control": ("contains a control character (such as NUL); remove it", N_("含有控制字符（如 NUL），请删除。")),
    "surrogate": ("contains a broken character (an unpaired UTF-16 surrogate)", N_("含有无效字符（不成对的 UTF-16 代理项）。")),
    "too_long": ("is {length} characters; at most {max}", N_("共 {length} 字，最多 {max} 字。")),
    "code": ("must be a code of letters and digits", N_("须为字母和数字组成的编码。")),
    "bbox": ("must be min_lon,min_lat,max_lon,max_lat with min below max", N_("格式须为 最小经度,最小纬度,最大经度,最大纬度（最小值小于最大值）。")),
    "range": ("must be from {lo} to {hi}", N_("须在 {lo} 到 {hi} 之间。")),
    "status": ("unknown status '{value}'; one of {allowed}", N_("未知状态“{value}”；可选 {allowed}。")),
    "flag": ("must be 1 or 0", N_("须为 1 或 0。")),
    "object": ("send a JSON object, or multipart/form-data when attaching a photo", N_("须为 JSON 对象；附带照片时使用 multipart/form-data。")),
    "date": ("must be a date written YYYY-MM-DD", N_("须为 YYYY-MM-DD 格式的日期。")),
    "datetime": ("must be a date and time written YYYY-MM-DDTHH:MM (local time) or ISO 8601 with an offset",
                 N_("须为 YYYY-MM-DDTHH:MM 格式的时间（本地时间），或带时区的 ISO 8601 时间。")),
    "rating": ("must be a whole number from 1 to 5", N_("须为 1 到 5 的整数。")),
    "codes": ("must be a list of codes of letters and digits", N_("须为字母和数字组成的编码列表。")),
    "date_order": ("'from' must not be after 'to'", N_("开始日期不能晚于结束日期。")),
}
# Field names said in a Chinese refusal (English names the field as the API spells it: "lat: …").
_FIELD_LABELS = {
    "lat": N_("纬度"), "lon": N_("经度"), "crs": N_("坐标系"), "category": N_("问题类别"),
    "description": N_("问题描述"), "street": N_("街路"), "body": N_("请求体"),
    "reason": N_("理由"), "text": N_("反馈内容"), "comment": N_("评价意见"), "unit": N_("责任单位"),
    "cooperating": N_("协办单位"), "deadline": N_("处置时限"), "until": N_("延期至"), "promised_on": N_("承诺完成日期"),
    "reply_rating": N_("答复满意度"), "result_rating": N_("办理结果满意度"), "version": N_("版本号"),
    "into": N_("合并到"), "action": N_("操作"), "from": N_("开始日期"), "to": N_("结束日期"),
    "photo": N_("照片"), "photos": N_("照片"),
}


def _fail(kind: str, **ctx) -> PydanticCustomError:
    return PydanticCustomError(kind, _PROBLEMS[kind][0], ctx)


def field_label(field: str) -> Text | str:
    """A field as a Chinese refusal names it (English names it as the API spells it)."""
    label = _FIELD_LABELS.get(field)
    return Text(label) if label else field


def refusal(field: str, kind: str, **ctx) -> BadInput:
    return BadInput(field=field, field_label=field_label(field), problem=Text(_PROBLEMS[kind][1], **ctx))


def number(value: Any) -> float:
    """A finite float from a JSON number or a plain ASCII decimal string (no '1_000', no '٤١', no 'nan')."""
    if isinstance(value, bool) or value is None:
        raise _fail("number")
    if isinstance(value, str):
        value = value.strip()
        if not _DECIMAL.fullmatch(value):
            raise _fail("number")
    elif not isinstance(value, (int, float)):
        raise _fail("number")
    try:
        result = float(value)
    except OverflowError:  # a 401-digit JSON integer
        raise _fail("finite") from None
    if not math.isfinite(result):
        raise _fail("finite")
    return result


def user_text(value: Any, *, max_length: int) -> str:
    """Text a person typed: stripped, line ends normalised, NFC; refused if it holds NUL, other
    control characters, unpaired surrogates, or nothing visible."""
    if not isinstance(value, str):
        raise _fail("text")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise _fail("surrogate")
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in value):
        raise _fail("control")
    if all(c.isspace() or c in _INVISIBLE or unicodedata.category(c) in ("Cf", "Zs", "Mn") for c in value):
        raise _fail("empty")
    if len(value) > max_length:
        raise _fail("too_long", length=len(value), max=max_length)
    return value


def _client_id(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        parsed = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            parsed = uuid.UUID(value.strip())
        except ValueError:
            raise _fail("uuid") from None
    else:
        raise _fail("uuid")
    if parsed.int == 0:
        raise _fail("uuid")
    return parsed


def _crs(value: Any) -> str:
    crs = value.strip().lower() if isinstance(value, str) else value
    if crs in (None, ""):
        return DEFAULT_CRS
    if crs not in INPUT_CRS:
        # its own refusal: the sentence names the coordinate systems we take
        raise UnknownCrs(crs=str(value)[:40])
    return crs


def _code(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Za-z_.-]{1,32}", value.strip()):
        raise _fail("code")
    return value.strip()


Number = Annotated[float, BeforeValidator(number)]


class ReportInput(BaseModel):
    """A report as a phone or another client sends it (the photo travels beside it, as bytes)."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: Annotated[uuid.UUID, BeforeValidator(_client_id)]
    lat: Number
    lon: Number
    crs: Annotated[str, BeforeValidator(_crs)] = DEFAULT_CRS
    category: Annotated[str, BeforeValidator(_code)]
    description: Annotated[str, BeforeValidator(lambda v: user_text(v, max_length=MAX_DESCRIPTION))]


def _bbox(value: Any):
    if value in (None, ""):
        return None
    parts = value.split(",") if isinstance(value, str) else []
    if len(parts) != 4 or not all(_DECIMAL.fullmatch(p.strip()) for p in parts):
        raise _fail("bbox")
    box = tuple(float(p) for p in parts)
    if not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
        raise _fail("bbox")
    return box


def _statuses(value: Any) -> tuple[str, ...]:
    found = tuple(s.strip() for s in (value or "").split(",") if s.strip()) if isinstance(value, str) else None
    if found is None:
        raise _fail("text")
    for s in found:
        if s not in REPORT_STATUSES:
            raise _fail("status", value=s[:40], allowed=", ".join(REPORT_STATUSES))
    return found


def _flag(value: Any) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise _fail("flag")


def _optional_code(value: Any) -> str | None:
    return None if value in (None, "") else _code(value)


def _codes(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or len(value) > 20:
        raise _fail("codes")
    return tuple(dict.fromkeys(_code(v) for v in value))


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(value: Any) -> dt.date | None:
    """A calendar day as every query string and body writes it, YYYY-MM-DD in ASCII digits; None when
    absent or empty; ValueError otherwise (each caller refuses it in its own words)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _DAY.fullmatch(value.strip()):
        raise ValueError(value)
    return dt.date.fromisoformat(value.strip())


def _date(value: Any) -> dt.date | None:
    try:
        return parse_day(value)
    except ValueError:
        raise _fail("date") from None


_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                     r"(?:Z|[+-][0-9]{2}:[0-9]{2})?")


def _moment(value: Any) -> dt.datetime | None:
    """An ISO 8601 moment; without an offset it is local time (the caller sets the zone: see
    `in_zone`), as an HTML datetime-local field sends it."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _MOMENT.fullmatch(value.strip()):
        raise _fail("datetime")
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _fail("datetime") from None


def in_zone(moment: dt.datetime | None, tz: str) -> dt.datetime | None:
    """A moment read without an offset is the city's local time."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(tz))


def _rating(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INTEGER.fullmatch(value))):
        raise _fail("rating")
    if int(value) not in RATINGS:
        raise _fail("rating")
    return int(value)


def _json_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise _fail("integer")
    if isinstance(value, int) and 0 <= value < 10**12:
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    raise _fail("integer")


def _json_flag(value: Any) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    return _flag(value)


def _optional_text(max_length: int):
    return lambda v: None if v in (None, "") else user_text(v, max_length=max_length)


def _order(value: Any) -> str:
    if value in (None, ""):
        return "newest"
    if value not in ("newest", "oldest", "deadline"):
        raise _fail("text")
    return value


def _integer(lo: int, hi: int, default: int):
    def parse(value: Any) -> int:
        if value in (None, ""):
            return default
        if not isinstance(value, str) or not _INTEGER.fullmatch(value.strip()):
            raise _fail("integer")
        n = int(value)
        if not lo <= n <= hi:
            raise _fail("range", lo=lo, hi=hi)
        return n
    return BeforeValidator(parse)


class ReportQuery(BaseModel):
    """The query string of GET /api/v1/reports."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    bbox: Annotated[tuple[float, float, float, float] | None, BeforeValidator(_bbox)] = None
    status: Annotated[tuple[str, ...], BeforeValidator(_statuses)] = ()
    street: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else _code(v))] = None
    mine: Annotated[bool, BeforeValidator(_flag)] = False
    # the console's filters (geoapp/domain/reports.py ReportFilter)
    category: Annotated[str | None, BeforeValidator(_optional_code)] = None
    unit: Annotated[str | None, BeforeValidator(_optional_code)] = None
    from_: Annotated[dt.date | None, BeforeValidator(_date), Field(alias="from")] = None
    to: Annotated[dt.date | None, BeforeValidator(_date)] = None
    overdue: Annotated[bool, BeforeValidator(_flag)] = False
    album: Annotated[bool | None, BeforeValidator(lambda v: None if v in (None, "") else _flag(v))] = None
    order: Annotated[str, BeforeValidator(_order)] = "newest"
    limit: Annotated[int, _integer(1, PAGE_SIZE_MAX, PAGE_SIZE_DEFAULT)] = PAGE_SIZE_DEFAULT
    offset: Annotated[int, _integer(0, 10**9, 0)] = 0

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.from_ is not None and self.to is not None and self.from_ > self.to:
            raise _fail("date_order")
        return self

    def period(self, tz: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """`from`..`to` (local calendar days, `to` inclusive) as [start, end) moments."""
        zone = ZoneInfo(tz)
        start = dt.datetime.combine(self.from_, dt.time(), zone) if self.from_ else None
        end = dt.datetime.combine(self.to + dt.timedelta(days=1), dt.time(), zone) if self.to else None
        return start, end


class ActionInput(BaseModel):
    """The body of POST /api/v1/reports/<id>/actions (JSON, or form fields of the same names when a
    photo is attached). Which fields an action needs is the lifecycle table's business
    (geoapp/domain/lifecycle.py); here each field is only checked for its form."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Annotated[str, BeforeValidator(_code)]
    version: Annotated[int, BeforeValidator(_json_integer)]
    reason: Annotated[str | None, BeforeValidator(_optional_text(500))] = None
    text: Annotated[str | None, BeforeValidator(_optional_text(MAX_DESCRIPTION))] = None
    comment: Annotated[str | None, BeforeValidator(_optional_text(500))] = None
    into: Annotated[int | None, BeforeValidator(lambda v: None if v in (None, "") else _json_integer(v))] = None
    unit: Annotated[str | None, BeforeValidator(_optional_code)] = None
    cooperating: Annotated[tuple[str, ...], BeforeValidator(_codes)] = ()
    deadline: Annotated[dt.datetime | None, BeforeValidator(_moment)] = None
    until: Annotated[dt.datetime | None, BeforeValidator(_moment)] = None
    promised_on: Annotated[dt.date | None, BeforeValidator(_date)] = None
    reply_rating: Annotated[int | None, BeforeValidator(_rating)] = None
    result_rating: Annotated[int | None, BeforeValidator(_rating)] = None
    flag: Annotated[bool | None, BeforeValidator(_json_flag)] = None


class SnapQuery(BaseModel):
    """The query string of GET /api/v1/snap: a point as intake takes it, and optionally the item."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    lat: Number
    lon: Number
    crs: Annotated[str, BeforeValidator(_crs)] = DEFAULT_CRS
    category: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else _code(v))] = None


# duplicate suggestions (geoapp/domain/duplicates.py, geoapp/web/duplicates.py)
ALONG_M_RANGE = (1.0, 500.0)
DAYS_RANGE = (1, 3650)
MAX_MERGE_GROUP = 50  # the largest group one merge takes (a page never shows more)


def _in_range(lo, hi, parse):
    def check(value: Any):
        if value in (None, ""):
            return None
        n = parse(value)
        if not lo <= n <= hi:
            raise _fail("range", lo=lo, hi=hi)
        return n
    return BeforeValidator(check)


class DuplicateQuery(BaseModel):
    """The query string of GET /api/v1/duplicates and of /console/duplicates; absent values: the
    settings (DUPLICATE_ALONG_M, DUPLICATE_WINDOW_DAYS)."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    street: Annotated[str | None, BeforeValidator(_optional_code)] = None
    along_m: Annotated[float | None, _in_range(*ALONG_M_RANGE, number)] = None
    days: Annotated[int | None, _in_range(*DAYS_RANGE, _json_integer)] = None


def _members(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_MERGE_GROUP:
        raise refusal("members", "range", lo=2, hi=MAX_MERGE_GROUP)
    out = []
    for m in value:
        if not isinstance(m, dict) or "id" not in m or "version" not in m:
            raise refusal("members", "object")
        out.append((_json_integer(m["id"]), _json_integer(m["version"])))
    return tuple(out)


class MergeInput(BaseModel):
    """The body of POST /api/v1/duplicates/merge: the survivor and every member with its version."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    into: Annotated[int, BeforeValidator(_json_integer)]
    members: Annotated[tuple[tuple[int, int], ...], BeforeValidator(_members)]

def validate(model: type[BaseModel], data: Any):
    """`model` filled from `data`, or a BadInput for the first problem (every problem in details)."""
    if not isinstance(data, dict):
        raise refusal("body", "object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        field = str(first["loc"][0]) if first["loc"] else "body"
        kind = first["type"] if first["type"] in _PROBLEMS else "missing" if first["type"] == "missing" else "text"
        err = refusal(field, kind, **(first.get("ctx") or {}))
        err.params["fields"] = sorted({str(e["loc"][0]) for e in errors if e["loc"]})
        raise err from None
