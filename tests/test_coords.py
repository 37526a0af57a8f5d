"""GCJ-02 conversion and coordinate sanity checks (no database)."""
import pytest
from hypothesis import given, settings, strategies as st
from pyproj import Geod

from geoapp.domain.coords import gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02
from geoapp.domain.errors import BadCoordinates, OutsideCity, SwappedCoordinates, UnknownCrs

CITY = (120.85, 40.90, 121.45, 41.35)
GEOD = Geod(ellps="WGS84")


def metres(a, b):
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def test_gcj02_offset_in_jinzhou_is_about_half_a_kilometre_east_north_east():
    wgs = (121.124, 41.114)
    gcj = wgs84_to_gcj02(*wgs)
    azimuth, _, dist = GEOD.inv(wgs[0], wgs[1], gcj[0], gcj[1])
    assert 400 < dist < 600
    assert 30 < azimuth < 90  # east-north-east


@settings(max_examples=300, deadline=None)
@given(st.floats(120.99, 121.26), st.floats(41.05, 41.20))
def test_inverse_is_accurate_to_well_under_half_a_metre(lon, lat):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres((lon, lat), back) < 0.05


def test_outside_china_is_not_shifted():
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


def test_to_wgs84_converts_gcj02_input():
    gcj = wgs84_to_gcj02(121.12, 41.116)
    p = to_wgs84(gcj[0], gcj[1], "gcj02", CITY)
    assert metres((p.lon, p.lat), (121.12, 41.116)) < 0.05


def test_wgs84_input_is_kept():
    p = to_wgs84(121.12, 41.116, "WGS84", CITY)
    assert (p.lon, p.lat) == (121.12, 41.116)


@pytest.mark.parametrize("lon, lat", [(121.12, 95.0), (190.0, 41.1), (float("nan"), 41.1), (121.1, float("inf"))])
def test_out_of_range_values_are_refused(lon, lat):
    with pytest.raises(BadCoordinates):
        to_wgs84(lon, lat, "wgs84", CITY)


def test_swapped_latitude_and_longitude_are_recognised():
    with pytest.raises(SwappedCoordinates) as err:
        to_wgs84(41.116, 121.12, "wgs84", CITY)  # lon=41.116, lat=121.12
    assert "swapped" in err.value.message("en")
    assert "填反" in err.value.message("zh")


def test_points_outside_the_city_are_refused():
    with pytest.raises(OutsideCity):
        to_wgs84(116.39, 39.91, "wgs84", CITY)  # Beijing


def test_unknown_crs_is_refused():
    with pytest.raises(UnknownCrs):
        to_wgs84(121.12, 41.116, "bd09", CITY)
