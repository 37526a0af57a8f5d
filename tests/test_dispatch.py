"""Every path of the dispatch rule, against the loaded gis_data/ and PostGIS."""
import json

import pytest
from sqlalchemy import text

from geoapp.config import PROJECT_ROOT
from geoapp.domain.dispatch import CategoryItem, dispatch_unit_for
from geoapp.domain.errors import NoHandlingUnit
from geoapp.domain.intake import find_item

ZONES = {f["properties"]["id"]: f["properties"]["units"]
         for f in json.loads((PROJECT_ROOT / "gis_data/zones.geojson").read_text())["features"]}
OVERRIDES = {f["properties"]["id"]: f["properties"]["overrides"]
             for f in json.loads((PROJECT_ROOT / "gis_data/streets.geojson").read_text())["features"]}


@pytest.fixture
def session(db):
    s = db.sessionmaker()
    yield s
    s.rollback()
    s.close()


def zone_at(session, lon, lat) -> str:
    return session.execute(text(
        "SELECT code FROM zones WHERE ST_Covers(geom_m, ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 4549))"),
        {"x": lon, "y": lat}).scalar_one()


def test_street_override_beats_the_zone(session, streets):
    assert OVERRIDES["S03"] == {"area_construction": "M01"}  # 解放路 is maintained by the city
    item = find_item(session, "0102")  # 人行道破损 -> area_construction
    lon, lat = streets.point("S03", 0.3, 5)
    d = dispatch_unit_for(session, item, streets.street_id("S03"), lon, lat)
    assert (d.unit_code, d.rule) == ("M01", "street_override")
    assert "解放路" in d.reason and d.unit_name in d.reason


@pytest.mark.parametrize("street, fraction", [("S11", 0.5), ("S15", 0.8), ("S22", 0.5)])
def test_zone_names_the_unit_for_streets_without_override(session, streets, street, fraction):
    assert "area_construction" not in OVERRIDES[street]
    item = find_item(session, "0102")
    lon, lat = streets.point(street, fraction, 8)
    zone = zone_at(session, lon, lat)
    d = dispatch_unit_for(session, item, streets.street_id(street), lon, lat)
    assert d.rule == "zone"
    assert d.unit_code == ZONES[zone]["area_construction"]
    assert d.reason.startswith("问题类别「0102")


def test_different_zones_give_different_units(session, streets):
    item = find_item(session, "0102")
    west = streets.point("S15", 0.05, 5)   # 南京路 near 人民街 (古塔区)
    east = streets.point("S15", 0.95, 5)   # 南京路 near 广州街 (凌河区)
    a = dispatch_unit_for(session, item, streets.street_id("S15"), *west)
    b = dispatch_unit_for(session, item, streets.street_id("S15"), *east)
    assert zone_at(session, *west) != zone_at(session, *east)
    assert a.unit_code != b.unit_code


def test_a_city_wide_type_goes_to_its_department_in_every_zone(session, streets):
    item = find_item(session, "0401")  # 暴露垃圾 -> sanitation
    for street in ("S11", "S15", "S05"):
        d = dispatch_unit_for(session, item, streets.street_id(street), *streets.point(street, 0.5, 3))
        assert d.unit_code == ZONES["Z-GT"]["sanitation"]


def test_a_point_outside_every_zone_takes_the_zone_under_the_street(session, streets):
    lon, lat = streets.point("S11", 0.5, 20)
    # carve a 10 m hole in the zones around the point (rolled back after the test)
    session.execute(text("""
        UPDATE zones SET geom = ST_Multi(ST_Difference(geom,
            ST_Transform(ST_Buffer(ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 4549), 10), 4326)))"""),
        {"x": lon, "y": lat})
    item = find_item(session, "0102")
    d = dispatch_unit_for(session, item, streets.street_id("S11"), lon, lat)
    assert d.rule == "zone_of_street"
    assert d.unit_code == ZONES["Z-GT"]["area_construction"]
    assert "边界外" in d.reason


def test_no_unit_for_the_type_is_a_clear_error(session, streets):
    item = CategoryItem(id=0, code="9999", name="不存在", unit_type="no_such_type")
    with pytest.raises(NoHandlingUnit) as err:
        dispatch_unit_for(session, item, streets.street_id("S11"), *streets.point("S11", 0.5))
    assert "no_such_type" in err.value.message("en")
