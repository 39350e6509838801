"""Datum conversions: round trips (hypothesis), published reference points, EPSG:4549 axes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import datum
from tests.unit.mappings.payloads import haversine_m

SHANGHAI = {"lng": (120.85, 122.20), "lat": (30.67, 31.88)}
MAINLAND = {"lng": (73.5, 135.0), "lat": (18.0, 53.5)}


def _points(box: dict[str, tuple[float, float]]) -> st.SearchStrategy[tuple[float, float]]:
    return st.tuples(st.floats(*box["lng"], allow_nan=False), st.floats(*box["lat"], allow_nan=False))


@pytest.mark.parametrize("box", [SHANGHAI, MAINLAND], ids=["shanghai", "mainland"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_wgs_gcj_wgs_round_trip_within_half_a_metre(box: dict[str, tuple[float, float]],
                                                     data: st.DataObject) -> None:
    lng, lat = data.draw(_points(box))
    gcj = datum.wgs84_to_gcj02(lng, lat)
    assert haversine_m(lng, lat, *gcj) > 1.0  # the offset really applies inside China
    back = datum.gcj02_to_wgs84(*gcj)
    assert haversine_m(lng, lat, *back) < 0.5


@pytest.mark.parametrize("box", [SHANGHAI, MAINLAND], ids=["shanghai", "mainland"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_wgs_bd_wgs_round_trip_within_half_a_metre(box: dict[str, tuple[float, float]],
                                                   data: st.DataObject) -> None:
    lng, lat = data.draw(_points(box))
    back = datum.bd09_to_wgs84(*datum.wgs84_to_bd09(lng, lat))
    assert haversine_m(lng, lat, *back) < 0.5


@pytest.mark.parametrize("box", [SHANGHAI, MAINLAND], ids=["shanghai", "mainland"])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_wgs_epsg4549_wgs_round_trip_within_half_a_metre(box: dict[str, tuple[float, float]],
                                                         data: st.DataObject) -> None:
    lng, lat = data.draw(_points(box))
    x, y = datum.wgs84_to_epsg4549(lng, lat)
    back = datum.epsg4549_to_wgs84(x, y)
    assert haversine_m(lng, lat, *back) < 0.5


@settings(max_examples=200, deadline=None)
@given(point=_points(MAINLAND))
def test_gcj_inverse_converges_below_1e7_degrees(point: tuple[float, float]) -> None:
    gcj = datum.wgs84_to_gcj02(*point)
    again = datum.wgs84_to_gcj02(*datum.gcj02_to_wgs84(*gcj))
    assert abs(again[0] - gcj[0]) < 1e-7 and abs(again[1] - gcj[1]) < 1e-7


# Reference values from googollee/eviltransform (python/test.py, TESTS: wgsLat, wgsLng,
# gcjLat, gcjLng), computed there with the published GCJ-02 formula.
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),    # shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),    # shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),    # beijing
]


@pytest.mark.parametrize(("wgs_lat", "wgs_lng", "gcj_lat", "gcj_lng"), EVILTRANSFORM)
def test_gcj_reference_points(wgs_lat: float, wgs_lng: float, gcj_lat: float, gcj_lng: float) -> None:
    assert datum.wgs84_to_gcj02(wgs_lng, wgs_lat) == pytest.approx((gcj_lng, gcj_lat), abs=1e-8)
    back = datum.gcj02_to_wgs84(gcj_lng, gcj_lat)
    assert haversine_m(wgs_lng, wgs_lat, *back) < 0.01


def test_bd_reference_point() -> None:
    # Reference: coordtransform_rs (Rust port of wandergis/coordtransform) unit tests, input
    # (116.404, 39.915). Its bd09_to_gcj02 is the one-step closed form; ours is refined to an
    # exact inverse, so the two agree to a few centimetres, not bit for bit.
    assert datum.gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021),
                                                                 abs=1e-9)
    gcj = datum.bd09_to_gcj02(116.404, 39.915)
    assert haversine_m(*gcj, 116.39762729119315, 39.90865673957631) < 0.1
    assert datum.gcj02_to_bd09(*gcj) == pytest.approx((116.404, 39.915), abs=1e-9)
    assert datum.wgs84_to_gcj02(116.404, 39.915) == pytest.approx((116.41024449916938, 39.91640428150164),
                                                                  abs=1e-9)


def test_outside_china_is_not_offset_for_gcj() -> None:
    paris = (2.3522, 48.8566)
    assert datum.wgs84_to_gcj02(*paris) == paris
    assert datum.gcj02_to_wgs84(*paris) == paris
    assert datum.out_of_china(*paris) and not datum.out_of_china(121.45, 31.19)


def _meridian_arc(lat_deg: float) -> float:
    """Meridian distance from the equator on GRS80/CGCS2000 (Snyder, Map Projections — A
    Working Manual, USGS PP 1395, eq. 3-21); exact to well under a millimetre."""
    a, f = 6378137.0, 1 / 298.257222101
    e2 = f * (2 - f)
    phi = math.radians(lat_deg)
    return a * ((1 - e2 / 4 - 3 * e2**2 / 64 - 5 * e2**3 / 256) * phi
                - (3 * e2 / 8 + 3 * e2**2 / 32 + 45 * e2**3 / 1024) * math.sin(2 * phi)
                + (15 * e2**2 / 256 + 45 * e2**3 / 1024) * math.sin(4 * phi)
                - (35 * e2**3 / 3072) * math.sin(6 * phi))


def test_epsg4549_near_xietu_road_has_x_northing_and_y_easting() -> None:
    x, y = datum.wgs84_to_epsg4549(121.45, 31.19)
    # x is the northing (≈ distance from the equator), y the easting: 500 km false easting
    # plus ≈ 138 km for 1.45° east of the 120°E central meridian at 31°N.
    assert 3_440_000 < x < 3_460_000
    assert 630_000 < y < 645_000
    assert datum.epsg4549_to_wgs84(x, y) == pytest.approx((121.45, 31.19), abs=1e-8)


@pytest.mark.parametrize("lat", [0.0, 22.5, 31.19, 45.0])
def test_epsg4549_on_the_central_meridian_matches_meridian_arc(lat: float) -> None:
    x, y = datum.wgs84_to_epsg4549(120.0, lat)
    assert y == pytest.approx(500_000.0, abs=1e-3)
    assert x == pytest.approx(_meridian_arc(lat), abs=0.01)  # CGCS2000 ≈ WGS-84 within cm


def test_to_and_from_wgs84_dispatch_by_datum() -> None:
    for name in datum.DATUMS:
        a, b = datum.from_wgs84(name, 121.45, 31.19)
        assert datum.to_wgs84(name, a, b) == pytest.approx((121.45, 31.19), abs=1e-8)
