"""The simple-rule baseline of bench/dedup_compare.py: same category group, both pinned,
≤ 50 m and ≤ 24 h from some member → the earliest such cluster; its bucket index must agree
with a brute-force scan. Splink is never needed here."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bench.dedup_compare import M_PER_DEGREE, Features, rule_clusters
from hub.dedup.location import haversine_m

REPO = Path(__file__).resolve().parents[3]
ORIGIN = (31.19, 121.45)
HOUR = 3600.0


def at(north_m: float = 0.0, east_m: float = 0.0, origin: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    """A point ``north_m``/``east_m`` metres from ``origin`` (flat-earth offset, fine at this scale)."""
    lat = origin[0] + north_m / M_PER_DEGREE
    return lat, origin[1] + east_m / (M_PER_DEGREE * math.cos(math.radians(origin[0])))


def ticket(key: str, hours: float, point: tuple[float, float] | None, group: str = "street_trading",
           seq: int = 0) -> Features:
    lat, lng = point if point is not None else (None, None)
    return Features(key=key, cluster="", seq=seq, t=1_800_000_000.0 + hours * HOUR, category=group,
                    group=group, lat=lat, lng=lng)


def partition(assigned: Mapping[str, int]) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = defaultdict(set)
    for key, cluster in assigned.items():
        groups[cluster].add(key)
    return {frozenset(g) for g in groups.values()}


def test_obvious_clusters() -> None:
    tickets = [
        ticket("a", 0, at()),
        ticket("b", 1, at(north_m=20)),
        ticket("c", 2, at(north_m=2000)),          # 2 km away: its own incident
        ticket("d", 3, None),                      # no pin: the rule cannot place it
        ticket("e", 4, at(east_m=10)),
    ]
    assert partition(rule_clusters(tickets)) == {frozenset("abe"), frozenset("c"), frozenset("d")}


@pytest.mark.parametrize(("hours", "north_m", "group", "joined"), [
    (23, 49, "street_trading", True),      # inside every limit
    (24, 0, "street_trading", True),       # exactly 24 h is still "≤ 24 h"
    (1, 51, "street_trading", False),      # 51 m apart: too far
    (24 + 1 / 60, 0, "street_trading", False),  # 24 h 1 min later: too late
    (1, 0, "parking", False),              # same place and time, other category group
])
def test_each_limit_separates(hours: float, north_m: float, group: str, joined: bool) -> None:
    assigned = rule_clusters([ticket("x", 0, at()), ticket("y", hours, at(north_m=north_m), group=group)])
    assert (assigned["x"] == assigned["y"]) is joined


def test_joins_the_earliest_qualifying_cluster_whatever_the_input_order() -> None:
    tickets = [
        ticket("new", 2, at(east_m=40)),   # 40 m from both earlier clusters
        ticket("late", 1, at(east_m=80)),  # 80 m from "early": a cluster of its own
        ticket("early", 0, at()),
    ]
    assigned = rule_clusters(tickets)
    assert assigned["early"] != assigned["late"]
    assert assigned["new"] == assigned["early"]


def test_any_member_within_the_limits_is_enough() -> None:
    # c is 40 h after a and 60 m from it, but 20 h and 30 m from b, which joined a
    tickets = [ticket("a", 0, at()), ticket("b", 20, at(north_m=30)), ticket("c", 40, at(north_m=60))]
    assert partition(rule_clusters(tickets)) == {frozenset("abc")}


def brute_force(tickets: Sequence[Features]) -> dict[str, int]:
    """The rule's definition, scanned pair by pair."""
    ordered = sorted(tickets, key=lambda f: (f.t, f.seq))
    out: dict[str, int] = {}
    next_id = 0
    for i, f in enumerate(ordered):
        candidates = [out[g.key] for g in ordered[:i]
                      if f.lat is not None and f.lng is not None and g.lat is not None and g.lng is not None
                      and g.group == f.group and f.t - g.t <= 24 * HOUR
                      and haversine_m(f.lat, f.lng, g.lat, g.lng) <= 50.0]
        if candidates:
            out[f.key] = min(candidates)
        else:
            out[f.key], next_id = next_id, next_id + 1
    return out


@pytest.mark.parametrize("origin", [ORIGIN, (70.0, 20.0)])
def test_bucket_index_agrees_with_brute_force(origin: tuple[float, float]) -> None:
    rng = random.Random(7)
    tickets = []
    for seq in range(400):
        point = None if rng.random() < 0.1 else at(rng.uniform(0, 300), rng.uniform(0, 300), origin)
        tickets.append(ticket(f"t{seq}", rng.uniform(0, 96), point, group=rng.choice(["a", "b"]), seq=seq))
    expected = brute_force(tickets)
    assert rule_clusters(tickets) == expected
    assert 1 < len(set(expected.values())) < len(tickets)  # the data really exercises linking


def test_module_imports_without_splink() -> None:
    code = "import sys; sys.modules['splink'] = None; import bench.dedup_compare"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
