"""The console map's clusters, counted on the server so that their cost follows the cells in view,
never the number of reports.

The map asks for a rectangle of Web-Mercator tiles at one zoom (`TileView`). Each tile is 4 x 4
cells of 64 screen pixels; a cell with reports becomes one cluster (its count, its count per
status, and the mean position of its reports). A tile holding few reports shows them one by one.

Where the counts come from:
- `report_cells` (migration 0007): aggregates per cell (stored at zoom levels 10, 12, 14, 16),
  street, lead unit, status, album class and month, kept in step by a trigger on `reports`. They
  answer the filters status, class, street, unit and a date range (whole months; a range's partial
  edge months, and the reports a unit only cooperates on, are counted from `reports`), for viewers
  who see every report.
- `reports` directly, grouped by the same cell formula, for the filters the aggregates cannot
  answer (a category or item, overdue, the album flag) and for viewers who see only some reports
  (domain/visibility.py): those sets are small, and each filter has an index.
Either way the filter is the API's own ReportFilter (domain/reports.py), so the map and the list
show the same reports.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal_column, or_, select, text
from sqlalchemy.orm import Session, aliased

from ..models import WGS84, Category, Report, ReportUnit, Street, Unit
from ..translations import N_
from .errors import DomainError
from .reports import ReportFilter
from .visibility import Viewer, visible
from .vocabulary import FINISHED_STATUSES, REPORT_STATUSES

STORED_LEVELS = (10, 12, 14, 16)   # migration 0007 (its LEVELS)
CELL_SHIFT = 2                      # a 256 px tile is 2^2 x 2^2 cells of 64 px
POINTS_ZOOM = 17                    # from here on the aggregates are coarser than the screen
FEW = 100                           # a tile with at most this many reports shows them one by one
FEW_CLOSE_IN = 500                  # ... from POINTS_ZOOM on
MAX_ZOOM = 20
MAX_TILES = 400                     # one request: a 4K screen is 15 x 9 tiles
# The months of report_cells are calendar months in this zone (migration 0007's MONTH_TZ). A date
# range is exact whatever the city's zone: only the part outside whole months is read from reports.
MONTH_TZ = ZoneInfo("Asia/Shanghai")
ALL_MONTHS = "-infinity"

_group, _class = aliased(Category), aliased(Category)
_DIGITS = re.compile(r"[0-9]{1,8}")  # ASCII only: str.isdigit() also takes other scripts' digits


class BadMapView(DomainError):
    code = "bad_map_view"
    text = N_("地图范围无效：{problem}")


_PROBLEMS = {
    "z": N_("缩放级别 z 须为 0 到 {max} 的整数。"),
    "tiles": N_("tiles 须为 x0,y0,x1,y1 四个整数（x0≤x1，y0≤y1，在该缩放级别的瓦片范围内）。"),
    "too_many": N_("一次最多请求 {max} 个瓦片。"),
}


def _refuse(kind: str, **params) -> BadMapView:
    from ..translations import Text
    return BadMapView(problem=Text(_PROBLEMS[kind], **params))


@dataclasses.dataclass(frozen=True)
class TileView:
    """Tiles x0..x1, y0..y1 (inclusive) at zoom z."""
    z: int
    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def parse(cls, z: Any, tiles: Any) -> "TileView":
        if not isinstance(z, str) or not _DIGITS.fullmatch(z) or int(z) > MAX_ZOOM:
            raise _refuse("z", max=MAX_ZOOM)
        zoom = int(z)
        parts = tiles.split(",") if isinstance(tiles, str) else []
        if len(parts) != 4 or not all(_DIGITS.fullmatch(p.strip()) for p in parts):
            raise _refuse("tiles")
        x0, y0, x1, y1 = (int(p) for p in parts)
        if not (x0 <= x1 < 2 ** zoom and y0 <= y1 < 2 ** zoom):
            raise _refuse("tiles")
        if (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_TILES:
            raise _refuse("too_many", max=MAX_TILES)
        return cls(zoom, x0, y0, x1, y1)

    def envelope(self):
        """The rectangle in WGS-84 (a Mercator tile is a longitude/latitude rectangle)."""
        west, north = tile_corner(self.z, self.x0, self.y0)
        east, south = tile_corner(self.z, self.x1 + 1, self.y1 + 1)
        return func.ST_MakeEnvelope(west, south, east, north, WGS84)

    def cell_range(self, level: int) -> tuple[int, int, int, int]:
        """The rectangle in cells of `level` (level >= z)."""
        k = CELL_SHIFT + level - self.z
        return self.x0 << k, self.y0 << k, ((self.x1 + 1) << k) - 1, ((self.y1 + 1) << k) - 1


def tile_corner(z: int, x: int, y: int) -> tuple[float, float]:
    """The north-west corner of tile x, y at zoom z, as (lon, lat)."""
    n = 2.0 ** z
    return x / n * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n))))


# --- which filters the aggregates answer ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Plan:
    """A filter as report_cells answers it: its columns and whole months, plus the parts that must
    be counted from reports: a date range's partial edge months, and the reports a unit only
    cooperates on (report_cells count the lead unit). Each part: a ReportFilter and extra conditions."""
    statuses: tuple[str, ...]
    class_id: int | None
    street_id: int | None
    unit_id: int | None
    months: tuple[dt.date | None, dt.date | None] | None  # None: all months (the '-infinity' rows)
    parts: tuple[tuple[ReportFilter, tuple], ...]


def _month_start(moment: dt.datetime) -> dt.datetime:
    local = moment.astimezone(MONTH_TZ)
    return dt.datetime(local.year, local.month, 1, tzinfo=MONTH_TZ)


def _add_month(start: dt.datetime) -> dt.datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _id_of(session: Session, column, *where) -> int:
    found = session.execute(select(column).where(*where)).scalar_one_or_none()
    return -1 if found is None else found  # no such code: nothing matches


def _plan(session: Session, flt: ReportFilter) -> _Plan | None:
    """How report_cells answers `flt`, or None when it cannot (the caller reads reports)."""
    viewer_ok = flt.viewer is None or flt.viewer.sees_everything
    if not viewer_ok or (flt.bbox, flt.reporter_id, flt.album, flt.along) != (None,) * 4 \
            or flt.overdue or flt.ids or flt.open_only:
        return None
    class_id = street_id = unit_id = None
    if flt.category is not None:
        class_id = session.execute(select(Category.id).where(
            Category.code == flt.category, Category.level == "class")).scalar_one_or_none()
        if class_id is None:
            return None  # a category or item: reports, by category_id
    if flt.street is not None:
        street_id = _id_of(session, Street.id, Street.code == flt.street)
    if flt.unit is not None:
        unit_id = _id_of(session, Unit.id, Unit.code == flt.unit)
    months, parts = None, []
    start, end = flt.created_from, flt.created_before
    first = last = None
    if start is not None or end is not None:
        first = start if start is None or _month_start(start) == start else _add_month(_month_start(start))
        last = end if end is None else _month_start(end)  # whole months end here (exclusive)
        if first is not None and last is not None and first >= last:
            return None  # no whole month inside: all of it from reports (a few weeks at most)
        months = (first.astimezone(MONTH_TZ).date() if first else None,
                  _month_start(last - dt.timedelta(days=1)).date() if last else None)
        parts += [(dataclasses.replace(flt, created_from=a, created_before=b), ())
                  for a, b in ((start, first), (last, end)) if a is not None and b is not None and a < b]
    if unit_id is not None:
        # the edges above count lead and cooperating units (ReportFilter.unit); the whole months
        # count the lead unit: add the reports the unit cooperates on in those months
        parts.append((dataclasses.replace(flt, unit=None, created_from=first, created_before=last),
                      (Report.unit_id != unit_id,
                       Report.id.in_(select(ReportUnit.report_id).where(ReportUnit.unit_id == unit_id)))))
    return _Plan(flt.statuses, class_id, street_id, unit_id, months, tuple(parts))


def _cells_where(plan: _Plan) -> tuple[str, dict]:
    sql, params = [], {}
    if plan.months is None:
        sql.append(f"month = '{ALL_MONTHS}'")
    else:
        sql.append(f"month > '{ALL_MONTHS}'")
        if plan.months[0] is not None:
            sql.append("month >= :m0")
            params["m0"] = plan.months[0]
        if plan.months[1] is not None:
            sql.append("month <= :m1")
            params["m1"] = plan.months[1]
    if plan.statuses:
        sql.append("status = ANY(:statuses)")
        params["statuses"] = list(plan.statuses)
    if plan.class_id is not None:
        sql.append("class_id = :class_id")
        params["class_id"] = plan.class_id
    if plan.street_id is not None:
        sql.append("street_id = :street_id")
        params["street_id"] = plan.street_id
    if plan.unit_id is not None:
        sql.append("unit_id = :unit_id")
        params["unit_id"] = plan.unit_id
    return " AND ".join(sql), params


# --- counting per cell ----------------------------------------------------------------------------

class _Cell:
    __slots__ = ("by_status", "n", "sum_lon", "sum_lat")

    def __init__(self):
        self.by_status = [0] * len(REPORT_STATUSES)
        self.n, self.sum_lon, self.sum_lat = 0, 0.0, 0.0

    def add(self, status: str, n: int, sum_lon: float, sum_lat: float):
        self.by_status[_STATUS_INDEX[status]] += n
        self.n += n
        self.sum_lon += sum_lon
        self.sum_lat += sum_lat


_STATUS_INDEX = {s: i for i, s in enumerate(REPORT_STATUSES)}
_LON, _LAT = func.ST_X(Report.geom), func.ST_Y(Report.geom)


def _hints(session: Session, flt: ReportFilter) -> tuple:
    """Conditions equal to parts of flt, written so the planner can use an index: a category is
    resolved to its items' ids first (reports_category)."""
    if flt.category is None:
        return ()
    items = session.execute(
        select(Category.id).join(_group, _group.id == Category.parent_id).join(_class, _class.id == _group.parent_id)
        .where(Category.level == "item", or_(Category.code == flt.category, _group.code == flt.category,
                                             _class.code == flt.category))).scalars().all()
    return (Report.category_id.in_(items or [-1]),)


def _from_reports(session: Session, flt: ReportFilter, view: TileView, grid: dict, extra: tuple = ()):
    """Count flt's reports in the view, per cell of the view's zoom, straight from `reports`."""
    zoom = literal_column(str(int(view.z)))  # the same expression in SELECT and GROUP BY
    gx, gy = func.map_cell_x(_LON, zoom), func.map_cell_y(_LAT, zoom)
    rows = session.execute(
        select(gx, gy, Report.status, func.count(), func.sum(_LON), func.sum(_LAT))
        .where(flt.where(), Report.geom.op("&&")(view.envelope()), *extra, *_hints(session, flt))
        .group_by(gx, gy, Report.status))
    for x, y, status, n, slon, slat in rows:
        grid[(x, y)].add(status, n, slon, slat)


def _from_cells(session: Session, plan: _Plan, view: TileView, grid: dict):
    """The same from report_cells: the stored level at or just below the view's zoom, its cells
    grouped to the view's by an integer shift."""
    level = next(lv for lv in STORED_LEVELS if lv >= view.z) if view.z <= STORED_LEVELS[-1] else None
    if level is None:
        raise AssertionError("from POINTS_ZOOM on the view is read from reports")
    cx0, cy0, cx1, cy1 = view.cell_range(level)
    where, params = _cells_where(plan)
    rows = session.execute(text(f"""
        SELECT cx >> :shift, cy >> :shift, status, sum(n)::bigint, sum(sum_lon), sum(sum_lat)
        FROM report_cells
        WHERE level = :level AND cx BETWEEN :cx0 AND :cx1 AND cy BETWEEN :cy0 AND :cy1 AND {where}
        GROUP BY 1, 2, 3 HAVING sum(n) > 0"""),
        params | {"shift": level - view.z, "level": level, "cx0": cx0, "cx1": cx1, "cy0": cy0, "cy1": cy1})
    for x, y, status, n, slon, slat in rows:
        grid[(x, y)].add(status, n, slon, slat)
    for part, extra in plan.parts:
        _from_reports(session, part, view, grid, extra)


def _points(session: Session, flt: ReportFilter, view: TileView, tiles: list[tuple[int, int]]) -> list:
    """The reports of these tiles one by one: id, lat, lon, status, album class, and its tile (by
    the same formula as the cells, so a point on a tile's edge is where its count was)."""
    if not tiles:
        return []
    envelopes = [Report.geom.op("&&")(TileView(view.z, x, y, x, y).envelope()) for x, y in tiles]
    item = aliased(Category)
    return session.execute(
        select(Report.id, _LAT, _LON, Report.status, _class.code,
               func.map_cell_x(_LON, view.z).op(">>")(CELL_SHIFT), func.map_cell_y(_LAT, view.z).op(">>")(CELL_SHIFT))
        .join(item, item.id == Report.category_id).join(_group, _group.id == item.parent_id)
        .join(_class, _class.id == _group.parent_id)
        .where(flt.where(), or_(*envelopes), *_hints(session, flt)).order_by(Report.id)).all()


def clusters(session: Session, flt: ReportFilter, view: TileView) -> dict[str, Any]:
    """What the map draws for `view`, per tile "x,y": clusters `c` [lat, lon, count, counts per
    status in REPORT_STATUSES order] and single reports `r` [id, lat, lon, status index, class]."""
    grid: dict[tuple[int, int], _Cell] = defaultdict(_Cell)
    plan = _plan(session, flt) if view.z < POINTS_ZOOM else None
    if plan is not None:
        _from_cells(session, plan, view, grid)
    else:
        _from_reports(session, flt, view, grid)
    cx0, cy0, cx1, cy1 = view.cell_range(view.z)
    per_tile: dict[tuple[int, int], list] = defaultdict(list)
    for (x, y), cell in grid.items():
        if cx0 <= x <= cx1 and cy0 <= y <= cy1 and cell.n > 0:  # && also takes points on the far edge
            per_tile[(x >> CELL_SHIFT, y >> CELL_SHIFT)].append(cell)
    few = FEW_CLOSE_IN if view.z >= POINTS_ZOOM else FEW
    sparse = {t for t, cells in per_tile.items() if sum(c.n for c in cells) <= few}
    out: dict[str, dict] = {}
    for (tx, ty), cells in per_tile.items():
        if (tx, ty) not in sparse:
            out[f"{tx},{ty}"] = {"c": [[round(c.sum_lat / c.n, 6), round(c.sum_lon / c.n, 6), c.n, c.by_status]
                                       for c in cells], "r": []}
    for rid, lat, lon, status, klass, tx, ty in _points(session, flt, view, sorted(sparse)):
        tile = (tx, ty)
        if tile in sparse:  # && also takes points on the far edge, which belong to the next tile
            out.setdefault(f"{tile[0]},{tile[1]}", {"c": [], "r": []})["r"].append(
                [rid, round(lat, 6), round(lon, 6), _STATUS_INDEX[status], klass])
    return out


# --- totals ---------------------------------------------------------------------------------------

def count(session: Session, flt: ReportFilter) -> int:
    """How many reports match `flt` in the whole city: exact, from the coarsest aggregates when
    they answer the filter."""
    plan = _plan(session, flt)
    if plan is None:
        return session.execute(select(func.count()).select_from(Report)
                               .where(flt.where(), *_hints(session, flt))).scalar_one()
    where, params = _cells_where(plan)
    total = session.execute(text(f"SELECT coalesce(sum(n), 0) FROM report_cells WHERE level = :level AND {where}"),
                            params | {"level": STORED_LEVELS[0]}).scalar_one()
    for part, extra in plan.parts:
        total += session.execute(select(func.count()).select_from(Report).where(part.where(), *extra)).scalar_one()
    return int(total)


def open_by_street(session: Session, viewer: Viewer) -> dict[str, int]:
    """Open problems (status not finished) per street code, as this viewer may count them."""
    if viewer.sees_everything:
        rows = session.execute(text("""
            SELECT s.code, sum(c.n)::bigint FROM report_cells c JOIN streets s ON s.id = c.street_id
            WHERE c.level = :level AND c.month = '-infinity' AND NOT c.status = ANY(:finished)
            GROUP BY s.code HAVING sum(c.n) > 0"""),
            {"level": STORED_LEVELS[0], "finished": list(FINISHED_STATUSES)})
    else:
        rows = session.execute(
            select(Street.code, func.count()).join(Report, Report.street_id == Street.id)
            .where(visible(viewer), Report.status.notin_(FINISHED_STATUSES)).group_by(Street.code))
    return {code: int(n) for code, n in rows}


def rebuild(session: Session) -> int:
    """Recount report_cells from reports (after a bulk load with the trigger disabled); returns
    the number of aggregate rows."""
    return int(session.execute(text("SELECT report_cells_rebuild()")).scalar_one())
