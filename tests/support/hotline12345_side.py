"""The 12345 side of contract tests: what an operator and a handling unit do in the simulator
directly (not through the hub), shared by the ingestion and the delivery contract tests."""

from __future__ import annotations

import uuid
from typing import Any

import requests

SYSTEM = "hotline12345"
APP_KEY = "demo-app"
CZSJ = "2026-11-23 10:00:00"


def take_call(cluster: Any, **fields: Any) -> str:
    """An operator takes a call (dispatched to the gateway's first unit, zt 20, unless told otherwise)."""
    fields.setdefault("sqbt", "市民来电")
    fields.setdefault("sqnr", f"市民反映问题，请尽快处理。{uuid.uuid4().hex[:6]}")
    answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/workorders", json=fields, timeout=5)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["gdbh"])


def act(cluster: Any, gdbh: str, action: str, **extra: Any) -> dict[str, Any]:
    """The handling unit acts on its order in 12345 itself (QS, BC, YQ, BJ, TD, CF)."""
    sim = cluster.sim(SYSTEM)
    order = sim.get(gdbh)
    body = {"action": action, "expectedVersion": order["version"], "cbdw": order["cbdw"], "czr": "王五",
            "czsj": CZSJ, **extra}
    answer = sim.perform_action(APP_KEY, uuid.uuid4().hex, gdbh, body)
    assert answer["code"] == 0, answer
    return dict(answer["data"])


def hotline_step(cluster: Any, gdbh: str, **step: Any) -> None:
    """The hotline's own step on an order (回访, 重办 …) through the simulator's control API."""
    answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/workorders/{gdbh}/hotline",
                           json=step, timeout=5)
    assert answer.status_code == 200, answer.text
