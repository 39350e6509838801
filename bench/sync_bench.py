"""Two-way status sync, measured end to end (issue 4): propagation latency, sustained throughput and
backlog drain after an outage, on the embedded and the scaled deployment shape.

    .venv/bin/python -m bench.sync_bench                     # both shapes, ~5 minutes on 2 cores
    .venv/bin/python -m bench.sync_bench --quick             # smoke, ~2.5 minutes (two 30 s breaker waits)
    .venv/bin/python -m bench.sync_bench --shape embedded --cases 500 --rate 1

The scaled shape needs PostgreSQL (its database ``gridhub_bench`` is dropped and created again)
and RabbitMQ on localhost (default vhost: another hub's workers on the same broker would take
this one's nudges, and deliveries would wait for the 3 s sweep).

What runs: the four sandbox simulators in this process (fast settings: no artificial latency, no
rate limits), and the hub as the processes ``hub demo`` starts: ``serve`` (the police webhook),
``worker --queue ingest``, ``worker --queue outbound`` (two of them in the scaled shape) and
``poll``. The 数字城管 poll interval is ``--poll-interval`` (1 s by default); the others keep the
demo's. The dedup matcher is blocked (``GRIDHUB_BLOCKED_PLUGINS=gridhub.dedup``): the bench's
synthetic 警情 are alike and would otherwise be linked with each other; the measured changes are
updates of records that have a case already, which never ask a matcher.

The flow per case (the integration test's police hand-over): a 警情 is reported and worked
(02 → 03 → 04, set up beforehand); then

* **push**: the police hand it over (``06``, ``YJDW`` 城管) → webhook → ingest routes the case to
  数字城管 → the outbound worker creates the 数字城管 case and sends the police ``JS``. Latency
  ends when *both* writes were applied by the simulators.
* **pull**: the 数字城管 department takes the case on (``02`` 已立案) → read by the poller → the
  police hear 处置进展 ``CZ``.
* **throughput**: a burst of hand-overs at once (two effects each, to two systems).
* **backlog**: the police system is down (sandbox fault) while ``rate × 600`` department steps come
  in, compressed (each plans one ``CZ``), until the hub's breaker is open; the fault is lifted, the
  breaker reset by hand (``circuit.reset``) and the drain timed.

Clocks: a change's moment is when the simulator call that applies it returns; an effect's moment
is when the simulator accepted the hub's write (its ``feedback``/``create_case`` are wrapped in this
process to note ``time.monotonic()``; the simulators' own timestamps have one-second precision).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import requests
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.config import HubConfig
from hub.context import DEDUP_PLUGIN, HubContext, build_context
from hub.crypto import generate_key
from hub.migrate import upgrade
from hub.models import Case, InboundEvent, InboundStatus, OutboundMessage, OutboundStatus, Ticket, utcnow
from hub.services import circuit
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from sandbox.run import SandboxCluster, start_all

REPO = Path(__file__).resolve().parent.parent
POLICE, DCM = "police_patrol", "city_management"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "gridhub_bench"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
OUTAGE_S = 600.0  # the outage the backlog stands for
SANDBOX_OPTIONS: dict[str, Any] = {
    "time_scale": 60.0,
    "law_latency_s": 0.0,
    "options": {"law_enforcement": {"rate_limit_per_s": 0}, "hotline12345": {"rate_limit_per_s": 0},
                "police_patrol": {"reconcile_min_interval_s": 0}},
}


# ----- what the simulators applied, and when ------------------------------------------------------


class Stamps:
    """Monotonic moments at which the simulators applied the hub's writes, by key."""

    def __init__(self) -> None:
        self._at: dict[tuple[str, ...], float] = {}
        self._changed = threading.Condition()

    def note(self, key: tuple[str, ...]) -> None:
        with self._changed:
            self._at.setdefault(key, time.monotonic())
            self._changed.notify_all()

    def get(self, key: tuple[str, ...]) -> float | None:
        with self._changed:
            return self._at.get(key)

    def count(self, kind: str) -> int:
        with self._changed:
            return sum(1 for k in self._at if k[0] == kind)

    def wait_all(self, keys: list[tuple[str, ...]], timeout_s: float) -> list[float]:
        """The moments of every key, waiting for the missing ones (TimeoutError after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while any(k not in self._at for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [k for k in keys if k not in self._at]
                    raise TimeoutError(f"{len(missing)} of {len(keys)} writes never applied, e.g. {missing[:3]}")
                self._changed.wait(min(left, 1.0))
            return [self._at[k] for k in keys]


def watch(cluster: SandboxCluster, stamps: Stamps) -> None:
    """Note when the police take a feedback and when 数字城管 files a case (instance wrappers: the
    simulators behave exactly as before)."""
    police, dcm = cluster.sim(POLICE), cluster.sim(DCM)
    feedback, create_case = police.feedback, dcm.create_case

    def timed_feedback(body: Any) -> tuple[int, dict[str, Any]]:
        status, answer = feedback(body)
        if status == 200 and answer.get("success"):
            stamps.note(("police", str(body["JJDBH"]), str(body["FKLX"])))
        return status, answer

    def timed_create(body: dict[str, Any], client_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = create_case(body, client_id)
        stamps.note(("dcm_create", str(body.get("externalNo", ""))))
        return answer

    police.feedback, dcm.create_case = timed_feedback, timed_create


# ----- the hub: store, broker, processes ----------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    database: str
    broker: str
    outbound_workers: int


def prepare_shape(name: str, var: Path) -> Shape:
    """A fresh, migrated store for one shape: a SQLite file, or the bench PostgreSQL database
    dropped and created again."""
    if name == "embedded":
        url = f"sqlite:///{var / 'bench.db'}"
        upgrade(url)
        return Shape(name, url, "filesystem://", 1)
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_BENCH_DB}"'))
    admin.dispose()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}"
    upgrade(url)
    return Shape(name, url, AMQP_URL, 2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hub:
    """The hub's processes for one shape, and a context of this process to look at its store."""

    def __init__(self, shape: Shape, var: Path, cluster: SandboxCluster, poll_interval_s: int) -> None:
        self.shape, self.var, self.port = shape, var, free_port()
        secret = generate_key()
        self.env = dict(os.environ, GRIDHUB_DATABASE_URL=shape.database, GRIDHUB_BROKER_URL=shape.broker,
                        GRIDHUB_VAR_DIR=str(var), GRIDHUB_SECRET_KEY=secret, GRIDHUB_LOG_LEVEL="WARNING",
                        GRIDHUB_BLOCKED_PLUGINS=DEDUP_PLUGIN, GRIDHUB_PUBLIC_URL=f"http://127.0.0.1:{self.port}")
        self.ctx: HubContext = build_context(HubConfig(
            database_url=shape.database, broker_url=shape.broker, var_dir=str(var), secret_key=secret,
            blocked_plugins=(DEDUP_PLUGIN,)))
        self.children: list[subprocess.Popen[bytes]] = []
        connect_systems(self.ctx, cluster, poll_interval_s)

    def start(self) -> None:
        self.spawn("serve", "--port", str(self.port), "--threads", "4")
        self.spawn("worker", "--queue", "ingest")
        for _ in range(self.shape.outbound_workers):
            self.spawn("worker", "--queue", "outbound")
        self.spawn("poll")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("the hub's web process did not come up")

    def spawn(self, *args: str) -> None:
        log = (self.var / f"{args[0]}-{len(self.children)}.log").open("wb")
        self.children.append(subprocess.Popen([sys.executable, "-m", "hub.cli", *args], env=self.env,
                                              stdout=log, stderr=subprocess.STDOUT, cwd=REPO))

    def check_alive(self) -> None:
        dead = [p.args for p in self.children if p.poll() is not None]
        if dead:
            raise RuntimeError(f"hub process(es) stopped: {dead}; logs in {self.var}")

    def stop(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.children:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.ctx.close()


def connect_systems(ctx: HubContext, cluster: SandboxCluster, poll_interval_s: int) -> None:
    """sandbox/systems.demo.yaml pointed at the cluster; 数字城管 polled every ``poll_interval_s``."""
    items = yaml.safe_load((REPO / "sandbox" / "systems.demo.yaml").read_text(encoding="utf-8"))
    with ctx.db.session() as s:
        for item in items:
            item["base_url"] = cluster.urls[item["key"]]
            if item["key"] == DCM:
                item["poll_interval_s"] = poll_interval_s
            ensure_default_mapping(ctx, s, upsert_system(ctx, s, item))


# ----- waiting for the hub ------------------------------------------------------------------------


def wait_until(what: str, ready: Callable[[], bool], hub: Hub, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        hub.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{hub.shape.name}: gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.25)


def tickets_at(hub: Hub, system_key: str, code: str | None = None) -> int:
    with hub.ctx.db.read_session() as s:
        q = select(func.count(Ticket.id)).where(Ticket.system_key == system_key)
        if code is not None:
            q = q.where(Ticket.status_code == code)
        return int(s.scalar(q) or 0)


def busy(hub: Hub, cluster: SandboxCluster) -> bool:
    """Inbox rows or outbox rows still open, or 警情 changes the police have not pushed yet."""
    with hub.ctx.db.read_session() as s:
        inbox = s.scalar(select(func.count(InboundEvent.id)).where(InboundEvent.status == InboundStatus.PENDING))
        outbox = s.scalar(select(func.count(OutboundMessage.id)).where(
            OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.FAILED))))
    events = cluster.sim(POLICE).dispatcher.state()["events"]
    return bool(inbox or outbox or any(e["status"] == "pending" for e in events))


def case_numbers(hub: Hub) -> dict[str, str]:
    """JJDBH → the hub's case number (the 数字城管 externalNo of the routed case)."""
    with hub.ctx.db.read_session() as s:
        rows = s.execute(select(Ticket.external_id, Case.number).join(Case, Case.id == Ticket.case_id)
                         .where(Ticket.system_key == POLICE))
        return {jjdbh: number for jjdbh, number in rows}


def pending_to(hub: Hub, system_key: str) -> int:
    with hub.ctx.db.read_session() as s:
        return int(s.scalar(select(func.count(OutboundMessage.id)).where(
            OutboundMessage.system_key == system_key,
            OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.FAILED)))) or 0)


def breaker_open(hub: Hub) -> bool:
    with hub.ctx.db.read_session() as s:
        return circuit.is_open(s, POLICE, utcnow())


# ----- the measures -------------------------------------------------------------------------------


@dataclass
class Row:
    shape: str
    measure: str
    n: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    rate: float | None = None
    seconds: float | None = None
    note: str = ""
    load: float = field(default_factory=lambda: os.getloadavg()[0])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report_incidents(cluster: SandboxCluster, n: int) -> list[str]:
    """``n`` 警情 being worked (02 → 03 → 04), each at its own house number."""
    police = cluster.sim(POLICE)
    ids = []
    for i in range(n):
        row = police.report({"JQLBDM": "LD01", "JQZTDM": "02", "SFDD": f"徐汇区斜土路{100 + 2 * i}号",
                             "JYQK": f"报警人称斜土路{100 + 2 * i}号门口流动摊贩占道经营（{i}）。"})
        jjdbh = str(row["jq"]["JJDBH"])
        police.move(jjdbh, {"JQZTDM": "03"})
        police.move(jjdbh, {"JQZTDM": "04"})
        ids.append(jjdbh)
    return ids


def hand_over(cluster: SandboxCluster, jjdbh: str) -> float:
    cluster.sim(POLICE).move(jjdbh, {"JQZTDM": "06", "YJDW": "城管"})
    return time.monotonic()


def push_targets(jjdbh: str, numbers: dict[str, str]) -> list[tuple[str, ...]]:
    return [("dcm_create", numbers[jjdbh]), ("police", jjdbh, "JS")]


def take_on(cluster: SandboxCluster, case_id: str) -> float:
    cluster.sim(DCM).advance(case_id, "02", handle_result=None)
    return time.monotonic()


def latency_row(shape: str, measure: str, latencies: list[float], note: str) -> Row:
    return Row(shape, measure, len(latencies), 1000 * statistics.median(latencies),
               1000 * percentile(latencies, 0.99), note=note)


def measure_push_latency(cluster: SandboxCluster, stamps: Stamps, shape: str, ids: list[str],
                         numbers: dict[str, str]) -> Row:
    """One hand-over at a time: police change → 数字城管 case created and police JS applied."""
    latencies = []
    for jjdbh in ids:
        t0 = hand_over(cluster, jjdbh)
        latencies.append(max(stamps.wait_all(push_targets(jjdbh, numbers), 60)) - t0)
        time.sleep(0.2)
    return latency_row(shape, "push latency", latencies, "police 06 → 数字城管 create + police JS")


def measure_throughput(cluster: SandboxCluster, stamps: Stamps, shape: str, ids: list[str],
                       numbers: dict[str, str]) -> Row:
    """A burst of hand-overs; effects applied per second from the first change to the last write."""
    t0 = last_change = time.monotonic()
    for jjdbh in ids:
        last_change = hand_over(cluster, jjdbh)
    keys = [k for jjdbh in ids for k in push_targets(jjdbh, numbers)]
    done = stamps.wait_all(keys, 600)
    seconds = max(done) - t0
    window = max(done) - min(done)
    return Row(shape, "throughput", len(keys), rate=len(keys) / seconds, seconds=seconds,
               note=f"{len(ids)} hand-overs made in {last_change - t0:.2f} s; first→last write {window:.1f} s")


def dcm_case_ids(cluster: SandboxCluster, numbers: dict[str, str], ids: list[str]) -> dict[str, str]:
    """JJDBH → the 数字城管 caseId the hub created for it."""
    by_number = {c["externalNo"]: c["caseId"] for c in cluster.sim(DCM).state()["cases"]}
    return {jjdbh: by_number[numbers[jjdbh]] for jjdbh in ids}


def measure_pull_latency(cluster: SandboxCluster, stamps: Stamps, shape: str, ids: list[str],
                         dcm_ids: dict[str, str], poll_s: int) -> Row:
    """One department step at a time: 数字城管 02 → polled → police CZ applied."""
    latencies = []
    for jjdbh in ids:
        t0 = take_on(cluster, dcm_ids[jjdbh])
        latencies.append(stamps.wait_all([("police", jjdbh, "CZ")], 60)[0] - t0)
        time.sleep(0.2)
    return latency_row(shape, "pull latency", latencies, f"数字城管 02 → poll ({poll_s} s) → police CZ")


def measure_backlog(cluster: SandboxCluster, stamps: Stamps, hub: Hub, ids: list[str], dcm_ids: dict[str, str],
                    rate: float) -> Row:
    """The police are down while ``len(ids)`` department steps come in (compressed: as fast as the
    hub takes them) until the breaker is open; then the fault is lifted and the breaker reset by
    hand (``circuit.reset``, what an admin does when the system is back) and a nudge sent.

    ``seconds`` runs from the lift to the last write and ``effects/s`` is the backlog over it; the
    note adds the rate while writes flow, because the hub adds a wait after a reset: rows the
    breaker handed back keep its retry time, rows that failed keep their backoff."""
    faults = cluster.apps[POLICE].extensions["faults"]
    faults.update({"down": True})
    for jjdbh in ids:
        take_on(cluster, dcm_ids[jjdbh])
    wait_until(f"{len(ids)} CZ effects in the outbox and the breaker open",
               lambda: pending_to(hub, POLICE) >= len(ids) and breaker_open(hub), hub)
    faults.reset()
    with hub.ctx.db.session() as s:
        failed, deferred = backlog_kinds(s)
        circuit.reset(s, POLICE)
    lifted = time.monotonic()
    hub.ctx.bus.publish_outbound(len(ids))
    done = stamps.wait_all([("police", jjdbh, "CZ") for jjdbh in ids], 900)
    drain = max(done) - lifted
    # lag as a real outage would show it: change i came i/rate seconds into the outage
    lags = [OUTAGE_S - i / rate + (t - lifted) for i, t in enumerate(done)]
    return Row(hub.shape.name, "backlog drain", len(ids), rate=len(ids) / drain, seconds=drain,
               note=f"{rate:.3g} changes/s × {OUTAGE_S:.0f} s outage; breaker reset by hand; at the lift "
                    f"{deferred} rows held back until the breaker's retry time, {failed} in backoff; "
                    f"{active_rate(done, lifted):.1f} effects/s while delivering (gaps > 1 s left out); "
                    f"max lag {max(lags):.0f} s (outage included)")


def backlog_kinds(s: Session) -> tuple[int, int]:
    """Open rows to the police that failed (backoff) and that wait beyond now (breaker hand-back)."""
    soon = utcnow() + timedelta(seconds=1)
    rows = s.execute(select(OutboundMessage.status, OutboundMessage.next_attempt_at).where(
        OutboundMessage.system_key == POLICE, OutboundMessage.status.in_((OutboundStatus.PENDING,
                                                                          OutboundStatus.FAILED)))).all()
    failed = sum(1 for status, _ in rows if status == OutboundStatus.FAILED)
    held = sum(1 for status, due in rows if status == OutboundStatus.PENDING and due > soon)
    return failed, held


def active_rate(done: list[float], start: float) -> float:
    """Writes per second counting only the stretches where writes came less than 1 s apart."""
    moments = [start, *sorted(done)]
    active = sum(gap for gap in (b - a for a, b in pairwise(moments)) if gap <= 1.0)
    return len(done) / max(active, 1e-3)


# ----- one shape ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    samples: int
    burst: int
    rate: float
    poll_interval_s: int

    @property
    def backlog(self) -> int:
        return max(1, round(self.rate * OUTAGE_S))

    @property
    def handovers(self) -> int:
        """The throughput burst: at least the backlog, whose cases must have been handed over."""
        return max(self.burst, self.backlog)


@contextmanager
def running(shape_name: str, plan: Plan) -> Iterator[tuple[Hub, SandboxCluster, Stamps]]:
    var = Path(tempfile.mkdtemp(prefix=f"sync_bench_{shape_name}_"))
    cluster = start_all("127.0.0.1", 0, **SANDBOX_OPTIONS)
    stamps = Stamps()
    watch(cluster, stamps)
    hub = Hub(prepare_shape(shape_name, var), var, cluster, plan.poll_interval_s)
    try:
        hub.start()
        cluster.set_police_webhook(f"http://127.0.0.1:{hub.port}/hooks/{POLICE}")
        yield hub, cluster, stamps
    finally:
        cluster.stop()
        hub.stop()
        shutil.rmtree(var, ignore_errors=True)


def run_shape(shape_name: str, plan: Plan) -> list[Row]:
    n = plan.samples + plan.handovers
    started = time.monotonic()

    def progress(what: str) -> None:
        print(f"{shape_name} {time.monotonic() - started:5.0f} s  {what}", file=sys.stderr, flush=True)

    with running(shape_name, plan) as (hub, cluster, stamps):
        ids = report_incidents(cluster, n)
        wait_until(f"{n} 警情 read in", lambda: tickets_at(hub, POLICE, "04") == n and not busy(hub, cluster), hub)
        progress(f"{n} 警情 reported and read in")
        numbers = case_numbers(hub)
        sampled, rest = ids[:plan.samples], ids[plan.samples:]
        rows = [measure_push_latency(cluster, stamps, shape_name, sampled, numbers),
                measure_throughput(cluster, stamps, shape_name, rest, numbers)]
        progress("push latency and throughput measured")
        wait_until(f"{n} 数字城管 cases read back", lambda: tickets_at(hub, DCM) == n and not busy(hub, cluster),
                   hub)
        if stamps.count("police") != n:  # only the JS of each hand-over so far
            raise RuntimeError(f"unexpected police feedback before the pull phase: {stamps.count('police')} != {n}")
        dcm_ids = dcm_case_ids(cluster, numbers, ids)
        rows.append(measure_pull_latency(cluster, stamps, shape_name, sampled, dcm_ids, plan.poll_interval_s))
        progress("pull latency measured")
        rows.append(measure_backlog(cluster, stamps, hub, rest[:plan.backlog], dcm_ids, plan.rate))
        progress("backlog drained")
        hub.check_alive()
        return rows


# ----- output -------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def print_table(rows: list[Row], plan: Plan) -> None:
    print(f"\nsamples {plan.samples} per latency, burst {plan.handovers} hand-overs, backlog {plan.backlog} effects "
          f"({plan.rate:.3g}/s × {OUTAGE_S:.0f} s), 数字城管 poll interval {plan.poll_interval_s} s, "
          f"{os.cpu_count()} CPUs\n")
    print("| shape | measure | n | p50 ms | p99 ms | effects/s | seconds | load avg | what |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r.shape} | {r.measure} | {r.n} | {fmt(r.p50_ms)} | {fmt(r.p99_ms)} | {fmt(r.rate)} | "
              f"{fmt(r.seconds)} | {r.load:.2f} | {r.note} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("embedded", "scaled", "both"), default="both")
    parser.add_argument("--samples", type=int, default=25, help="changes per latency measure (one at a time)")
    parser.add_argument("--cases", type=int, default=150,
                        help="hand-overs in the throughput burst (at least the backlog)")
    parser.add_argument("--rate", type=float, default=0.25,
                        help="changes/s during the 10-minute outage (backlog = rate × 600 effects)")
    parser.add_argument("--poll-interval", type=int, default=1, help="数字城管 poll interval, seconds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 samples, 40 hand-overs, backlog 40")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the simulators' request log
    plan = (Plan(8, 40, 40 / OUTAGE_S, args.poll_interval) if args.quick
            else Plan(args.samples, args.cases, args.rate, args.poll_interval))
    shapes = ("embedded", "scaled") if args.shape == "both" else (args.shape,)
    rows: list[Row] = []
    for name in shapes:
        rows += run_shape(name, plan)
    print_table(rows, plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
