"""The clocks of bench/sync_bench.py: a write counts as applied when the simulator accepted it
through its real API (police feedback taken, 数字城管 case filed), never when it was refused; and
the small helpers the table is built from. The whole bench runs the hub's processes for minutes:
``python -m bench.sync_bench --quick`` is its smoke run, not this file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from bench.sync_bench import DCM, POLICE, SANDBOX_OPTIONS, Plan, Stamps, percentile, watch
from sandbox.run import SandboxCluster, start_all

POLICE_TOKEN = {"Authorization": "Bearer police-demo-token"}


@pytest.fixture
def watched() -> Iterator[tuple[SandboxCluster, Stamps]]:
    cluster = start_all("127.0.0.1", 0, **SANDBOX_OPTIONS)
    stamps = Stamps()
    watch(cluster, stamps)
    yield cluster, stamps
    cluster.stop()


def feedback(cluster: SandboxCluster, jjdbh: str, kind: str) -> dict[str, Any]:
    body = {"JJDBH": jjdbh, "FKLX": kind, "FKNR": "已接收，城管中队处置中。", "FKDW": "网格化管理中心",
            "FKSJ": datetime.now(UTC).isoformat(timespec="seconds")}
    answer = requests.post(f"{cluster.control_urls[POLICE]}/ldpt/api/feedback", json=body, headers=POLICE_TOKEN,
                           timeout=5)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def handed_over(cluster: SandboxCluster) -> str:
    police = cluster.sim(POLICE)
    jjdbh = str(police.report({"JQLBDM": "LD01", "JQZTDM": "02", "SFDD": "徐汇区斜土路1200号"})["jq"]["JJDBH"])
    for code in ("03", "04"):
        police.move(jjdbh, {"JQZTDM": code})
    return jjdbh


def test_police_feedback_is_stamped_only_when_the_police_take_it(watched: tuple[SandboxCluster, Stamps]) -> None:
    cluster, stamps = watched
    jjdbh = handed_over(cluster)

    assert feedback(cluster, jjdbh, "JS")["errorCode"] == "INVALID_STATE"  # not handed over yet
    assert stamps.get(("police", jjdbh, "JS")) is None

    cluster.sim(POLICE).move(jjdbh, {"JQZTDM": "06", "YJDW": "城管"})
    before = time.monotonic()
    assert feedback(cluster, jjdbh, "JS") == {"success": True}
    at = stamps.get(("police", jjdbh, "JS"))
    assert at is not None and before <= at <= time.monotonic()
    assert stamps.count("police") == 1


def test_a_filed_dcm_case_is_stamped_under_its_external_number(watched: tuple[SandboxCluster, Stamps]) -> None:
    cluster, stamps = watched
    base = cluster.control_urls[DCM]
    token = requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                          auth=("gridhub", "dcm-demo-secret"), timeout=5).json()["access_token"]
    case = {"source": "07", "externalNo": "GH-BENCH-1", "eventType": "2", "bigClass": "05", "smallClass": "0501",
            "description": "斜土路1200号门口流动摊贩占道经营"}
    headers = {"Authorization": f"Bearer {token}"}

    refused = requests.post(f"{base}/dcm/api/cases", json={**case, "smallClass": "9999"}, headers=headers, timeout=5)
    assert refused.status_code == 422 and stamps.count("dcm_create") == 0

    filed = requests.post(f"{base}/dcm/api/cases", json=case, headers=headers, timeout=5)
    assert filed.status_code == 201, filed.text
    assert stamps.wait_all([("dcm_create", "GH-BENCH-1")], 1)


def test_wait_all_returns_once_every_write_is_applied_and_names_the_missing_ones() -> None:
    stamps = Stamps()
    threading.Timer(0.05, stamps.note, args=(("police", "A", "CZ"),)).start()
    assert len(stamps.wait_all([("police", "A", "CZ")], 5)) == 1
    with pytest.raises(TimeoutError, match="1 of 2 writes never applied"):
        stamps.wait_all([("police", "A", "CZ"), ("police", "B", "CZ")], 0.1)


def test_percentile_and_the_backlog_of_a_rate() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile([7.0], 0.99)) == (51.0, 99.0, 7.0)
    assert Plan(samples=1, burst=1, rate=2.0, poll_interval_s=1).backlog == 1200  # 2/s over 10 minutes
