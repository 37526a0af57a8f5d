"""The album's small maps: the street and its neighbours around each problem, drawn from our own
geometry as SVG in the metric CRS (EPSG:4549) — no tile server, nothing fetched.

One query for all the album's problems (set-based): for each point a square window `window_m` wide
centred on it, the streets that cross the window clipped to it and translated so the window's
lower-left corner is (0, 0), as SVG path data by PostGIS (ST_AsSVG: y is negated, so the SVG's
viewBox is 0 -w w w), and for each street a label place on its longest piece inside the window (of
the quarter points, the one farthest from the problem, so the name does not hide the marker) with
the direction of the street there. The SVG is built here as text; every name in it is escaped.
"""
from __future__ import annotations

import math
from typing import Iterable
from xml.sax.saxutils import escape, quoteattr

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ..models import METRIC_SRID

DEFAULT_WINDOW_M = 300.0

_WINDOWS = text(f"""
WITH pts AS (
  SELECT r.id, r.street_id, ST_X(r.geom_m) AS x, ST_Y(r.geom_m) AS y,
         ST_MakeEnvelope(ST_X(r.geom_m) - :half, ST_Y(r.geom_m) - :half,
                         ST_X(r.geom_m) + :half, ST_Y(r.geom_m) + :half, {METRIC_SRID}) AS box
  FROM reports r WHERE r.id = ANY(:ids)
), clipped AS (
  SELECT p.id, p.x, p.y, s.id = p.street_id AS own, s.code, s.name, s.name_en,
         ST_Translate(ST_Intersection(s.geom_m, p.box), -(p.x - :half), -(p.y - :half)) AS g
  FROM pts p JOIN streets s ON ST_Intersects(s.geom_m, p.box)
)
SELECT c.id, c.own, c.code, c.name, c.name_en, ST_AsSVG(c.g, 0, 1) AS path,
       lbl.lx, lbl.ly, lbl.dx, lbl.dy
FROM clipped c
LEFT JOIN LATERAL (
  SELECT ST_X(q) AS lx, ST_Y(q) AS ly,
         ST_X(ST_LineInterpolatePoint(part, LEAST(f + 0.05, 1))) - ST_X(ST_LineInterpolatePoint(part, GREATEST(f - 0.05, 0))) AS dx,
         ST_Y(ST_LineInterpolatePoint(part, LEAST(f + 0.05, 1))) - ST_Y(ST_LineInterpolatePoint(part, GREATEST(f - 0.05, 0))) AS dy
  FROM (SELECT d.geom AS part FROM ST_Dump(ST_LineMerge(ST_CollectionExtract(c.g, 2))) d
        ORDER BY ST_Length(d.geom) DESC LIMIT 1) longest,
       LATERAL unnest(ARRAY[0.25, 0.5, 0.75]) AS f,
       LATERAL ST_LineInterpolatePoint(part, f) AS q
  WHERE ST_Length(part) >= :min_label_m
  ORDER BY ST_Distance(q, ST_SetSRID(ST_MakePoint(:half, :half), {METRIC_SRID})) DESC
  LIMIT 1
) lbl ON true
ORDER BY c.id, c.own, c.code
""").bindparams(bindparam("ids", type_=ARRAY(BigInteger)))


def street_windows(session: Session, report_ids: Iterable[int], window_m: float = DEFAULT_WINDOW_M
                   ) -> dict[int, list[dict]]:
    """{report_id: [{own, code, name, name_en, path, label: (x, y, angle) | None}, …]} in window coordinates."""
    ids = list(report_ids)
    found: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.execute(_WINDOWS, {"ids": ids, "half": window_m / 2, "min_label_m": window_m / 5}).all()
    for r in rows:
        if not r.path:
            continue
        label = None
        if r.lx is not None:
            angle = math.degrees(math.atan2(-(r.dy or 0.0), r.dx or 1.0))  # SVG's y points down
            if angle > 90:
                angle -= 180
            elif angle < -90:
                angle += 180
            label = (round(r.lx, 1), round(-r.ly, 1), round(angle, 1))
        found[r.id].append({"own": r.own, "code": r.code, "name": r.name, "name_en": r.name_en,
                            "path": r.path, "label": label})
    return found


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def svg(streets: list[dict], window_m: float = DEFAULT_WINDOW_M, *, lang: str = "zh",
        north: str = "北", scale_label: str = "100 米") -> str:
    """One small map as an SVG document fragment (inline in the album's HTML): the streets (the
    problem's own darker and wider), their names, the problem's point, a 100 m scale bar and north."""
    w = window_m
    half = w / 2
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="album-map" viewBox="0 {_fmt(-w)} {_fmt(w)} {_fmt(w)}" '
           f'width="100%" height="100%" role="img">',
           f'<rect x="0" y="{_fmt(-w)}" width="{_fmt(w)}" height="{_fmt(w)}" fill="#f4f1ea"/>']
    ordered = sorted(streets, key=lambda s: s["own"])  # the problem's street drawn last, on top
    for s in ordered:
        out.append(f'<path d={quoteattr(s["path"])} fill="none" stroke="#ffffff" stroke-width="{22 if s["own"] else 16}" '
                   f'stroke-linecap="round" stroke-linejoin="round"/>')
    for s in ordered:
        colour, width = ("#b42318", 10) if s["own"] else ("#8a8f98", 7)
        out.append(f'<path d={quoteattr(s["path"])} fill="none" stroke="{colour}" stroke-width="{width}" '
                   f'stroke-linecap="round" stroke-linejoin="round"/>')
    for s in ordered:
        if s["label"] is None:
            continue
        x, y, angle = s["label"]
        name = s["name_en"] if lang == "en" and s.get("name_en") else s["name"]
        common = (f'x="{_fmt(x)}" y="{_fmt(y + 5)}" transform="rotate({_fmt(angle)} {_fmt(x)} {_fmt(y)})" '
                  f'text-anchor="middle" font-size="{15 if s["own"] else 13}" '
                  f'font-family="Noto Sans CJK SC, sans-serif" font-weight="{700 if s["own"] else 400}"')
        # a white halo under the name, then the name (two elements: not every renderer knows paint-order)
        out.append(f'<text {common} fill="#ffffff" stroke="#ffffff" stroke-width="5" stroke-linejoin="round">'
                   f'{escape(name)}</text><text {common} fill="#1f2328">{escape(name)}</text>')
    # the problem: a marker at the centre of the window
    out.append(f'<circle cx="{_fmt(half)}" cy="{_fmt(-half)}" r="13" fill="#ffffff" opacity="0.9"/>'
               f'<circle cx="{_fmt(half)}" cy="{_fmt(-half)}" r="9" fill="#d1242f" stroke="#ffffff" stroke-width="3"/>')
    # scale bar (100 m) and north
    out.append(f'<g fill="#1f2328" font-size="12" font-family="Noto Sans CJK SC, sans-serif">'
               f'<rect x="12" y="-22" width="100" height="5" fill="#1f2328"/>'
               f'<text x="12" y="-28">{escape(scale_label)}</text>'
               f'<path d="M {_fmt(w - 20)} {_fmt(-w + 12)} l 7 18 l -7 -5 l -7 5 z"/>'
               f'<text x="{_fmt(w - 20)}" y="{_fmt(-w + 46)}" text-anchor="middle">{escape(north)}</text></g>')
    out.append(f'<rect x="0.5" y="{_fmt(-w + 0.5)}" width="{_fmt(w - 1)}" height="{_fmt(w - 1)}" fill="none" '
               f'stroke="#c9c4b8" stroke-width="1"/>')
    out.append("</svg>")
    return "".join(out)
