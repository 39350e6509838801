"""Datum normalization, cells, weak-location detection and the full normalize()."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import h3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.crypto import SecretBox, generate_key
from hub.dedup.address import normalize_address
from hub.dedup.location import (
    CentroidDetector,
    assess_location,
    cell_of,
    haversine_m,
    neighbours,
    normalize_point,
)
from hub.dedup.normalize import normalize
from mappings.datum import from_wgs84
from mappings.taxonomy import load_taxonomy

XIETU = (31.1882, 121.4505)  # lat, lng near 斜土路1175号


@pytest.mark.parametrize("datum", ["wgs84", "gcj02", "bd09", "epsg4549"])
@given(lat=st.floats(30.7, 31.8), lng=st.floats(120.9, 122.0))
def test_datum_round_trip_within_half_a_metre(datum: str, lat: float, lng: float) -> None:
    a, b = from_wgs84(datum, lng, lat)
    point = normalize_point(datum, a, b)
    assert point is not None
    assert haversine_m(lat, lng, *point) < 0.5


def test_datums_really_differ() -> None:
    a, b = from_wgs84("bd09", XIETU[1], XIETU[0])
    # read as if it were WGS-84, a Baidu point is hundreds of metres off
    assert haversine_m(*XIETU, *(normalize_point("wgs84", a, b) or (0.0, 0.0))) > 100


@pytest.mark.parametrize(
    ("datum", "a", "b"),
    [("wgs84", None, 31.2), ("wgs84", 0, 0), ("wgs84", math.nan, 31.2), ("mars", 121.4, 31.2)],
)
def test_no_pin(datum: str, a: float | None, b: float | None) -> None:
    assert normalize_point(datum, a, b) is None


def test_haversine_known_distance() -> None:
    # 0.001° of latitude ≈ 111 m
    assert haversine_m(31.0, 121.0, 31.001, 121.0) == pytest.approx(111.2, abs=0.5)


def test_h3_cells_and_neighbours() -> None:
    cell = cell_of(*XIETU)
    ring = neighbours(cell)
    assert cell in ring and len(ring) == 7
    # a point ~250 m away is in an adjacent cell at resolution 9
    near = cell_of(XIETU[0] + 0.00225, XIETU[1])
    assert near in ring
    assert h3.get_resolution(cell) == 9


def test_centroid_shared_by_distinct_addresses() -> None:
    detector = CentroidDetector(threshold=3)
    centroid = (31.18835, 121.43700)
    for i in range(2):
        detector.observe(*centroid, f"斜土路{i}号")
    assert not detector.is_shared(*centroid)
    # the same address again does not count: several reports of one incident
    detector.observe(*centroid, "斜土路1号")
    assert not detector.is_shared(*centroid)
    detector.observe(*centroid, "日晖新城#3")
    assert detector.is_shared(*centroid)
    assert not detector.is_shared(centroid[0] + 0.001, centroid[1])


def test_known_centroid_is_weak() -> None:
    detector = CentroidDetector(known=[XIETU], radius_m=15)
    assert detector.is_shared(XIETU[0] + 0.00005, XIETU[1])
    assert not detector.is_shared(XIETU[0] + 0.001, XIETU[1])


def test_weak_reasons() -> None:
    assert assess_location(None, "number").weak_reason == "no_pin"
    assert assess_location(XIETU, "road").weak_reason == "road_only_address"
    assert assess_location(XIETU, "number").weak_reason is None
    shared = CentroidDetector(known=[XIETU])
    assert assess_location(XIETU, "road", shared).weak_reason == "shared_point"


@pytest.fixture(scope="module")
def box() -> SecretBox:
    return SecretBox(generate_key())


def _ticket(**overrides: object) -> dict[str, object]:
    lng, lat = from_wgs84("bd09", XIETU[1], XIETU[0])
    record: dict[str, object] = {
        "system": "hotline12345",
        "external_id": "GD202611230001",
        "reported_at": "2026-11-23T09:13:40+08:00",
        "category_code": "0403",
        "title": "私设地锁",
        "description": "报警人称斜土路1175号门口有人私设地锁",
        "address": "徐汇区斜土路1175号门口",
        "datum": "bd09",
        "lng": lng,
        "lat": lat,
        "phone": "138 1234 5678",
        "refs": [{"system": "city_management", "external_id": "CG1"}, {"bad": 1}],
    }
    record.update(overrides)
    return record


def test_normalize_full_ticket(box: SecretBox) -> None:
    ticket = normalize(_ticket(), taxonomy=load_taxonomy(), hasher=box.keyed_hash, centroids=CentroidDetector())
    assert ticket.reported_at == datetime(2026, 11, 23, 1, 13, 40, tzinfo=UTC)
    assert (ticket.category, ticket.group) == ("ground_lock", "parking")
    assert ticket.lat is not None and ticket.lng is not None
    assert haversine_m(ticket.lat, ticket.lng, *XIETU) < 0.5
    assert ticket.location_weak is None
    assert ticket.address.road == normalize_address("斜土路1175号").road == "斜土路"
    assert ticket.address.level == "number"
    assert "地锁" in ticket.tokens or "私设地锁" in ticket.tokens
    assert ticket.refs == (("city_management", "CG1"),)
    assert ticket.phone_hash is not None and "13812345678" not in ticket.phone_hash


def test_crosswalk_per_system_and_grid(box: SecretBox) -> None:
    taxonomy = load_taxonomy()
    ground_lock = {"hotline12345": "0403", "grid": "0403"}
    for system, code in ground_lock.items():
        t = normalize(_ticket(system=system, category_code=code), taxonomy=taxonomy, hasher=box.keyed_hash)
        assert t.category == "ground_lock"
    canonical = normalize(_ticket(category="noise_social"), taxonomy=taxonomy, hasher=box.keyed_hash)
    assert canonical.group == "noise"
    unknown = normalize(_ticket(category_code="XXXX"), taxonomy=taxonomy, hasher=box.keyed_hash)
    assert unknown.category == "other"


def test_issue_example_codes_are_one_category(box: SecretBox) -> None:
    taxonomy = load_taxonomy()
    # the issue's example: 12345 0403, police LD09 and 数字城管 0511 are the same thing
    for system, code in (("police_patrol", "LD09"), ("city_management", "0511")):
        t = normalize(_ticket(system=system, category_code=code), taxonomy=taxonomy, hasher=box.keyed_hash)
        assert (t.category, t.group) == ("ground_lock", "parking")


def test_epsg4549_and_no_pin_and_road_only(box: SecretBox) -> None:
    taxonomy = load_taxonomy()
    x, y = from_wgs84("epsg4549", XIETU[1], XIETU[0])
    plane = normalize(
        _ticket(datum="epsg4549", x=x, y=y, lng=None, lat=None), taxonomy=taxonomy, hasher=box.keyed_hash
    )
    assert plane.lat is not None and plane.lng is not None
    assert haversine_m(plane.lat, plane.lng, *XIETU) < 0.5
    no_pin = normalize(_ticket(lng=None, lat=None), taxonomy=taxonomy, hasher=box.keyed_hash)
    assert no_pin.location_weak == "no_pin" and no_pin.lat is None
    road = normalize(_ticket(address="斜土路", description="斜土路上有人私设地锁"), taxonomy=taxonomy,
                     hasher=box.keyed_hash)
    assert road.location_weak == "road_only_address"
    # the caller named the house number in the description: the address is completed from it
    told = normalize(_ticket(address="斜土路"), taxonomy=taxonomy, hasher=box.keyed_hash)
    assert (told.address.road, told.address.number, told.location_weak) == ("斜土路", "1175", None)


def test_shared_centroid_learned_while_streaming(box: SecretBox) -> None:
    taxonomy = load_taxonomy()
    detector = CentroidDetector(threshold=4)
    addresses = ["斜土路1号", "宛平南路2号", "日晖新城3号楼", "中山南二路5号", "龙华苑1幢"]
    results = [
        normalize(
            _ticket(external_id=f"GD{i}", address=addr, datum="wgs84", lng=121.437, lat=31.188),
            taxonomy=taxonomy,
            hasher=box.keyed_hash,
            centroids=detector,
        )
        for i, addr in enumerate(addresses)
    ]
    assert [r.location_weak for r in results] == [None, None, None, "shared_point", "shared_point"]


def test_phone_hash_equal_across_formats_never_clear(box: SecretBox) -> None:
    taxonomy = load_taxonomy()
    formats = ["13812345678", "+86 138-1234-5678", "0086 13812345678", "138 1234 5678"]
    hashes = {normalize(_ticket(phone=p), taxonomy=taxonomy, hasher=box.keyed_hash).phone_hash for p in formats}
    assert len(hashes) == 1
    (digest,) = hashes
    assert digest is not None and "13812345678" not in digest and digest != "13812345678"
    other = normalize(_ticket(phone="13912345678"), taxonomy=taxonomy, hasher=box.keyed_hash)
    assert other.phone_hash != digest
    assert normalize(_ticket(phone=None), taxonomy=taxonomy, hasher=box.keyed_hash).phone_hash is None


@pytest.mark.parametrize("bad", [{"system": ""}, {"external_id": None}, {"reported_at": None}])
def test_invalid_ticket(box: SecretBox, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        normalize(_ticket(**bad), taxonomy=load_taxonomy(), hasher=box.keyed_hash)


def test_naive_time_is_shanghai(box: SecretBox) -> None:
    t = normalize(_ticket(reported_at="2026-11-23 09:00:00"), taxonomy=load_taxonomy(), hasher=box.keyed_hash)
    assert t.reported_at == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
