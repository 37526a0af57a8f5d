"""What point did the user mean? Range checks, swapped axes, the city extent, GCJ-02 -> WGS-84.

GCJ-02 is the offset datum every Chinese web map (AMap, Tencent/WeChat) uses; in Jinzhou it puts a
point roughly 500 m east-north-east of its WGS-84 position. The forward transform below is the
widely published one; there is no closed-form inverse, so we iterate the forward transform
(fixed-point on the offset) until it reproduces the input to well under a millimetre.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BadCoordinates, OutsideCity, SwappedCoordinates, UnknownCrs

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared

BBox = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat


@dataclass(frozen=True)
class LonLat:
    lon: float
    lat: float


def _outside_china(lon: float, lat: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if _outside_china(lon, lat):
        return lon, lat
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float, *, tol_deg: float = 1e-9, max_iter: int = 30) -> tuple[float, float]:
    """Iterative inverse: converges to ~1e-9 degrees (~0.1 mm) in a handful of steps."""
    if _outside_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(max_iter):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < tol_deg and abs(dlat) < tol_deg:
            break
    return wlon, wlat


def _inside(lon: float, lat: float, bbox: BBox) -> bool:
    return bbox[0] <= lon <= bbox[2] and bbox[1] <= lat <= bbox[3]


def to_wgs84(lon: float, lat: float, crs: str, city_bbox: BBox) -> LonLat:
    """The WGS-84 point a user meant, or a DomainError saying precisely what is wrong."""
    crs = (crs or "wgs84").strip().lower()
    if crs not in ("wgs84", "gcj02"):
        raise UnknownCrs(crs=crs)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BadCoordinates(lat=lat, lon=lon)
    in_range = -90 <= lat <= 90 and -180 <= lon <= 180
    # Judge "swapped" on the raw numbers: GCJ-02 and WGS-84 differ by far less than the city is wide.
    if not _inside(lon, lat, city_bbox) and -90 <= lon <= 90 and _inside(lat, lon, city_bbox):
        raise SwappedCoordinates(lat=lat, lon=lon)
    if not in_range:
        raise BadCoordinates(lat=lat, lon=lon)
    if crs == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    if not _inside(lon, lat, city_bbox):
        raise OutsideCity(lat=round(lat, 6), lon=round(lon, 6))
    return LonLat(lon, lat)
