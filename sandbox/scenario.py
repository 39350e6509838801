"""Dedup evaluation scenario: incidents around 斜土路 told by several systems, with ground truth.

``generate()`` plays incidents of the kinds in :mod:`sandbox.traffic_kinds`; each is reported
1–5 times across 12345 (several callers, sometimes the same phone twice, some 重复件 pointing
at the first order), police, 数字城管 (inspectors, and 12345 transfers carrying the ``gdbh``),
综合执法 and grid workers, each in its own datum, with location noise, centroid pins, road-only
addresses, time skew and mistyped codes. Distinct incidents close together are played on
purpose: a second stall 100–300 m down the same road, another kind in the same compound, and a
recurrence weeks later at the same spot (a different cluster).

``python -m sandbox.scenario --out tickets.jsonl [--tickets 20000] [--seed 1]`` writes the
canonical JSONL of docs/dedup-jsonl.md.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sandbox import geo
from sandbox import scenario_reports as rep
from sandbox.traffic_kinds import KINDS, Kind
from sandbox.traffic_reports import phone_number

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DEFAULT_START = datetime(2026, 11, 2, 8, tzinfo=SHANGHAI)
# 20,000 tickets over 180 days is ~110 tickets a day for the 斜土路/枫林路 area (~3 km²), about twice
# what a 街道 of that size files through all channels. Over 14 days (16× too dense) the same house
# number or building saw several *unrelated* incidents of one kind inside a week, which no
# information in a ticket can tell apart; the deliberate traps below are played at any density.
DEFAULT_DAYS = 180

# Hours over which one incident's reports arrive (parking: hours; garbage: days; 违建: weeks).
SPREAD_H: dict[str, float] = {
    "street_stall": 8, "exposed_garbage": 72, "shopfront_trading": 24, "illegal_parking": 3,
    "ground_lock": 168, "social_noise": 48, "construction_noise": 96, "illegal_construction": 504,
    "manhole_cover": 12, "group_rental": 336, "cooking_fumes": 168,
}
REPORTS_PER_INCIDENT = (1, 2, 3, 4, 5)
REPORTS_WEIGHTS = (0.22, 0.30, 0.24, 0.14, 0.10)
CHANNELS = ("call", "police", "inspector", "transfer", "patrol", "grid")
CHANNEL_WEIGHTS = (0.46, 0.12, 0.11, 0.08, 0.09, 0.14)
TWIN_ROAD_RATE = 0.12  # a second incident of the same kind 100–300 m down the road, same day
COMPOUND_MIX_RATE = 0.15  # another kind of incident in the same compound within days
RECUR_RATE: dict[str, float] = {"ground_lock": 0.35, "street_stall": 0.08, "illegal_parking": 0.08}
RECUR_OTHERS = 0.03
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10, 9, 8, 9, 10, 10, 9, 9, 8, 7, 6, 4, 3, 2)
FREQUENT_CALLERS = 40  # people who call 12345 about everything: a phone shared across clusters


@dataclass(frozen=True)
class Incident:
    """One real-world incident: its ground-truth cluster, kind, true spot and start."""

    cluster: str
    kind: Kind
    spot: geo.Spot
    start: datetime


class _Scenario:
    """The generator's state: random source, drafts so far, counters."""

    def __init__(self, seed: int, start: datetime, days: int) -> None:
        self.rng = random.Random(seed)
        self.start, self.days = start, days
        self.drafts: list[dict[str, Any]] = []
        self.incidents = 0
        self.frequent = [phone_number(self.rng) for _ in range(FREQUENT_CALLERS)]

    # --- incidents -------------------------------------------------------------------------

    def new_incident(self, kind: Kind | None = None, spot: geo.Spot | None = None,
                     start: datetime | None = None) -> Incident:
        rng = self.rng
        kind = kind or rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]
        spot = spot or geo.random_spot(rng, kind.place_kind)
        while start is None:  # uniform over the window, thinned by the hour-of-day profile
            at = self.start + timedelta(seconds=rng.uniform(0, self.days * 86400))
            if rng.random() * max(HOUR_WEIGHTS) < HOUR_WEIGHTS[at.astimezone(SHANGHAI).hour]:
                start = at
        self.incidents += 1
        return Incident(f"C{self.incidents:06d}", kind, spot, start)

    def neighbours(self, incident: Incident) -> list[Incident]:
        """Distinct incidents close to ``incident``: the traps for a matcher."""
        rng, out = self.rng, []
        place = incident.spot.place
        if place.kind == "road" and rng.random() < TWIN_ROAD_RATE:
            twin = _spot_down_the_road(incident.spot, rng)
            if twin is not None:
                out.append(self.new_incident(incident.kind, twin,
                                             incident.start + timedelta(minutes=rng.uniform(-180, 180))))
        if place.kind == "compound" and rng.random() < COMPOUND_MIX_RATE:
            other = rng.choice([k for k in KINDS if k.key != incident.kind.key and k.place_kind != "road"])
            spot = geo.Spot(place, rng.randint(1, max(place.buildings, 1)), *geo.jitter(place.lng, place.lat, 90, rng))
            out.append(self.new_incident(other, spot, incident.start + timedelta(hours=rng.uniform(0, 48))))
        if rng.random() < RECUR_RATE.get(incident.kind.key, RECUR_OTHERS):
            again = geo.Spot(place, incident.spot.number, *geo.jitter(incident.spot.lng, incident.spot.lat, 8, rng))
            later = incident.start + timedelta(days=rng.uniform(10, 21))
            out.append(self.new_incident(incident.kind, again, later))
        return out

    # --- reports ---------------------------------------------------------------------------

    def report(self, incident: Incident, n: int) -> None:
        """Draft ``n`` reports of ``incident`` across the systems that file its kind."""
        rng, kind = self.rng, incident.kind
        allowed = [c for c in CHANNELS if _files(kind, c)]
        weights = [CHANNEL_WEIGHTS[CHANNELS.index(c)] for c in allowed]
        spread = SPREAD_H[kind.key]
        calls: list[dict[str, Any]] = []
        for _ in range(n):
            channel = rng.choices(allowed, weights=weights)[0]
            if channel == "transfer" and not calls:
                channel = "call"
            at = incident.start + timedelta(hours=spread * rng.random() ** 2, minutes=rng.uniform(0, 20))
            if channel == "police":
                at = incident.start + timedelta(hours=spread * rng.random() ** 3, minutes=rng.uniform(0, 10))
            self.drafts.append(self._draft(incident, channel, at, calls))
            self.drafts[-1]["cluster"] = incident.cluster

    def _draft(self, incident: Incident, channel: str, at: datetime,
               calls: list[dict[str, Any]]) -> dict[str, Any]:
        rng, kind, spot = self.rng, incident.kind, incident.spot
        if channel == "call":
            return self._call(kind, spot, at, calls)
        if channel == "transfer":
            order = rng.choice(calls)
            skew = timedelta(minutes=rng.uniform(8, 180))
            draft = rep.transfer_case(kind, order, rng, order["_at"] + skew)
            draft["_refs"] = [order]
            return draft
        builders = {"police": rep.police_report, "inspector": rep.inspector_case,
                    "patrol": rep.patrol_case, "grid": rep.grid_report}
        return builders[channel](kind, spot, rng, at)

    def _call(self, kind: Kind, spot: geo.Spot, at: datetime, calls: list[dict[str, Any]]) -> dict[str, Any]:
        rng = self.rng
        phone = None
        roll = rng.random()
        if calls and roll < 0.12:
            phone = rng.choice(calls)["phone"]  # the same person calls again
        elif roll < 0.17:
            phone = rng.choice(self.frequent)
        draft = rep.hotline_call(kind, spot, rng, at, phone)
        earlier = [c for c in calls if c["_at"] < at]
        if earlier and rng.random() < 0.15:  # the operator marked it 重复件 of the first order
            draft["status_code"], draft["_refs"] = "80", [min(earlier, key=lambda c: c["_at"])]
        calls.append(draft)
        return draft


def _files(kind: Kind, channel: str) -> bool:
    """Whether a reporter of ``channel`` files incidents of ``kind`` at all."""
    if channel == "police":
        return kind.jqlbdm is not None
    if channel in ("inspector", "transfer"):
        return kind.dcm is not None
    if channel == "patrol":
        return kind.zf is not None
    return True


def _spot_down_the_road(spot: geo.Spot, rng: random.Random) -> geo.Spot | None:
    """Another house number on the same road segment, 100–300 m from ``spot``."""
    place = spot.place
    lo, hi = place.numbers
    target = rng.uniform(100, 300)
    for _ in range(12):
        number = rng.randint(lo, hi)
        lng, lat = place.point(number)
        d = geo.distance_m(spot.lng, spot.lat, lng, lat)
        if abs(d - target) < 60 or 100 <= d <= 300:
            return geo.Spot(place, number, *geo.jitter(lng, lat, 10, rng))
    return None


# --- public API --------------------------------------------------------------------------------

def generate(n_tickets: int = 20000, seed: int = 1, start: datetime = DEFAULT_START,
             days: int | None = None) -> list[dict[str, Any]]:
    """Canonical tickets (docs/dedup-jsonl.md) with ground-truth ``cluster``; deterministic per seed.

    Exactly ``n_tickets`` tickets, sorted by ``reported_at``; ``refs`` point at tickets in the list.
    """
    sc = _Scenario(seed, start, DEFAULT_DAYS if days is None else days)
    rng = sc.rng
    queue: list[Incident] = []
    while len(sc.drafts) < n_tickets:
        incident = queue.pop(0) if queue else sc.new_incident()
        n = rng.choices(REPORTS_PER_INCIDENT, weights=REPORTS_WEIGHTS)[0]
        sc.report(incident, min(n, n_tickets - len(sc.drafts)))
        queue.extend(sc.neighbours(incident))
    return _finish(sc.drafts, rng)


def _finish(drafts: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Sort by time, number each system's tickets as that system does, resolve refs."""
    drafts.sort(key=lambda d: d["_at"])
    per_day: Counter[tuple[str, str]] = Counter()
    for d in drafts:
        at: datetime = d["_at"]
        system = d["system"]
        day = at.strftime("%Y%m%d")
        per_day[system, day] += 1
        seq = per_day[system, day]
        if system == "hotline12345":
            d["external_id"] = f"GD{day}{seq:06d}"
        elif system == "police_patrol":
            d["external_id"] = f"310104{day}{seq:04d}"
        elif system == "city_management":
            d["external_id"] = str(uuid.UUID(int=rng.getrandbits(128)))
        elif system == "law_enforcement":
            per_day[system, ""] += 1
            d["external_id"] = f"ZF-{at.year}-{per_day[system, '']:06d}"
        else:
            d["external_id"] = f"WG{day}{seq:05d}"
        d["reported_at"] = at.replace(microsecond=0).isoformat()
    out = []
    for d in drafts:
        refs = [{"system": r["system"], "external_id": r["external_id"]} for r in d.get("_refs", ())]
        ticket = {k: v for k, v in d.items() if not k.startswith("_")}
        if refs:
            ticket["refs"] = refs
        out.append(_ordered(ticket))
    return out


_FIELD_ORDER = ("system", "external_id", "cluster", "reported_at", "category_code", "title", "description",
                "address", "datum", "lng", "lat", "x", "y", "phone", "refs", "status_code")


def _ordered(ticket: dict[str, Any]) -> dict[str, Any]:
    return {k: ticket[k] for k in _FIELD_ORDER if k in ticket}


def summary(tickets: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts: tickets, clusters, tickets per system, cluster-size histogram, multi-system clusters."""
    sizes = Counter(t["cluster"] for t in tickets)
    systems: dict[str, set[str]] = {}
    for t in tickets:
        systems.setdefault(t["cluster"], set()).add(t["system"])
    return {
        "tickets": len(tickets),
        "clusters": len(sizes),
        "per_system": dict(sorted(Counter(t["system"] for t in tickets).items())),
        "cluster_sizes": dict(sorted(Counter(sizes.values()).items())),
        "multi_system_clusters": sum(1 for s in systems.values() if len(s) > 1),
        "with_refs": sum(1 for t in tickets if t.get("refs")),
    }


def write_jsonl(tickets: list[dict[str, Any]], path: str | Path) -> None:
    """One ticket per line, UTF-8, Chinese unescaped."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for t in tickets:
            fh.write(json.dumps(t, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """CLI: write a scenario as canonical ticket JSONL and print its summary."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.scenario", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output JSONL path")
    parser.add_argument("--tickets", type=int, default=20000, help="number of tickets (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS,
                        help=f"days over which incidents start (default {DEFAULT_DAYS})")
    args = parser.parse_args(argv)
    tickets = generate(args.tickets, args.seed, days=args.days)
    write_jsonl(tickets, args.out)
    print(json.dumps(summary(tickets), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
