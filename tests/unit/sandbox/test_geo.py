"""sandbox.geo: forward datum conversions against published references, places, addresses."""

from __future__ import annotations

import math
import random

import pytest

from sandbox import geo

# --- GCJ-02 / BD-09: reference values published with wandergis/coordtransform and gcoord -------


def test_wgs84_to_gcj02_matches_coordtransform_reference() -> None:
    lng, lat = geo.wgs84_to_gcj02(116.404, 39.915)
    assert lng == pytest.approx(116.41024449916938, abs=1e-10)
    assert lat == pytest.approx(39.91640428150164, abs=1e-10)


def test_gcj02_to_bd09_matches_coordtransform_reference() -> None:
    lng, lat = geo.gcj02_to_bd09(116.404, 39.915)
    assert lng == pytest.approx(116.41036949371029, abs=1e-10)
    assert lat == pytest.approx(39.92133699351021, abs=1e-10)


def test_gcj02_to_bd09_matches_gcoord_reference() -> None:
    lng, lat = geo.gcj02_to_bd09(123, 45)
    assert lng == pytest.approx(123.00636499, abs=1e-7)
    assert lat == pytest.approx(45.00636899, abs=1e-7)


def test_outside_china_is_not_shifted() -> None:
    assert geo.wgs84_to_gcj02(-0.1276, 51.5072) == (-0.1276, 51.5072)


def test_district_offsets_have_the_known_size_and_direction() -> None:
    # In Shanghai GCJ-02 lies ~450 m east and ~200 m south of WGS-84; BD-09 ~1 km further NE.
    wgs = (121.4532, 31.1921)
    gcj = geo.wgs84_to_gcj02(*wgs)
    bd = geo.wgs84_to_bd09(*wgs)
    assert 0.0040 < gcj[0] - wgs[0] < 0.0050
    assert -0.0025 < gcj[1] - wgs[1] < -0.0015
    assert 400 < geo.distance_m(*wgs, *gcj) < 600
    assert bd[0] > gcj[0] and bd[1] > gcj[1]
    assert 600 < geo.distance_m(*gcj, *bd) < 1000


# --- EPSG:4549 against an independent Krüger-series Gauss-Krüger on GRS80 (CGCS2000) ------------

def _gauss_kruger(lng: float, lat: float, lon0: float = 120.0) -> tuple[float, float]:
    a, f = 6378137.0, 1 / 298.257222101
    n = f / (2 - f)
    big_a = a / (1 + n) * (1 + n**2 / 4 + n**4 / 64)
    alpha = (n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16, 13 * n**2 / 48 - 3 * n**3 / 5, 61 * n**3 / 240)
    phi, dlam = math.radians(lat), math.radians(lng - lon0)
    c = 2 * math.sqrt(n) / (1 + n)
    t = math.sinh(math.atanh(math.sin(phi)) - c * math.atanh(c * math.sin(phi)))
    xi = math.atan2(t, math.cos(dlam))
    eta = math.atanh(math.sin(dlam) / math.sqrt(1 + t * t))
    easting = eta + sum(al * math.cos(2 * j * xi) * math.sinh(2 * j * eta)
                        for j, al in enumerate(alpha, 1))
    northing = xi + sum(al * math.sin(2 * j * xi) * math.cosh(2 * j * eta)
                        for j, al in enumerate(alpha, 1))
    return big_a * northing, 500000.0 + big_a * easting


@pytest.mark.parametrize("lng, lat", [(121.4532, 31.1921), (121.435, 31.180), (121.475, 31.205),
                                      (120.0, 31.0), (118.6, 32.1)])
def test_epsg4549_agrees_with_independent_series(lng: float, lat: float) -> None:
    x, y = geo.wgs84_to_epsg4549(lng, lat)
    ref_x, ref_y = _gauss_kruger(lng, lat)
    assert x == pytest.approx(ref_x, abs=0.01)
    assert y == pytest.approx(ref_y, abs=0.01)


def test_epsg4549_is_northing_then_easting() -> None:
    x, y = geo.wgs84_to_epsg4549(121.4532, 31.1921)
    assert 3_400_000 < x < 3_500_000  # ~31° north of the equator
    assert 600_000 < y < 660_000  # ~1.45° east of 120°E, with the 500 km false easting
    assert geo.wgs84_to_epsg4549(120.0, 31.0)[1] == pytest.approx(500000.0, abs=1e-6)


# --- distances and jitter ---------------------------------------------------------------------

def test_distance_and_offset_agree() -> None:
    assert geo.distance_m(121.45, 31.0, 121.45, 32.0) == pytest.approx(111_195, rel=1e-3)
    moved = geo.offset_m(121.45, 31.19, 300.0, -400.0)
    assert geo.distance_m(121.45, 31.19, *moved) == pytest.approx(500.0, rel=1e-3)


def test_jitter_stays_within_radius_and_spreads() -> None:
    rng = random.Random(4)
    points = [geo.jitter(121.4532, 31.1921, 50.0, rng) for _ in range(300)]
    distances = [geo.distance_m(121.4532, 31.1921, *p) for p in points]
    assert max(distances) <= 50.0 + 1e-6
    assert max(distances) > 40.0 and min(distances) < 15.0


# --- places and addresses -----------------------------------------------------------------------

def test_places_cover_the_district() -> None:
    assert len(geo.PLACES) >= 40
    min_lng, min_lat, max_lng, max_lat = geo.BOUNDS
    for place in geo.PLACES:
        points = [(place.lng, place.lat)] + ([place.end] if place.end else [])
        for lng, lat in points:
            assert min_lng <= lng <= max_lng and min_lat <= lat <= max_lat, place
        assert place.street in geo.STREETS
        if place.kind == "road":
            assert place.end is not None and place.numbers[0] < place.numbers[1]
        else:
            assert place.buildings > 0
    names = {p.name for p in geo.PLACES}
    for road in ("斜土路", "中山南二路", "宛平南路", "零陵路", "大木桥路", "肇嘉浜路", "小木桥路",
                 "东安路", "瑞金南路", "枫林路", "日晖新城", "日晖四村", "斜土小区"):
        assert road in names


def test_each_community_belongs_to_one_street() -> None:
    owners: dict[str, set[str]] = {}
    for place in geo.PLACES:
        owners.setdefault(place.community, set()).add(place.street)
    assert all(len(streets) == 1 for streets in owners.values()), owners
    assert set(geo.communities()) == set(geo.STREETS)


def test_house_numbers_run_along_the_road() -> None:
    low, mid, high = geo.spot_at("斜土路", 900), geo.spot_at("斜土路", 1175), geo.spot_at("斜土路", 1280)
    assert low.lng > mid.lng > high.lng  # numbers grow westwards on this segment
    assert geo.distance_m(mid.lng, mid.lat, 121.4532, 31.1921) < 200  # the spec's 斜土路1175号
    with pytest.raises(KeyError):
        geo.spot_at("斜土路", 99999)


def test_address_wordings() -> None:
    road = geo.spot_at("斜土路", 1175)
    assert geo.format_address(road, "gate") == "斜土路1175号门口"
    assert geo.format_address(road, "near") == "斜土路1175号附近"
    assert geo.format_address(road, "district") == "徐汇区斜土路1175号"
    assert geo.format_address(road, "cross") == "斜土路近东安路"
    assert geo.format_address(road, "full") == "上海市徐汇区斜土路街道斜土路1175号"
    compound = geo.spot_at("日晖新城", 3)
    assert geo.format_address(compound, "building") == "日晖新城小区3号楼旁"
    assert geo.format_address(compound, "downstairs") == "日晖新城3号楼楼下"
    assert geo.format_address(geo.spot_at("日晖四村", 7), "building") == "日晖四村7号楼旁"
    assert geo.canonical_address(compound) == "徐汇区日晖新城3号楼"
    with pytest.raises(ValueError):
        geo.format_address(road, "poetic")


def test_random_spots_are_reproducible_and_addressable() -> None:
    assert geo.random_spot(random.Random(9)) == geo.random_spot(random.Random(9))
    rng = random.Random(11)
    for _ in range(200):
        spot = geo.random_spot(rng)
        assert geo.BOUNDS[0] - 0.002 < spot.lng < geo.BOUNDS[2] + 0.002
        assert geo.BOUNDS[1] - 0.002 < spot.lat < geo.BOUNDS[3] + 0.002
        address = geo.random_address(spot, rng)
        assert spot.place.name in address
    roads = {geo.random_spot(rng, "road").place.kind for _ in range(30)}
    assert roads == {"road"}
