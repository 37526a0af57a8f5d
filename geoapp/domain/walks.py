"""Walks: a representative's GPS trace, sent by the phone in chunks, and the stretches of street it
passed along — the data coverage per road is built on.

A chunk is cleaned first (points outside the city, with poor accuracy, or implying an impossible
speed are dropped and counted), then matched to the streets in PostGIS, set-based, in the metric CRS:
each segment between two kept points is cut by each street's buffer of snap_tolerance_m; the pieces
of consecutive segments that stay inside form a run, located along the street (ST_LineLocatePoint ×
length: the measure reports' `position_m` uses, parts of a multi-part street counted in order). A run
whose along-street extent is short is a crossing, not a walk along the street, and is ignored unless
it runs along the street. What is left is stored as walk_intervals (street, from_m..to_m, time span).

Segments, not the whole trace, are intersected: a walk up a street and back overlaps itself, and
an overlay of a self-overlapping line dissolves it into pieces that no longer follow the walk.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError
from pyproj import Transformer
from sqlalchemy import text
from sqlalchemy.orm import Session

from ..models import METRIC_SRID
from ..translations import N_, Text
from .coords import BBox, to_wgs84
from .errors import BadInput, OutsideCity, UnknownStreet, WalkChunkReused, WalkIdConflict
from .inputs import _client_id, _code, _crs, _fail, number, parse_day, validate
from .visibility import Viewer, sees_walks_of_everyone
from .vocabulary import DEFAULT_CRS

MAX_POINTS = 2000          # per chunk; the phone sends one every 30 s or 50 points
MAX_CHUNK_NO = 10**6
MAX_QUERY_DAYS = 366
MAX_STRETCHES = 5000       # per GET: a month of one street is a few hundred at most
# Why a point was dropped; every answer names all of them, zero or not.
DROP_REASONS = ("outside_city", "poor_accuracy", "impossible_speed")
# A run inside a street's buffer counts as walking the street when it covers this many tolerances
# along it (a crossing at right angles covers about none, whatever its length)...
MIN_ALONG_TOLERANCES = 2.0
# ...or when it mostly goes along the street (a short walk at a chunk's end, or where a street ends).
MIN_ALONG_SHARE = 0.5
# Stretches of one walk closer than this along the street are one stretch (GPS noise at a join).
JOIN_GAP_M = 0.5

# Field names said in a Chinese refusal (English names the field as the API spells it).
_FIELD_LABELS = {
    "walk_id": N_("巡街编号"), "chunk": N_("段号"), "crs": N_("坐标系"), "trace": N_("轨迹"),
    "times": N_("时间"), "accuracies": N_("定位精度"), "street": N_("街路"), "from": N_("开始日期"),
    "to": N_("结束日期"), "user": N_("用户"),
}
_PROBLEMS = {
    "linestring": N_("须为 GeoJSON LineString（type 为 LineString，coordinates 为 [经度, 纬度] 的列表）。"),
    "points": N_("须有 2 到 {max} 个点，收到 {n} 个。"),
    "position": N_("[{i}] 须为 [经度, 纬度]：两个有限数值。"),
    "list": N_("须为列表，与轨迹的点一一对应。"),
    "count": N_("须与轨迹的点一一对应：轨迹有 {n} 个点，这里有 {m} 个。"),
    "time": N_("[{i}] 须为带时区偏移的 ISO 8601 时间（例如 2026-11-25T08:30:00+08:00）。"),
    "increasing": N_("[{i}] 须晚于前一个时间（时间须逐点递增）。"),
    "accuracy": N_("[{i}] 须为非负的米数。"),
    "date": N_("须为日期 YYYY-MM-DD。"),
    "period": N_("结束日期不能早于开始日期，且最多 {days} 天。"),
    "me": N_("只能为 me（只看自己的巡街）。"),
}


def _refusal(field: str, problem: str, **ctx) -> BadInput:
    return BadInput(field=field, field_label=Text(_FIELD_LABELS[field]), problem=Text(_PROBLEMS[problem], **ctx))


def _validate(model: type[BaseModel], data: Any):
    """inputs.validate, with our fields named in Chinese like the report's are."""
    try:
        return validate(model, data)
    except BadInput as err:
        label = _FIELD_LABELS.get(err.params.get("field"))
        if label:
            err.params["field_label"] = Text(label)
        raise


def _chunk_no(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _fail("integer")
    if isinstance(value, str):
        if not (value.strip().isascii() and value.strip().isdigit()):
            raise _fail("integer")
        value = int(value)
    if not 0 <= value <= MAX_CHUNK_NO:
        raise _fail("range", lo=0, hi=MAX_CHUNK_NO)
    return value


class ChunkInput(BaseModel):
    """The body of POST /api/v1/walks; the parallel lists are checked point by point in `points`."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    walk_id: Annotated[uuid.UUID, BeforeValidator(_client_id)]
    chunk: Annotated[int, BeforeValidator(_chunk_no)]
    crs: Annotated[str, BeforeValidator(_crs)] = DEFAULT_CRS
    trace: Any = None
    times: Any = None
    accuracies: Any = None


@dataclass(frozen=True)
class Point:
    lon: float          # as sent, in `crs`
    lat: float
    at: dt.datetime     # UTC
    accuracy_m: float


@dataclass(frozen=True)
class Chunk:
    walk_id: uuid.UUID
    chunk_no: int
    crs: str
    points: tuple[Point, ...]

    @property
    def sha256(self) -> str:
        """Of the normalised content: the same chunk re-sent (other key order, other offset for the
        same instants) has the same digest."""
        canonical = json.dumps([self.crs, [[p.lon, p.lat, p.at.isoformat(), p.accuracy_m] for p in self.points]],
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _position(value: Any, i: int) -> tuple[float, float]:
    # GeoJSON positions may carry an altitude; it plays no part here
    if not isinstance(value, (list, tuple)) or not 2 <= len(value) <= 3:
        raise _refusal("trace", "position", i=i)
    try:
        return number(value[0]), number(value[1])
    except PydanticCustomError:  # a bad number: said here with the position's index
        raise _refusal("trace", "position", i=i) from None


def _time(value: Any, i: int) -> dt.datetime:
    if not isinstance(value, str) or not value.isascii() or len(value) > 40:
        raise _refusal("times", "time", i=i)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
        if moment.tzinfo is None or not 2000 <= moment.year <= 2100:
            raise ValueError
        return moment.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise _refusal("times", "time", i=i) from None


def _accuracy(value: Any, i: int) -> float:
    try:
        metres = number(value)
    except PydanticCustomError:
        raise _refusal("accuracies", "accuracy", i=i) from None
    if metres < 0:
        raise _refusal("accuracies", "accuracy", i=i)
    return metres


def parse_chunk(body: Any) -> Chunk:
    """The chunk a phone sent, normalised, or a BadInput naming the field (and the point's index)."""
    head = _validate(ChunkInput, body)
    trace = head.trace
    if not isinstance(trace, dict) or trace.get("type") != "LineString" or not isinstance(trace.get("coordinates"), list):
        raise _refusal("trace", "linestring")
    coordinates = trace["coordinates"]
    if not 2 <= len(coordinates) <= MAX_POINTS:
        raise _refusal("trace", "points", max=MAX_POINTS, n=len(coordinates))
    for field in ("times", "accuracies"):
        values = getattr(head, field)
        if not isinstance(values, list):
            raise _refusal(field, "list")
        if len(values) != len(coordinates):
            raise _refusal(field, "count", n=len(coordinates), m=len(values))
    points = []
    for i, (position, at, accuracy) in enumerate(zip(coordinates, head.times, head.accuracies)):
        lon, lat = _position(position, i)
        moment = _time(at, i)
        if points and moment <= points[-1].at:
            raise _refusal("times", "increasing", i=i)
        points.append(Point(lon, lat, moment, _accuracy(accuracy, i)))
    return Chunk(head.walk_id, head.chunk, head.crs, tuple(points))


@dataclass(frozen=True)
class Walker:
    user_id: int
    representative_id: int | None  # coverage counts representatives' walks only


@dataclass(frozen=True)
class WalkRules:
    city_bbox: BBox
    tolerance_m: float
    max_accuracy_m: float
    max_speed_mps: float

    @classmethod
    def from_settings(cls, settings) -> "WalkRules":
        return cls(settings.city_bbox, settings.snap_tolerance_m, settings.walk_max_accuracy_m,
                   settings.walk_max_speed_mps)


@dataclass(frozen=True)
class Kept:
    lon: float   # WGS-84
    lat: float
    at: dt.datetime


@functools.cache
def _to_metric():
    return Transformer.from_crs(4326, METRIC_SRID, always_xy=True).transform


def clean(chunk: Chunk, rules: WalkRules) -> tuple[list[Kept], dict[str, int], list[tuple[float, float]]]:
    """(the kept points in WGS-84, how many were dropped per reason, every point in WGS-84).
    Speed is judged against the previous KEPT point, so one GPS jump drops the jump, not the walk."""
    dropped = dict.fromkeys(DROP_REASONS, 0)
    every: list[tuple[float, float]] = []
    candidates: list[tuple[float, float, dt.datetime]] = []
    for p in chunk.points:
        try:
            w = to_wgs84(p.lon, p.lat, chunk.crs, rules.city_bbox)
        except OutsideCity:  # a step past the city's edge is not a bad request; it is no street of ours
            every.append((p.lon, p.lat))
            dropped["outside_city"] += 1
            continue
        every.append((w.lon, w.lat))
        if p.accuracy_m > rules.max_accuracy_m:
            dropped["poor_accuracy"] += 1
            continue
        candidates.append((w.lon, w.lat, p.at))
    # one call for all points: pyproj's cost is per call, not per point
    xs, ys = _to_metric()([c[0] for c in candidates], [c[1] for c in candidates])
    kept: list[Kept] = []
    previous = None  # (x, y, time) of the last kept point, metric
    for (lon, lat, at), x, y in zip(candidates, xs, ys):
        if previous is not None:
            seconds = (at - previous[2]).total_seconds()
            if ((x - previous[0]) ** 2 + (y - previous[1]) ** 2) ** 0.5 > rules.max_speed_mps * seconds:
                dropped["impossible_speed"] += 1
                continue
        previous = (x, y, at)
        kept.append(Kept(lon, lat, at))
    return kept, dropped, every


# The matching, in one statement. Inputs: the kept points (WGS-84, epoch seconds), the tolerance and
# the along-street rule. Output: one row per run of the trace inside a street's buffer.
_MATCH = text(f"""
WITH pts AS (
    SELECT u.n, ST_Transform(ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326), {METRIC_SRID}) AS g, u.t
    FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]), CAST(:ts AS float8[]))
         WITH ORDINALITY AS u(lon, lat, t, n)
), segs AS MATERIALIZED (
    -- one segment per pair of consecutive kept points, with their times; a point that did not move
    -- makes no segment (and does not break a run)
    SELECT row_number() OVER (ORDER BY n) AS n, ST_MakeLine(g, next_g) AS seg, t, next_t
    FROM (SELECT n, g, t, lead(g) OVER (ORDER BY n) AS next_g, lead(t) OVER (ORDER BY n) AS next_t FROM pts) x
    WHERE next_g IS NOT NULL AND NOT ST_Equals(g, next_g)
), trace AS (
    SELECT ST_Collect(seg) AS g FROM segs
), parts AS MATERIALIZED (
    -- the streets near the trace (GiST index on geom_m), part by part, each with the length of the
    -- parts before it: a measure on part k is offset_m + the distance along part k (as snapping.py)
    SELECT s.id AS street_id, d.path[1] AS part, d.geom AS line, ST_Length(d.geom) AS len,
           COALESCE(sum(ST_Length(d.geom)) OVER (PARTITION BY s.id ORDER BY d.path[1]
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS offset_m,
           ST_Buffer(d.geom, :tol) AS zone
    FROM streets s CROSS JOIN trace CROSS JOIN LATERAL ST_Dump(s.geom_m) AS d
    WHERE ST_DWithin(s.geom_m, trace.g, :tol)
), pieces AS (
    SELECT p.street_id, p.part, p.line, p.len, p.offset_m, s.n, s.seg, s.t, s.next_t, piece.geom AS piece,
           ST_DWithin(ST_StartPoint(s.seg), p.line, :tol) AS starts_inside
    FROM parts p JOIN segs s ON ST_DWithin(s.seg, p.line, :tol)
         CROSS JOIN LATERAL ST_Dump(ST_Intersection(s.seg, p.zone)) AS piece
    WHERE ST_GeometryType(piece.geom) = 'ST_LineString'  -- merely touching the buffer is no stretch
), located AS (
    SELECT street_id, part, n, starts_inside, ST_Length(piece) AS walked,
           offset_m + len * ST_LineLocatePoint(line, ST_StartPoint(piece)) AS a,
           offset_m + len * ST_LineLocatePoint(line, ST_EndPoint(piece)) AS b,
           t + (next_t - t) * ST_LineLocatePoint(seg, ST_StartPoint(piece)) AS ta,
           t + (next_t - t) * ST_LineLocatePoint(seg, ST_EndPoint(piece)) AS tb
    FROM pieces
), runs AS (
    -- a run goes on while the trace stays inside: the next segment starts inside, right after
    SELECT *, sum(CASE WHEN starts_inside AND prev_n = n - 1 THEN 0 ELSE 1 END)
                  OVER (PARTITION BY street_id, part ORDER BY n, ta) AS run
    FROM (SELECT *, lag(n) OVER (PARTITION BY street_id, part ORDER BY n, ta) AS prev_n FROM located) x
)
SELECT street_id, min(least(a, b)) AS from_m, max(greatest(a, b)) AS to_m,
       min(least(ta, tb)) AS t0, max(greatest(ta, tb)) AS t1
FROM runs
GROUP BY street_id, part, run
HAVING max(greatest(a, b)) - min(least(a, b)) > 0
   AND (max(greatest(a, b)) - min(least(a, b)) >= :min_along
        OR max(greatest(a, b)) - min(least(a, b)) >= :along_share * sum(walked))
ORDER BY street_id, from_m
""")


@dataclass
class Stretch:
    street_id: int
    from_m: float
    to_m: float
    started_at: dt.datetime
    ended_at: dt.datetime


def match(session: Session, kept: list[Kept], tolerance_m: float) -> list[Stretch]:
    """The stretches of street the kept trace went along, overlapping ones of a street merged."""
    if len(kept) < 2:
        return []
    epoch = kept[0].at
    # The geometry functions' costs make the planner's estimate huge, so PostgreSQL would JIT-compile
    # this statement: a second of compiling for 0.1 s of work. Off for this transaction only.
    session.execute(text("SET LOCAL jit = off"))
    rows = session.execute(_MATCH, {
        "lons": [k.lon for k in kept], "lats": [k.lat for k in kept],
        # seconds from the chunk's first point: small numbers keep the interpolation exact
        "ts": [(k.at - epoch).total_seconds() for k in kept],
        "tol": tolerance_m, "min_along": MIN_ALONG_TOLERANCES * tolerance_m, "along_share": MIN_ALONG_SHARE,
    }).all()
    merged: list[Stretch] = []
    for r in rows:  # ordered by street, then from_m
        start, end = epoch + dt.timedelta(seconds=r.t0), epoch + dt.timedelta(seconds=r.t1)
        last = merged[-1] if merged else None
        if last is not None and last.street_id == r.street_id and r.from_m <= last.to_m + JOIN_GAP_M:
            last.to_m = max(last.to_m, r.to_m)
            last.started_at, last.ended_at = min(last.started_at, start), max(last.ended_at, end)
        else:
            merged.append(Stretch(r.street_id, max(r.from_m, 0.0), r.to_m, start, end))
    return merged


def _claim_walk(session: Session, chunk: Chunk, walker: Walker) -> None:
    """The walk row, made by its first chunk; another user's walk id is refused. Locked, so two
    chunks of one walk arriving together are recorded one after the other."""
    session.execute(text("""
        INSERT INTO walks (id, user_id, representative_id) VALUES (:id, :user, :rep)
        ON CONFLICT (id) DO NOTHING"""), {"id": chunk.walk_id, "user": walker.user_id, "rep": walker.representative_id})
    owner = session.execute(text("SELECT user_id FROM walks WHERE id = :id FOR UPDATE"),
                            {"id": chunk.walk_id}).scalar_one()
    if owner != walker.user_id:
        raise WalkIdConflict()


def record_chunk(session: Session, walker: Walker, chunk: Chunk, rules: WalkRules) -> tuple[dict, bool]:
    """(the answer, True) for a new chunk; (the first answer, False) for the same chunk re-sent;
    WalkChunkReused for other content under a (walk, chunk) already received."""
    _claim_walk(session, chunk, walker)
    digest = chunk.sha256
    seen = session.execute(text("SELECT chunk_sha256 FROM walk_chunks WHERE walk_id = :w AND chunk_no = :c"),
                           {"w": chunk.walk_id, "c": chunk.chunk_no}).scalar_one_or_none()
    if seen is not None:
        if seen != digest:
            raise WalkChunkReused(walk_id=str(chunk.walk_id), chunk=chunk.chunk_no)
        return chunk_answer(session, chunk.walk_id, chunk.chunk_no), False

    kept, dropped, every = clean(chunk, rules)
    session.execute(text(f"""
        INSERT INTO walk_chunks (walk_id, chunk_no, trace, n_points, n_kept, dropped, chunk_sha256)
        VALUES (:w, :c, ST_GeomFromText(:trace, 4326), :n, :kept, CAST(:dropped AS jsonb), :sha)"""), {
        "w": chunk.walk_id, "c": chunk.chunk_no, "n": len(chunk.points), "kept": len(kept),
        "trace": "LINESTRING(" + ",".join(f"{lon!r} {lat!r}" for lon, lat in every) + ")",
        "dropped": json.dumps(dropped), "sha": digest})
    stretches = match(session, kept, rules.tolerance_m)
    if stretches:
        session.execute(text("""
            INSERT INTO walk_intervals (walk_id, chunk_no, street_id, user_id, representative_id,
                                        from_m, to_m, started_at, ended_at)
            VALUES (:w, :c, :street, :user, :rep, :from_m, :to_m, :started, :ended)"""), [
            {"w": chunk.walk_id, "c": chunk.chunk_no, "street": s.street_id, "user": walker.user_id,
             "rep": walker.representative_id, "from_m": s.from_m, "to_m": s.to_m,
             "started": s.started_at, "ended": s.ended_at} for s in stretches])
    session.execute(text("""
        UPDATE walks SET started_at = LEAST(started_at, :first), ended_at = GREATEST(ended_at, :last)
        WHERE id = :w"""), {"w": chunk.walk_id, "first": chunk.points[0].at, "last": chunk.points[-1].at})
    return chunk_answer(session, chunk.walk_id, chunk.chunk_no), True


def _street(row) -> dict:
    return {"code": row.code, "name": row.name, "name_en": row.name_en}


def _metres(value: float) -> float:
    return round(value, 1)


def chunk_answer(session: Session, walk_id: uuid.UUID, chunk_no: int) -> dict:
    """What POST answers, read back from what was stored: a re-send gets exactly the first answer."""
    head = session.execute(text("SELECT n_kept, dropped FROM walk_chunks WHERE walk_id = :w AND chunk_no = :c"),
                           {"w": walk_id, "c": chunk_no}).one()
    rows = session.execute(text("""
        SELECT s.code, s.name, s.name_en, i.from_m, i.to_m
        FROM walk_intervals i JOIN streets s ON s.id = i.street_id
        WHERE i.walk_id = :w AND i.chunk_no = :c
        ORDER BY s.code, i.from_m"""), {"w": walk_id, "c": chunk_no}).all()
    return {
        "walk_id": str(walk_id), "chunk": chunk_no, "kept": head.n_kept,
        "dropped": {reason: head.dropped.get(reason, 0) for reason in DROP_REASONS},
        "stretches": [{"street": _street(r), "from_m": _metres(r.from_m), "to_m": _metres(r.to_m),
                       "length_m": _metres(r.to_m - r.from_m)} for r in rows],
    }


# ---- reading: GET /api/v1/walks ----------------------------------------------------------------

def _day(field: str):
    def parse(value: Any) -> dt.date | None:
        try:
            return parse_day(value)
        except ValueError:
            raise _refusal(field, "date") from None
    return BeforeValidator(parse)


def _me(value: Any) -> bool:
    if value in (None, ""):
        return False
    if value == "me":
        return True
    raise _refusal("user", "me")


class WalkQuery(BaseModel):
    """The query string of GET /api/v1/walks. Days are the city's local days; the default is the
    current month."""
    model_config = ConfigDict(frozen=True, extra="ignore")

    street: Annotated[str | None, BeforeValidator(lambda v: None if v in (None, "") else _code(v))] = None
    from_: Annotated[dt.date | None, _day("from")] = None
    to: Annotated[dt.date | None, _day("to")] = None
    me: Annotated[bool, BeforeValidator(_me)] = False


def parse_query(args: dict) -> WalkQuery:
    data = dict(args)
    data["from_"] = data.pop("from", None)
    data["me"] = data.pop("user", None)
    return _validate(WalkQuery, data)


def period(query: WalkQuery, tz: str, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the query's local days, both included."""
    zone = ZoneInfo(tz)
    today = today or dt.datetime.now(zone).date()
    first = query.from_ or (query.to or today).replace(day=1)
    last = query.to or ((first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1))
    if last < first or (last - first).days >= MAX_QUERY_DAYS:
        raise _refusal("to", "period", days=MAX_QUERY_DAYS)
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


# Intervals of the period (index (street_id, started_at), or (user_id, started_at) without a street),
# joined where one walk's intervals of a street touch or overlap (the chunks of one walk meet at the
# point they share), each drawn as the piece of the street it covers.
_STRETCHES = f"""
WITH picked AS (
    SELECT i.walk_id, i.street_id, i.from_m, i.to_m, i.started_at, i.ended_at
    FROM walk_intervals i
    WHERE i.started_at >= :start AND i.started_at < :end {{where}}
), ordered AS (
    SELECT *, max(to_m) OVER (PARTITION BY walk_id, street_id ORDER BY from_m, to_m
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM picked
), joined AS (
    SELECT walk_id, street_id, min(from_m) AS from_m, max(to_m) AS to_m,
           min(started_at) AS started_at, max(ended_at) AS ended_at
    FROM (SELECT *, sum(CASE WHEN reach >= from_m - {JOIN_GAP_M} THEN 0 ELSE 1 END)
                      OVER (PARTITION BY walk_id, street_id ORDER BY from_m, to_m) AS grp
          FROM ordered) x
    GROUP BY walk_id, street_id, grp
)
SELECT j.walk_id, j.from_m, j.to_m, j.started_at, j.ended_at, s.code, s.name, s.name_en,
       ST_AsGeoJSON(ST_Transform(g.geom, 4326), 7) AS geometry
FROM joined j JOIN streets s ON s.id = j.street_id
CROSS JOIN LATERAL (
    SELECT ST_LineMerge(ST_Collect(
               ST_LineSubstring(p.line, GREATEST(0, (j.from_m - p.offset_m) / p.len),
                                LEAST(1, (j.to_m - p.offset_m) / p.len)) ORDER BY p.part)) AS geom
    FROM (SELECT d.path[1] AS part, d.geom AS line, ST_Length(d.geom) AS len,
                 COALESCE(sum(ST_Length(d.geom)) OVER (ORDER BY d.path[1]
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS offset_m
          FROM ST_Dump(s.geom_m) AS d) p
    WHERE p.len > 0 AND p.offset_m < j.to_m AND p.offset_m + p.len > j.from_m
) g
ORDER BY j.started_at, s.code, j.from_m
LIMIT {MAX_STRETCHES}
"""


def list_stretches(session: Session, viewer: Viewer, query: WalkQuery, tz: str) -> list[dict]:
    """The stretches walked in the query's period, whose visibility.sees_walks_of_everyone allows."""
    start, end = period(query, tz)
    where, params = [], {"start": start, "end": end}
    if query.street is not None:
        street_id = session.execute(text("SELECT id FROM streets WHERE code = :c"), {"c": query.street}).scalar()
        if street_id is None:
            raise UnknownStreet(street=query.street)
        where.append("AND i.street_id = :street")
        params["street"] = street_id
    if query.me or not sees_walks_of_everyone(viewer):
        where.append("AND i.user_id = :user")
        params["user"] = viewer.user_id
    rows = session.execute(text(_STRETCHES.format(where=" ".join(where))), params).all()
    return [{
        "walk_id": str(r.walk_id), "street": _street(r),
        "from_m": _metres(r.from_m), "to_m": _metres(r.to_m), "length_m": _metres(r.to_m - r.from_m),
        "started_at": r.started_at.isoformat(), "ended_at": r.ended_at.isoformat(),
        "geometry": json.loads(r.geometry) if r.geometry else None,
    } for r in rows]
