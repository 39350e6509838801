"""End to end with real processes: `hub serve`, two `hub worker`s and `hub poll` as subprocesses
over the configured store and broker (SQLite + kombu filesystem transport by default;
PostgreSQL + RabbitMQ when GRIDHUB_TEST_DATABASE_URL / GRIDHUB_TEST_BROKER_URL are set), fed by
the four simulators and the traffic generator. A worker is killed with SIGKILL mid-run; everything
must still converge: every sandbox record one ticket at its newest version, nothing quarantined."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from hub.config import HubConfig
from hub.context import build_context
from hub.crypto import generate_key
from tests.conftest import REPO, TEST_BROKER, demo_systems
from tests.support.convergence import check

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubProcesses:
    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def hub(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([sys.executable, "-m", "hub.cli", "--log-level", "WARNING", *args], env=self.env,
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"hub {' '.join(args)} failed: {out.stderr[-2000:]}")
        return out.stdout

    def spawn(self, name: str, *args: str) -> None:
        log = Path(self.env["GRIDHUB_VAR_DIR"]) / f"{name}.log"
        self.logs[name] = log
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "hub.cli", *args], env=self.env, cwd=REPO,
                                            stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def processes(db_url: str, tmp_path: Path) -> Iterator[HubProcesses]:
    var = tmp_path / "var"
    var.mkdir()
    port = _free_port()
    env = dict(os.environ, GRIDHUB_DATABASE_URL=db_url, GRIDHUB_BROKER_URL=TEST_BROKER or "filesystem://",
               GRIDHUB_VAR_DIR=str(var), GRIDHUB_SECRET_KEY=generate_key(),
               GRIDHUB_PUBLIC_URL=f"http://127.0.0.1:{port}", GRIDHUB_SWEEP_AFTER_S="3",
               PYTHONPATH=str(REPO))
    hp = HubProcesses(env, port)
    yield hp
    hp.stop()


def test_pipeline_converges_through_a_worker_crash(processes: HubProcesses, sandbox: Any,
                                                   tmp_path: Path) -> None:
    hp = processes
    systems_file = tmp_path / "systems.yaml"
    items = demo_systems(sandbox.urls)
    for item in items:
        item["poll_interval_s"] = 1
    systems_file.write_text(yaml.safe_dump({"systems": items}, allow_unicode=True), encoding="utf-8")
    hp.hub("systems", "import", str(systems_file))
    token = hp.hub("tokens", "create", "it", "--role", "admin").strip()
    sandbox.set_police_webhook(f"http://127.0.0.1:{hp.port}/hooks/police_patrol")

    hp.spawn("web", "serve", "--port", str(hp.port))
    hp.spawn("worker1", "worker")
    hp.spawn("worker2", "worker")
    hp.spawn("poller", "poll")

    traffic = sandbox.start_traffic(seed=7, rate_per_min=240.0, burst=25)
    time.sleep(6)
    hp.kill("worker1")  # SIGKILL mid-delivery: its unacked messages and rows must not be lost
    time.sleep(4)
    sandbox.stop_traffic()  # no new incidents; let the rest settle
    hp.spawn("worker3", "worker")

    ctx = build_context(HubConfig(database_url=hp.env["GRIDHUB_DATABASE_URL"],
                                  broker_url=hp.env["GRIDHUB_BROKER_URL"], var_dir=hp.env["GRIDHUB_VAR_DIR"],
                                  secret_key=hp.env["GRIDHUB_SECRET_KEY"]))
    try:
        deadline = time.monotonic() + 120
        result = check(ctx, sandbox)
        while not result.converged and time.monotonic() < deadline:
            sandbox.sim("police_patrol").dispatcher.deliver_due()
            time.sleep(2)
            result = check(ctx, sandbox)
        logs = {n: p.read_text(errors="replace")[-1500:] for n, p in hp.logs.items()}
        assert result.converged, f"{result}\nlogs: {logs}"
        assert result.expected >= 25 and traffic.summary()["incidents"] >= 25

        headers = {"Authorization": f"Bearer {token}"}
        base = f"http://127.0.0.1:{hp.port}/api/v1"
        cases = requests.get(f"{base}/cases", params={"page_size": 500}, headers=headers, timeout=10).json()
        systems_seen = {k for c in cases["items"] for k in c["systems"]}
        assert systems_seen == {"hotline12345", "police_patrol", "city_management", "law_enforcement"}
        # explicit cross-references formed multi-system cases (12345 → 数字城管 transfers, 重复件)
        multi = requests.get(f"{base}/cases", params={"multi_system": "true"}, headers=headers, timeout=10).json()
        assert multi["total"] >= 1
        detail = requests.get(f"{base}/cases/{multi['items'][0]['id']}", headers=headers, timeout=10).json()
        assert len({t["system"] for t in detail["tickets"]}) >= 2
        assert any(e["kind"] == "ticket_linked" for e in detail["timeline"])
    finally:
        ctx.close()
