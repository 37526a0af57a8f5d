"""The key streets and responsibility zones as GeoJSON (RFC 7946), built by PostGIS."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

_STREETS = text("""
SELECT json_build_object(
  'type', 'FeatureCollection',
  'features', COALESCE(json_agg(json_build_object(
     'type', 'Feature', 'id', s.id,
     'geometry', ST_AsGeoJSON(s.geom, 6)::json,
     'properties', json_build_object(
        'id', s.id, 'code', s.code, 'name', s.name, 'name_en', s.name_en, 'district', s.district,
        'from', s.from_name, 'to', s.to_name, 'length_m', round(s.length_m::numeric, 1),
        'representative', CASE WHEN r.id IS NULL THEN NULL
                          ELSE json_build_object('code', r.code, 'name', r.name, 'kind', r.kind,
                                                 'monthly_quota', r.monthly_quota) END)
  ) ORDER BY s.code), '[]'::json))
FROM streets s LEFT JOIN representatives r ON r.street_id = s.id
""")

_ZONES = text("""
SELECT json_build_object(
  'type', 'FeatureCollection',
  'features', COALESCE(json_agg(json_build_object(
     'type', 'Feature', 'id', z.id,
     'geometry', ST_AsGeoJSON(z.geom, 6)::json,
     'properties', json_build_object('code', z.code, 'name', z.name, 'district_code', z.district_code)
  ) ORDER BY z.code), '[]'::json))
FROM zones z
""")


def streets_geojson(session: Session) -> dict:
    return session.execute(_STREETS).scalar_one()


def zones_geojson(session: Session) -> dict:
    return session.execute(_ZONES).scalar_one()
