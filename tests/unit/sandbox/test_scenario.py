"""sandbox.scenario: the dedup evaluation scenario and its canonical JSONL (docs/dedup-jsonl.md)."""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyproj import Transformer

from sandbox import geo, scenario, scenario_reports

# Code tables copied from ../shared/world/*.md (independent of the generator's own tables).
SPEC_CODES: dict[str, set[str]] = {
    "hotline12345": {"0101", "0102", "0201", "0202", "0203", "0301", "0302", "0401", "0402", "0403",
                     "0501", "0502", "0503", "0601", "0602", "0603", "0701", "0801", "0901"},
    "police_patrol": {f"LD0{i}" for i in range(1, 10)},
    "city_management": {"0101", "0102", "0103", "0104", "0106", "0201", "0203", "0301", "0302", "0304",
                        "0401", "0402", "0406", "0501", "0504", "0505", "0506", "0510", "0511",
                        "1101", "1102", "1105", "1201", "1401"},
    "law_enforcement": {"CG-0101", "CG-0201", "CG-0301", "CG-0401", "CG-0501", "CG-0502", "CG-0601",
                        "CG-0701"},
}
SPEC_CODES["grid"] = SPEC_CODES["hotline12345"]
DATUM = {"hotline12345": "bd09", "police_patrol": "wgs84", "city_management": "epsg4549",
         "law_enforcement": "gcj02", "grid": "wgs84"}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
N = 3000


@pytest.fixture(scope="module")
def tickets() -> list[dict[str, Any]]:
    return scenario.generate(N, seed=7)


# --- independent inverse transforms ------------------------------------------------------------

_X_PI = math.pi * 3000.0 / 180.0
_FROM_4549 = Transformer.from_crs("EPSG:4549", "EPSG:4326", always_xy=True)


def _bd09_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def _gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    wlng, wlat = lng, lat
    for _ in range(8):  # fixed point on the forward formula
        glng, glat = geo.wgs84_to_gcj02(wlng, wlat)
        wlng, wlat = wlng - (glng - lng), wlat - (glat - lat)
    return wlng, wlat


def _wgs(t: dict[str, Any]) -> tuple[float, float] | None:
    datum = t.get("datum", "wgs84")
    if datum == "epsg4549":
        if "x" not in t:
            return None
        lng, lat = _FROM_4549.transform(t["y"], t["x"])
        return float(lng), float(lat)
    if t.get("lng") is None:
        return None
    if datum == "bd09":
        return _gcj02_to_wgs84(*_bd09_to_gcj02(t["lng"], t["lat"]))
    if datum == "gcj02":
        return _gcj02_to_wgs84(t["lng"], t["lat"])
    return t["lng"], t["lat"]


def _is_centroid(p: tuple[float, float]) -> bool:
    """Pinned at a street or the district centroid (the generator's declared weak points)."""
    return any(geo.distance_m(*p, *c) < 15 for c in scenario_reports.CENTROIDS)


_SHARED: dict[int, list[tuple[float, float]]] = {}


def _shared_points(tickets: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """~10 m cells pinned by tickets of 4+ clusters: the centroids, found from the data."""
    key = id(tickets)
    if key not in _SHARED:
        by_point: dict[tuple[float, float], set[str]] = defaultdict(set)
        for t in tickets:
            p = _wgs(t)
            if p is not None:
                by_point[round(p[0], 4), round(p[1], 4)].add(t["cluster"])
        _SHARED[key] = [p for p, cl in by_point.items() if len(cl) >= 4]
    return _SHARED[key]


# --- tests -------------------------------------------------------------------------------------

def test_same_seed_same_tickets_other_seed_other_tickets() -> None:
    assert scenario.generate(500, seed=3) == scenario.generate(500, seed=3)
    assert scenario.generate(500, seed=3) != scenario.generate(500, seed=4)


def test_cli_writes_valid_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tickets.jsonl"
    assert scenario.main(["--out", str(out), "--tickets", "800", "--seed", "2"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 800
    seen: set[tuple[str, str]] = set()
    for line in lines:
        t = json.loads(line)
        for field in ("system", "external_id", "cluster", "reported_at", "category_code"):
            assert isinstance(t[field], str) and t[field], (field, t)
        assert ISO_WITH_OFFSET.match(t["reported_at"]), t["reported_at"]
        assert datetime.fromisoformat(t["reported_at"]).utcoffset() == timedelta(hours=8)
        assert t["category_code"] in SPEC_CODES[t["system"]], t
        assert t["datum"] == DATUM[t["system"]]
        assert (t["system"], t["external_id"]) not in seen
        seen.add((t["system"], t["external_id"]))
    assert json.loads(capsys.readouterr().out)["tickets"] == 800


def test_coordinates_are_in_each_systems_datum(tickets: list[dict[str, Any]]) -> None:
    for t in tickets:
        if t["datum"] == "epsg4549" and "x" in t:
            assert 2e6 <= t["x"] <= 6e6 and 3.4e5 <= t["y"] <= 6.6e5, t
        p = _wgs(t)
        if p is not None:  # back in WGS-84, inside the sandbox district (plus noise)
            assert geo.BOUNDS[0] - 0.003 < p[0] < geo.BOUNDS[2] + 0.003, t
            assert geo.BOUNDS[1] - 0.003 < p[1] < geo.BOUNDS[3] + 0.003, t


def test_members_of_a_cluster_agree_once_back_in_wgs84(tickets: list[dict[str, Any]]) -> None:
    # A mislabelled datum would put a member 500–1000 m away; noise is ≤ 80 m around the spot.
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in tickets:
        p = _wgs(t)
        if p is not None and not _is_centroid(p):
            points[t["cluster"]].append(p)
    compared = 0
    for members in points.values():
        for a in members[1:]:
            assert geo.distance_m(*members[0], *a) < 170
            compared += 1
    assert compared > N // 3


def test_weak_locations_exist(tickets: list[dict[str, Any]]) -> None:
    hotline = [t for t in tickets if t["system"] == "hotline12345"]
    no_pin = sum(1 for t in hotline if t.get("lng") is None) / len(hotline)
    assert 0.2 < no_pin < 0.4
    police = [t for t in tickets if t["system"] == "police_patrol"]
    assert 0.07 < sum(1 for t in police if t.get("lng") is None) / len(police) < 0.25
    shared = _shared_points(tickets)  # found from the data: cells pinned by 4+ unrelated incidents
    assert sum(1 for p in shared if _is_centroid(p)) >= 2
    road_names = {p.name for p in geo.PLACES} | {geo.DISTRICT + p.name for p in geo.PLACES}
    assert sum(1 for t in tickets if t.get("address") in road_names) > N * 0.02


def test_clusters_span_several_systems(tickets: list[dict[str, Any]]) -> None:
    systems: dict[str, set[str]] = defaultdict(set)
    for t in tickets:
        systems[t["cluster"]].add(t["system"])
    multi = [s for s in systems.values() if len(s) > 1]
    assert len(multi) > len(systems) * 0.4
    assert any(len(s) >= 4 for s in systems.values())
    assert set().union(*systems.values()) == set(DATUM)
    summary = scenario.summary(tickets)
    assert summary["tickets"] == N and summary["clusters"] == len(systems)
    assert sum(summary["per_system"].values()) == N
    assert sum(k * v for k, v in summary["cluster_sizes"].items()) == N
    assert max(summary["cluster_sizes"]) <= 5


def test_same_phone_calls_twice_within_an_incident(tickets: list[dict[str, Any]]) -> None:
    pairs = Counter((t["cluster"], t["phone"]) for t in tickets if t.get("phone"))
    assert any(n >= 2 for n in pairs.values())


def test_distinct_incidents_close_together(tickets: list[dict[str, Any]]) -> None:
    """Same system and code, other cluster: ≤ 300 m the same day, and ≤ 100 m weeks apart."""
    by_code: dict[tuple[str, str], list[tuple[datetime, tuple[float, float], str]]] = defaultdict(list)
    for t in tickets:
        p = _wgs(t)
        if p is not None and t["system"] in ("grid", "city_management", "law_enforcement"):
            by_code[t["system"], t["category_code"]].append(
                (datetime.fromisoformat(t["reported_at"]), p, t["cluster"]))
    same_day = weeks_apart = 0
    for rows in by_code.values():
        for i, (ta, pa, ca) in enumerate(rows):
            for tb, pb, cb in rows[i + 1:]:
                if ca == cb:
                    continue
                d = geo.distance_m(*pa, *pb)
                gap = abs(tb - ta)
                same_day += d <= 300 and gap <= timedelta(hours=24)
                weeks_apart += d <= 100 and gap >= timedelta(days=7)
    assert same_day >= 10
    assert weeks_apart >= 3


def test_some_codes_are_mistyped(tickets: list[dict[str, Any]]) -> None:
    # Majority code of each (cluster, system); the rest are mistyped neighbours.
    codes: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for t in tickets:
        codes[t["cluster"], t["system"]][t["category_code"]] += 1
    total = sum(sum(c.values()) for c in codes.values() if sum(c.values()) >= 2)
    off = sum(sum(c.values()) - c.most_common(1)[0][1] for c in codes.values() if sum(c.values()) >= 2)
    assert 0.01 < off / total < 0.15


def test_refs_point_at_earlier_tickets_of_the_same_cluster(tickets: list[dict[str, Any]]) -> None:
    index = {(t["system"], t["external_id"]): t for t in tickets}
    with_refs = [t for t in tickets if t.get("refs")]
    assert with_refs
    assert any(t["system"] == "city_management" for t in with_refs)
    for t in with_refs:
        for ref in t["refs"]:
            target = index[ref["system"], ref["external_id"]]
            assert target["cluster"] == t["cluster"]
            assert target["reported_at"] <= t["reported_at"]
            assert re.fullmatch(r"GD\d{14}", ref["external_id"])


def test_report_times_spread_by_kind(tickets: list[dict[str, Any]]) -> None:
    span: dict[str, timedelta] = {}
    first: dict[str, datetime] = {}
    code: dict[str, str] = {}
    for t in tickets:
        at = datetime.fromisoformat(t["reported_at"])
        c = t["cluster"]
        first.setdefault(c, at)
        span[c] = at - first[c]
        if t["system"] == "grid":
            code[c] = t["category_code"]
    parking = sorted(span[c] for c, k in code.items() if k == "0401")
    building = sorted(span[c] for c, k in code.items() if k == "0101")
    assert parking[len(parking) * 9 // 10] < timedelta(hours=4)  # a mistyped code may hide a ground lock
    assert building[len(building) // 2] > timedelta(days=2)


def test_twenty_thousand_tickets_in_under_ten_seconds() -> None:
    t0 = time.perf_counter()
    tickets = scenario.generate()
    assert time.perf_counter() - t0 < 10
    assert len(tickets) == 20000
    assert scenario.summary(tickets)["clusters"] > 5000
