"""Snapping to the nearest key street, measured in metres in the metric CRS, against PostGIS."""
import pytest

from geoapp.domain.errors import OffStreet
from geoapp.domain.snapping import nearest_street, snap_to_street


@pytest.fixture
def session(db):
    s = db.sessionmaker()
    yield s
    s.close()


@pytest.mark.parametrize("offset", [0.0, 29.0, -29.0])
def test_points_within_tolerance_snap_to_the_street(session, streets, offset):
    lon, lat = streets.point("S03", 0.4, offset)
    snap = snap_to_street(session, lon, lat, 30.0)
    assert snap.street_code == "S03"
    assert snap.distance_m == pytest.approx(abs(offset), abs=0.05)


def test_position_along_the_street_is_metres_from_its_start(session, streets):
    line = streets.line("S03")
    lon, lat = streets.point("S03", 0.25, 10.0)
    snap = snap_to_street(session, lon, lat, 30.0)
    assert snap.position_m == pytest.approx(0.25 * line.length, abs=0.5)


def test_31_metres_off_is_refused_with_distance_and_street_name(session, streets):
    lon, lat = streets.point("S03", 0.4, 31.0)
    with pytest.raises(OffStreet) as err:
        snap_to_street(session, lon, lat, 30.0)
    e = err.value
    assert e.params["street"] == "解放路"
    assert e.params["distance_m"] == pytest.approx(31.0, abs=0.1)
    assert e.message("en") == "31 m from Jiefang Road; reports must be within 30 m of a key street."
    assert "解放路" in e.message("zh") and "31" in e.message("zh")


def test_far_point_names_the_distance(session, streets):
    lon, lat = streets.point("S03", 0.4, 84.0)
    with pytest.raises(OffStreet) as err:
        snap_to_street(session, lon, lat, 30.0)
    assert err.value.message("en").startswith("84 m from Jiefang Road")


def test_tolerance_is_a_parameter(session, streets):
    lon, lat = streets.point("S03", 0.4, 45.0)
    assert snap_to_street(session, lon, lat, 50.0).street_code == "S03"


def test_a_point_between_two_parallel_streets_goes_to_the_nearer(session, streets):
    # 解放路 (S03) and 重庆路 (S11) run parallel ~670 m apart; step across from one to the other
    from pyproj import Transformer
    from shapely.geometry import Point

    to_wgs = Transformer.from_crs(4549, 4326, always_xy=True).transform
    jiefang, chongqing = streets.line("S03"), streets.line("S11")
    start = jiefang.interpolate(0.2, normalized=True)  # between 汉口街 and 人民街, away from cross streets
    end = chongqing.interpolate(chongqing.project(start))
    gap = start.distance(end)
    assert 500 < gap < 800  # the premise: two distinct parallel streets
    for share, expected in ((0.45, "S03"), (0.55, "S11")):
        p = Point(start.x + (end.x - start.x) * share, start.y + (end.y - start.y) * share)
        snap = nearest_street(session, *to_wgs(p.x, p.y))
        assert snap.street_code == expected
        assert snap.distance_m == pytest.approx(gap * min(share, 1 - share), abs=0.5)
