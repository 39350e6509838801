"""sandbox.traffic against an in-process cluster (sandbox.run.start_all on ephemeral ports).

The generator's ground truth must match what the four simulators hold: every record it
claims exists there, nothing else was written, transfers carry the 12345 gdbh, coordinates are
in each system's datum, and life-cycle steps move the records.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

import sandbox
from sandbox import geo
from sandbox.run import SYSTEMS as RUN_SYSTEMS
from sandbox.run import SandboxCluster, start_all
from sandbox.traffic import SYSTEMS, Incident, TrafficGenerator

CST = timezone(timedelta(hours=8))
ID_KEYS = {"hotline12345": "gdbh", "police_patrol": "JJDBH",
           "city_management": "caseId", "law_enforcement": "ClueNo"}
STATUS_KEYS = {"hotline12345": "zt", "police_patrol": "JQZTDM",
               "city_management": "status", "law_enforcement": "Status"}


class Clock:
    """A clock the test moves; shared by the simulators and the generator."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 10, 0, tzinfo=CST))  # a Monday morning


@pytest.fixture
def cluster(clock: Clock) -> Iterator[SandboxCluster]:
    running = start_all("127.0.0.1", 0, clock=clock, law_latency_s=0.0)
    try:
        yield running
    finally:
        running.stop()


def held(cluster: SandboxCluster) -> dict[str, dict[str, dict[str, Any]]]:
    """system → external id → record, from each simulator's /_sandbox/state."""
    roots = cluster.control_urls
    state = {s: requests.get(f"{roots[s]}/_sandbox/state", timeout=10).json() for s in SYSTEMS}
    records = {
        "hotline12345": state["hotline12345"]["workorders"],
        "police_patrol": [row["jq"] for row in state["police_patrol"]["incidents"]],
        "city_management": state["city_management"]["cases"],
        "law_enforcement": state["law_enforcement"]["cases"],
    }
    return {s: {str(r[ID_KEYS[s]]): r for r in rows} for s, rows in records.items()}


def test_cluster_serves_the_demo_base_urls(cluster: SandboxCluster) -> None:
    urls = cluster.urls
    assert urls["hotline12345"].endswith("/openapi/v2")
    assert urls["law_enforcement"].endswith("/zfba/ws/exchange")
    ports = {url.split(":")[2].split("/")[0] for url in urls.values()}
    assert len(ports) == 4 and "0" not in ports
    for root in cluster.control_urls.values():
        assert requests.get(f"{root}/_sandbox/faults", timeout=5).status_code == 200


def test_burst_truth_matches_what_the_simulators_hold(cluster: SandboxCluster, clock: Clock) -> None:
    traffic = TrafficGenerator(cluster.urls, seed=7, rate_per_min=0, clock=clock)
    incidents = traffic.play_burst(40)
    assert traffic.failures == 0
    state = held(cluster)
    claimed: dict[str, set[str]] = {s: set() for s in SYSTEMS}
    for incident in incidents:
        assert 1 <= len({r.system for r in incident.records}) <= 4
        for system, external_id in incident.refs:
            assert external_id in state[system], (system, external_id)
            claimed[system].add(external_id)
    for system in SYSTEMS:
        assert claimed[system], f"no records in {system}"
        assert claimed[system] == set(state[system])  # nothing else was filed
    assert any(sum(r.channel == "caller" for r in i.records) >= 2 for i in incidents)
    _check_transfers(incidents, state)
    _check_datums(incidents, state)


def _check_transfers(incidents: list[Incident], state: dict[str, dict[str, dict[str, Any]]]) -> None:
    transfers = [(i, r) for i in incidents for r in i.records if r.channel == "transfer"]
    assert transfers, "no 12345 → 数字城管 transfer in 40 incidents"
    for incident, record in transfers:
        case = state["city_management"][record.external_id]
        assert case["source"] == "03" and case["externalNo"] == record.link
        assert ("hotline12345", record.link) in incident.refs


def _check_datums(incidents: list[Incident], state: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Each system's coordinates, read back in its own datum, lie near the true spot."""
    checked = 0
    for incident in incidents:
        spot = incident.spot
        for system, external_id in incident.refs:
            record = state[system][external_id]
            if system == "hotline12345" and record["zb"]:
                lng, lat = (float(v) for v in record["zb"].split(","))
                near = geo.wgs84_to_bd09(spot.lng, spot.lat)
            elif system == "police_patrol" and record["JD"] is not None:
                lng, lat, near = record["JD"], record["WD"], (spot.lng, spot.lat)
            elif system == "law_enforcement" and record["Lng"]:
                lng, lat = float(record["Lng"]), float(record["Lat"])
                near = geo.wgs84_to_gcj02(spot.lng, spot.lat)
            elif system == "city_management" and record["x"] is not None:
                x, y = geo.wgs84_to_epsg4549(spot.lng, spot.lat)
                assert abs(record["x"] - x) < 80 and abs(record["y"] - y) < 80
                checked += 1
                continue
            else:
                continue
            assert geo.distance_m(lng, lat, *near) < 80, (system, external_id)
            checked += 1
    assert checked > 40


def test_life_cycle_moves_records_along(cluster: SandboxCluster, clock: Clock) -> None:
    traffic = TrafficGenerator(cluster.urls, seed=3, rate_per_min=0, clock=clock)
    traffic.play_burst(30)
    for _ in range(60):  # five hours in ten-minute steps
        clock.advance(minutes=10)
        traffic.step()
    state = held(cluster)
    statuses: dict[str, set[str]] = {s: set() for s in SYSTEMS}
    for incident in traffic.incidents:
        for record in incident.records:
            held_status = str(state[record.system][record.external_id][STATUS_KEYS[record.system]])
            # the generator knows the last move it made; 数字城管 closes 06 → 07 by itself
            assert record.status == held_status or (record.status, held_status) == ("06", "07")
            statuses[record.system].add(held_status)
    traffic.refresh_statuses()
    for incident in traffic.incidents:
        for record in incident.records:
            assert record.status == str(state[record.system][record.external_id][STATUS_KEYS[record.system]])
    assert statuses["police_patrol"] & {"05", "06", "09", "99"}
    assert statuses["city_management"] & {"04", "05", "06", "07"}
    assert statuses["law_enforcement"] & {"LA", "BYLA"}


def test_hotline_visits_back_finished_orders(cluster: SandboxCluster, clock: Clock) -> None:
    traffic = TrafficGenerator({"hotline12345": cluster.urls["hotline12345"]}, seed=5,
                               rate_per_min=0, clock=clock)
    incidents = traffic.play_burst(3)
    gdbh = incidents[0].records[0].external_id
    hotline = cluster.sim("hotline12345")
    order = hotline.get(gdbh)
    czsj = clock().strftime("%Y-%m-%d %H:%M:%S")
    for action, extra in (("QS", {}), ("BJ", {"nr": "已现场处置完毕，恢复正常。", "bjlx": "1"})):
        body = {"action": action, "expectedVersion": order["version"], "cbdw": order["cbdw"],
                "czr": "测试", "czsj": czsj, **extra}
        answer = hotline.perform_action("demo-app", uuid.uuid4().hex, gdbh, body)
        assert answer["code"] == 0, answer
        order = answer["data"]
    assert traffic.visit_back() == 1
    assert hotline.get(gdbh)["zt"] in ("50", "30")
    assert traffic.visit_back() == 0  # each order is called back once


def test_arrivals_follow_the_rate(cluster: SandboxCluster, clock: Clock, tmp_path: Path) -> None:
    traffic = TrafficGenerator(cluster.urls, seed=11, rate_per_min=6.0, clock=clock, time_scale=60)
    for _ in range(40):  # four minutes
        clock.advance(seconds=6)
        traffic.step()
    assert 10 <= len(traffic.incidents) <= 45
    summary = traffic.summary()
    assert summary["incidents"] == len(traffic.incidents)
    assert sum(summary[s] for s in SYSTEMS) >= len(traffic.incidents) - 3  # a few still due
    written = traffic.dump_truth(tmp_path / "truth.jsonl")
    lines = (tmp_path / "truth.jsonl").read_text(encoding="utf-8").splitlines()
    assert written == len(lines) == len(traffic.incidents)
    first = json.loads(lines[0])
    assert first["incident"] == traffic.incidents[0].id
    assert [(r["system"], r["external_id"]) for r in first["records"]] == traffic.incidents[0].refs


def test_seed_decides_the_story() -> None:
    # Unreachable simulators: nothing is filed, but the incidents drawn depend on the seed alone.
    urls = {s: "http://127.0.0.1:9" for s in SYSTEMS}
    stories = []
    for seed in (21, 21, 22):
        traffic = TrafficGenerator(urls, seed=seed, rate_per_min=0, timeout_s=1.0)
        stories.append([(i.kind.key, i.spot.place.name, i.spot.number) for i in traffic.play_burst(5)])
        assert traffic.failures > 0 and all(not i.records for i in traffic.incidents)
    assert stories[0] == stories[1] != stories[2]


def test_demo_systems_config_matches_the_sandbox() -> None:
    config = yaml.safe_load((Path(sandbox.__file__).parent / "systems.demo.yaml").read_text("utf-8"))
    by_key = {entry["key"]: entry for entry in config}
    assert list(by_key) == list(SYSTEMS)
    for index, (key, base_path) in enumerate(RUN_SYSTEMS):
        entry = by_key[key]
        assert entry["plugin"] == key and entry["enabled"] is True and entry["poll_interval_s"] > 0
        assert entry["base_url"] == f"http://127.0.0.1:{9101 + index}{base_path}"
        defaults = {name: p.default for name, p in
                    inspect.signature(importlib.import_module(f"sandbox.{key}").create_app).parameters.items()}
        for name, value in entry["credentials"].items():  # option names match the credential names
            assert defaults[name] == value, (key, name)
        if key == "hotline12345":
            assert entry["settings"]["units"] == list(defaults["units"]) == ["斜土路街道", "徐汇区城管执法局"]


def test_every_kind_speaks_each_system_vocabulary() -> None:
    from sandbox.city_management_rules import TAXONOMY as DCM_TAXONOMY
    from sandbox.hotline12345_store import TAXONOMY as HOTLINE_TAXONOMY
    from sandbox.law_enforcement_store import CATEGORIES as ZF_CATEGORIES
    from sandbox.police_patrol_state import CATEGORIES as POLICE_CATEGORIES
    from sandbox.traffic_kinds import KINDS
    from sandbox.traffic_texts import TEXTS

    assert len(KINDS) >= 11
    for kind in KINDS:
        assert {kind.wtfl, *kind.wtfl_near} <= set(HOTLINE_TAXONOMY)
        assert kind.wtfl not in kind.wtfl_near
        assert kind.jqlbdm is None or kind.jqlbdm in POLICE_CATEGORIES
        if kind.dcm is not None:
            assert kind.dcm[1] in DCM_TAXONOMY[kind.dcm[0]][1]
        assert kind.zf is None or kind.zf in ZF_CATEGORIES
        words = TEXTS[kind.key]
        for voice in (words.titles, words.citizen, words.police, words.inspector, words.patrol):
            assert len(set(voice)) >= 4, kind.key
        assert all("{addr}" in t for t in (*words.citizen, *words.police, *words.inspector, *words.patrol))
        assert all(len(title) <= 50 for title in words.titles)
