"""The two-way status sync under faults: a real hub against the four simulators while a worker is
killed -9 mid-delivery, two workers race, the broker restarts, a department is down for minutes,
综合执法 is in its nightly maintenance, an OAuth token is revoked, police webhooks come twice and
backwards, and a citizen's text holds characters GBK cannot. Every test ends with both
convergence checks: the hub holds every record at its version, and every effect reached its
system exactly once (``tests.support.convergence.assert_converged``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select, update

from hub.config import HubConfig
from hub.context import HubContext
from hub.models import CircuitBreaker, OutboundMessage, OutboundStatus, System, Ticket, utcnow
from hub.services import circuit, outbox, reconcile
from hub.services.health import system_health
from hub.services.systems import connector_for
from hub.workers.poller import poll_once, pulled_systems
from tests.conftest import TEST_BROKER
from tests.integration.test_sync_flows import (
    DCM,
    HANDLED,
    HOTLINE,
    LAW,
    POLICE,
    STALL,
    SteppedClock,
    case_of,
    dcm_case,
    dcm_handles,
    law_case,
    order,
    police_feedback,
    police_move,
    police_report,
    route,
    settle,
    tickets_of,
    verify,
)
from tests.support.convergence import assert_converged, effect_duplicates
from tests.support.hotline12345_side import take_call
from tests.support.processes import Workers, outbound_workers, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
SLOW_MS = 4000  # the department's latency while a worker is killed; the kill comes before any answer can
KILL_AFTER = 0.75  # share of SLOW_MS after the token was issued: the create is sent, its answer not back
WORKER_WAIT_S = 60.0  # a worker process starts (imports, plugins) and sweeps every 3 s
RABBIT = ("127.0.0.1", 5672)


# ----- helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    system_key: str
    operation: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    external_ref: str


def rows(ctx: HubContext, system_key: str | None = None) -> list[Row]:
    """The outbox rows (of one system), oldest first."""
    q = select(OutboundMessage).order_by(OutboundMessage.id)
    if system_key:
        q = q.where(OutboundMessage.system_key == system_key)
    with ctx.db.read_session() as s:
        return [Row(m.id, m.system_key, m.operation, m.status, m.attempts, _aware(m.next_attempt_at),
                    m.last_error, m.external_ref or "") for m in s.scalars(q)]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def wait_until(check: Callable[[], bool], seconds: float, what: str, workers: Workers | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}" + (f"\n{workers.logs()}" if workers else ""))


def fault(cluster: Any, key: str, **switches: Any) -> None:
    """Set a simulator's fault switches (sandbox/faults.py) through its control endpoint."""
    answer = requests.put(f"{cluster.control_urls[key]}/_sandbox/faults", json=switches, timeout=5)
    assert answer.status_code == 200, answer.text


def clear_faults(cluster: Any, key: str) -> None:
    answer = requests.delete(f"{cluster.control_urls[key]}/_sandbox/faults", timeout=5)
    assert answer.status_code == 200, answer.text


def expire_leases(ctx: HubContext) -> int:
    """What ``CLAIM_LEASE_S`` of waiting does to rows claimed by a worker that died: they are due
    again (the lease is nothing but ``next_attempt_at`` pushed ahead at the claim)."""
    now = utcnow()
    with ctx.db.session() as s:
        done = s.execute(update(OutboundMessage)
                         .where(OutboundMessage.status == OutboundStatus.PENDING, OutboundMessage.attempts >= 1,
                                OutboundMessage.next_attempt_at > now)
                         .values(next_attempt_at=now))
        return int(getattr(done, "rowcount", 0) or 0)


def poll_all(ctx: HubContext) -> int:
    return sum(poll_once(ctx, key).stored for key in pulled_systems(ctx))


def complaint(ctx: HubContext, cluster: Any, **fields: Any) -> tuple[str, int]:
    """A 12345 stall complaint read into a case; returns (gdbh, case id)."""
    gdbh = take_call(cluster, **{**STALL, "sqnr": "小区门口每天傍晚有流动摊贩占道经营，行人无法通行。", **fields})
    settle(ctx, cluster)
    return gdbh, case_of(ctx, HOTLINE, gdbh).id


def finish_at_dcm(ctx: HubContext, cluster: Any, gdbh: str, case_id: int) -> None:
    """数字城管 handles the case to 05, the grid worker verifies, 12345 gets its 办结."""
    dcm_handles(cluster, dcm_case(cluster, gdbh)["caseId"], "02", "03", "04", "05")
    settle(ctx, cluster)
    verify(ctx, case_id)
    settle(ctx, cluster)
    assert order(cluster, gdbh)["zt"] == "40"


def dcm_writes(cluster: Any, path_end: str) -> list[dict[str, Any]]:
    return [w for w in cluster.sim(DCM).state()["writes"] if w["path"].endswith(path_end)]


@pytest.fixture
def world(hub_ctx: HubContext, connected: Any) -> Iterator[Any]:
    """As in the flow tests: 数字城管 closes a verified case at once, department steps a minute apart."""
    connected.sim(DCM).close_after_s = 0
    connected.sim(DCM).clock = connected.sim(LAW).clock = SteppedClock()
    yield connected


@pytest.fixture
def workers(hub_config: HubConfig, tmp_path: Path) -> Iterator[Workers]:
    """Delivery worker subprocesses on the test's store and broker; all stopped at the end."""
    with outbound_workers(hub_config, tmp_path) as started:
        yield started


# ----- a. a worker killed -9 while the department is answering -----------------------------------


def test_a_worker_killed_mid_delivery_is_retried_after_its_lease_and_applied_once(
        hub_ctx: HubContext, world: Any, workers: Workers) -> None:
    """The worst moment to die: the department got the create, the worker never heard back. The
    retry after the lease carries the same idempotency key, so 数字城管 answers 'already there'."""
    gdbh, case_id = complaint(hub_ctx, world)
    tokens = world.sim(DCM).state()["activeTokens"]
    fault(world, DCM, latency_ms=SLOW_MS)
    route(hub_ctx, case_id, DCM, "属城管职责")
    first = workers.start()
    # the worker's first call (its OAuth token) was answered: the create is on its way now, and
    # its answer cannot come back before SLOW_MS from here
    wait_until(lambda: world.sim(DCM).state()["activeTokens"] > tokens, WORKER_WAIT_S, "the worker's token", workers)
    time.sleep(KILL_AFTER * SLOW_MS / 1000)
    first.kill()

    create = next(r for r in rows(hub_ctx, DCM) if r.operation == "create")
    assert (create.status, create.attempts) == (OutboundStatus.PENDING, 1), create  # claimed, no result
    # the department finishes the request the dead worker sent: the effect happened, unrecorded
    wait_until(lambda: any(c["externalNo"] == gdbh for c in world.sim(DCM).state()["cases"]), 10,
               "the killed worker's create to land")
    assert rows(hub_ctx, DCM)[0].status == OutboundStatus.PENDING

    clear_faults(world, DCM)
    workers.start()
    assert expire_leases(hub_ctx) >= 1
    wait_until(lambda: rows(hub_ctx, DCM)[0].status == OutboundStatus.SENT, WORKER_WAIT_S, "the retry", workers)
    retried = rows(hub_ctx, DCM)[0]
    assert retried.attempts == 2 and retried.external_ref == dcm_case(world, gdbh)["caseId"], retried
    assert [w["status"] for w in dcm_writes(world, "/dcm/api/cases")] == [201, 409]  # 409: already there
    workers.stop_all()

    settle(hub_ctx, world)
    finish_at_dcm(hub_ctx, world, gdbh, case_id)
    assert_converged(hub_ctx, world)


# ----- two delivery workers at once ------------------------------------------------------------

PLACES = (("斜土路1200号", "121.4430,31.1940"), ("宛平南路88号", "121.4560,31.1860"),
          ("龙华中路600号", "121.4650,31.1990"), ("天钥桥路100号", "121.4470,31.2040"))


def test_two_workers_deliver_every_effect_once(hub_ctx: HubContext, world: Any, workers: Workers) -> None:
    """Two worker processes claim from one outbox (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
    SQLite): each row is attempted by one of them, no effect reaches a system twice."""
    calls = [take_call(world, **{**STALL, "sqbt": f"{place}流动摊贩占道", "fsdz": f"上海市徐汇区{place}",
                                 "zb": zb, "sqnr": f"{place}门口流动摊贩占道经营，第{i}次反映。"})
             for i, (place, zb) in enumerate(PLACES)]
    settle(hub_ctx, world)
    cases = sorted({case_of(hub_ctx, HOTLINE, gdbh).id for gdbh in calls})
    assert len(cases) == len(calls), "the four places were matched into fewer cases"
    for _ in range(2):
        workers.start()
    wait_until(lambda: all("Connected to" in w.log_tail() for w in workers.started), WORKER_WAIT_S,
               "both workers to listen", workers)
    for case_id in cases:
        route(hub_ctx, case_id, DCM, "属城管职责")
    outbox.nudge(hub_ctx, len(cases))  # on RabbitMQ both workers consume nudges; on memory:// the sweep finds them

    def delivered() -> bool:
        poll_all(hub_ctx)  # reads back the new 数字城管 cases, which plans 12345's QS
        return all(order(world, g)["zt"] == "30" for g in calls) and all(
            r.status == OutboundStatus.SENT for r in rows(hub_ctx))

    wait_until(delivered, WORKER_WAIT_S, "every create and QS by the two workers", workers)
    assert all(w.alive for w in workers.started), workers.logs()
    workers.stop_all()
    assert not effect_duplicates(world)
    settle(hub_ctx, world)
    assert_converged(hub_ctx, world)


# ----- b. the broker restarts under a running worker ---------------------------------------------


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def broker_control() -> Iterator[Callable[[], None]]:
    """``stop_app`` the local RabbitMQ; whatever happens, it is started again and listening."""
    if not TEST_BROKER.startswith("amqp"):
        pytest.skip("broker restart needs RabbitMQ (GRIDHUB_TEST_BROKER_URL); the serverless transport "
                    "has no server to restart")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed here")
    try:
        _rabbitmqctl("status")
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"rabbitmqctl cannot control the local broker: {exc}")
    try:
        yield lambda: _rabbitmqctl("stop_app")
    finally:
        _rabbitmqctl("start_app")
        assert wait_for_port(*RABBIT, 60), "RabbitMQ did not come back"


def test_effects_planned_while_the_broker_restarts_are_delivered(
        hub_ctx: HubContext, world: Any, workers: Workers, broker_control: Callable[[], None]) -> None:
    """A nudge is only a hint: with RabbitMQ stopped it is lost, the worker's sweep delivers anyway."""
    gdbh, case_id = complaint(hub_ctx, world)
    workers.start()
    wait_until(lambda: "Connected to" in workers.started[0].log_tail(), WORKER_WAIT_S, "the worker", workers)
    broker_control()  # stop_app: nudges are lost, the worker's consumer reconnects in a loop
    route(hub_ctx, case_id, DCM, "属城管职责")
    assert hub_ctx.bus is not None and not hub_ctx.bus.publish_outbound(1)  # the nudge is lost
    _rabbitmqctl("start_app")
    assert wait_for_port(*RABBIT, 60)
    wait_until(lambda: any(c["externalNo"] == gdbh for c in world.sim(DCM).state()["cases"]), WORKER_WAIT_S,
               "the create planned during the outage", workers)
    wait_until(lambda: all(r.status == OutboundStatus.SENT for r in rows(hub_ctx)), WORKER_WAIT_S,
               "the row to be recorded", workers)
    assert workers.started[0].alive, workers.logs()
    workers.stop_all()
    settle(hub_ctx, world)
    assert_converged(hub_ctx, world)


# ----- c. a department system down for minutes ----------------------------------------------------


def breaker(ctx: HubContext, key: str) -> CircuitBreaker | None:
    with ctx.db.read_session() as s:
        row = s.get(CircuitBreaker, key)
        if row is not None:
            s.expunge(row)
        return row


def health(ctx: HubContext, key: str, now: datetime) -> dict[str, Any]:
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == key))
        assert system is not None
        return system_health(s, system, now=now)


def test_a_department_down_for_minutes_opens_the_circuit_and_is_repaired_after(
        hub_ctx: HubContext, world: Any) -> None:
    """An outage opens the breaker instead of burning attempts towards the dead letter; when the
    system answers again, the sweep re-reads what changed there while the hub could not look."""
    earlier, earlier_case = complaint(hub_ctx, world, sqnr="斜土路1200号门口傍晚流动摊贩占道，已持续一周。")
    route(hub_ctx, earlier_case, DCM, "属城管职责")
    settle(hub_ctx, world)
    earlier_dcm = dcm_case(world, earlier)["caseId"]
    gdbh, case_id = complaint(hub_ctx, world, sqbt="宛平南路88号流动摊贩占道", fsdz="上海市徐汇区宛平南路88号",
                              zb="121.4560,31.1860", sqnr="宛平南路88号门口流动摊贩占道经营，行人绕行。")

    fault(world, DCM, down=True)  # every API call: 503 from the gateway
    route(hub_ctx, case_id, DCM, "属城管职责")
    moment = utcnow()
    for attempt in range(circuit.FAILURE_THRESHOLD):  # each retry once its backoff has passed
        moment += timedelta(seconds=outbox.BACKOFF_CAP_S if attempt else 0)
        assert outbox.deliver_due(hub_ctx, now=moment)[OutboundStatus.FAILED] == 1
    opened = breaker(hub_ctx, DCM)
    assert opened is not None and opened.state == "open", opened
    assert health(hub_ctx, DCM, moment)["status"] == "down"
    create = rows(hub_ctx, DCM)[-1]
    assert (create.operation, create.status, create.attempts) == ("create", OutboundStatus.FAILED,
                                                                  circuit.FAILURE_THRESHOLD), create
    assert not any(outbox.deliver_due(hub_ctx, now=moment).values())  # open: nothing claimed
    assert rows(hub_ctx, DCM)[-1].attempts == circuit.FAILURE_THRESHOLD  # no attempt spent on an outage

    # the department works on the earlier case while the hub cannot read it
    dcm_handles(world, earlier_dcm, "02", "03", "04", "05")
    assert poll_once(hub_ctx, DCM).stored == 0
    clear_faults(world, DCM)

    assert opened.retry_at is not None
    after = _aware(opened.retry_at) + timedelta(seconds=outbox.BACKOFF_CAP_S)
    assert outbox.deliver_due(hub_ctx, now=after)[OutboundStatus.SENT] >= 1
    closed = breaker(hub_ctx, DCM)
    assert closed is not None and closed.state == "closed" and closed.needs_reconcile, closed
    assert case_of(hub_ctx, HOTLINE, earlier).status != "RESOLVED"  # not read yet
    (report,) = reconcile.reconcile_flagged(hub_ctx)
    assert report.ok and report.stored >= 1, report.as_dict()
    assert case_of(hub_ctx, HOTLINE, earlier).status == "RESOLVED"  # repaired by the sweep, no poll
    assert not reconcile.any_flagged(hub_ctx)

    settle(hub_ctx, world)
    assert not [r for r in rows(hub_ctx) if r.status == OutboundStatus.DEAD]
    assert dcm_case(world, gdbh)["status"] == "01"
    assert_converged(hub_ctx, world)


# ----- d. 综合执法's nightly maintenance window ---------------------------------------------------


class NightClock(SteppedClock):
    """The departments' clock set to 01:30 Asia/Shanghai tonight (inside 综合执法's window)."""

    def __init__(self) -> None:
        super().__init__()
        now = datetime.now(SHANGHAI)
        night = now.replace(hour=1, minute=30, second=0, microsecond=0)
        self.offset = night - now


def test_law_enforcement_maintenance_defers_the_transfer_to_after_two(hub_ctx: HubContext, world: Any) -> None:
    """3001 at night is a known window: the retry waits until just after 02:00, not a backoff guess."""
    night = NightClock()
    world.sim(DCM).clock = world.sim(LAW).clock = night
    gdbh = take_call(world, sqbt="楼顶违章搭建", sqnr="斜土路1200号楼顶有人搭建彩钢板房，已施工三天。",
                     wtfl="0101", fsdz="上海市徐汇区斜土路1200号", zb="121.4430,31.1940")
    settle(hub_ctx, world)
    case_id = case_of(hub_ctx, HOTLINE, gdbh).id
    with hub_ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == LAW))
        assert system is not None
        law = connector_for(hub_ctx, system)
    # the hub's clock agrees with the platform's: it is 01:30 in Shanghai for both
    law.clock = law.writer.clock = lambda: night().timestamp()  # type: ignore[attr-defined]

    route(hub_ctx, case_id, LAW, "违法建设属综合执法")
    sent_at = utcnow()
    assert outbox.deliver_due(hub_ctx)[OutboundStatus.FAILED] == 1
    transfer = next(r for r in rows(hub_ctx, LAW) if r.operation == "create")
    assert transfer.status == OutboundStatus.FAILED and "3001" in transfer.last_error, transfer
    wait = (transfer.next_attempt_at - sent_at).total_seconds()
    assert 30 * 60 <= wait <= 32 * 60, f"retry {wait:.0f} s later, not just after 02:00"  # 01:30 → ~02:01
    assert not any(c["ExternalNo"] == gdbh for c in world.sim(LAW).state()["cases"])

    night.offset += timedelta(minutes=32)  # 02:02 in Shanghai
    assert outbox.deliver_due(hub_ctx, now=transfer.next_attempt_at + timedelta(seconds=1))[OutboundStatus.SENT] >= 1
    assert rows(hub_ctx, LAW)[0].status == OutboundStatus.SENT
    transfers = [w for w in world.sim(LAW).state()["writes"] if w["method"] == "TransferClue"]
    assert [w["code"] for w in transfers] == [0]
    assert law_case(world, gdbh)["Source"] == "12345"
    settle(hub_ctx, world)
    assert_converged(hub_ctx, world)


# ----- e. an OAuth token revoked mid-run -----------------------------------------------------------


def test_a_revoked_token_is_renewed_and_the_write_applied_once(hub_ctx: HubContext, world: Any) -> None:
    """A token the platform forgot (a restart) costs one renewal, not a failed or repeated write."""
    gdbh, case_id = complaint(hub_ctx, world)
    route(hub_ctx, case_id, DCM, "属城管职责")
    settle(hub_ctx, world)  # the hub holds a token now (polls and the create used it)
    assert dcm_writes(world, "/dcm/api/cases")[-1]["status"] == 201
    dcm_handles(world, dcm_case(world, gdbh)["caseId"], "02", "03", "04", "05")
    settle(hub_ctx, world)

    fault(world, DCM, revoke_tokens=True)  # every token issued so far dies at the next API call
    verify(hub_ctx, case_id)  # plans VERIFY to 数字城管
    assert outbox.deliver_due(hub_ctx)[OutboundStatus.SENT] >= 1
    assert "revoke_tokens" not in requests.get(f"{world.control_urls[DCM]}/_sandbox/faults", timeout=5).json()["extra"]
    assert world.sim(DCM).state()["activeTokens"] == 1  # the old token died; the hub fetched a new one
    verifies = dcm_writes(world, "/operations")
    assert [(w["body"]["op"], w["status"]) for w in verifies] == [("VERIFY", 200)], verifies
    assert world.sim(DCM).get_case(dcm_case(world, gdbh)["caseId"])["verifyResult"] == "PASS"
    settle(hub_ctx, world)
    assert order(world, gdbh)["zt"] == "40"
    assert_converged(hub_ctx, world)


# ----- f. police webhooks duplicated and reversed --------------------------------------------------


def test_police_pushes_twice_and_backwards_end_at_the_newest_seq(hub_ctx: HubContext, world: Any) -> None:
    """At-least-once, unordered webhooks: the hub keeps the highest seq and acts on each change once."""
    # every push comes twice; the dispatcher's own thread holds new events back, so the test's
    # delivery sends each batch newest first
    fault(world, POLICE, duplicate_rate=1.0, reorder=True, reorder_hold_s=3600)
    jjdbh = police_report(world)
    police_move(world, jjdbh, "02", "03", "04", "06", YJDW="城管")
    settle(hub_ctx, world)

    pushes = [(d["seq"], d["copy"]) for d in world.sim(POLICE).state()["deliveries"] if d["JJDBH"] == jjdbh]
    firsts = [seq for seq, kind in pushes if kind == "main"]
    assert firsts[:5] == sorted(firsts[:5], reverse=True) and len(firsts) >= 5, pushes  # newest first
    assert sum(kind == "duplicate" for _, kind in pushes) == len(firsts), pushes
    case = case_of(hub_ctx, POLICE, jjdbh)
    assert case.owner_system == DCM
    newest = next(i["seq"] for i in world.sim(POLICE).state()["incidents"] if i["jq"]["JJDBH"] == jjdbh)
    with hub_ctx.db.read_session() as s:
        held = s.scalar(select(Ticket.seq).where(Ticket.system_key == POLICE, Ticket.external_id == jjdbh))
    assert held == newest and tickets_of(hub_ctx, case.id)[(POLICE, jjdbh)]["code"] == "06"  # not an older push
    assert [k for k, _ in police_feedback(world, jjdbh)] == ["JS"]

    dcm_id = dcm_case(world, case.number)["caseId"]
    dcm_handles(world, dcm_id, "02", "03", "04")
    settle(hub_ctx, world)  # 处置进展 to the police
    dcm_handles(world, dcm_id, "05")
    settle(hub_ctx, world)
    verify(hub_ctx, case.id)
    settle(hub_ctx, world)
    assert [k for k, _ in police_feedback(world, jjdbh)] == ["JS", "CZ", "BJ"]
    assert police_feedback(world, jjdbh)[-1] == ("BJ", HANDLED)
    assert_converged(hub_ctx, world)


# ----- g. text GBK cannot hold, routed to 综合执法 --------------------------------------------------

NOT_GBK = "楼顶彩钢板房😡越搭越高，业主𠀾𡈽说是自己家的地方🏠。"


def test_text_gbk_cannot_hold_reaches_law_enforcement_gbk_safe(hub_ctx: HubContext, world: Any) -> None:
    """A citizen's emoji must not turn a transfer into a 1002 refusal and a dead letter."""
    gdbh = take_call(world, sqbt="楼顶违章搭建😡", sqnr=f"斜土路1200号{NOT_GBK}", wtfl="0101",
                     fsdz="上海市徐汇区斜土路1200号", zb="121.4430,31.1940")
    settle(hub_ctx, world)
    case_id = case_of(hub_ctx, HOTLINE, gdbh).id
    route(hub_ctx, case_id, LAW, "违法建设属综合执法")
    settle(hub_ctx, world)

    transfers = [w for w in world.sim(LAW).state()["writes"] if w["method"] == "TransferClue"]
    assert [w["code"] for w in transfers] == [0], transfers  # no 1002
    content = law_case(world, gdbh)["Content"]
    content.encode("gbk")  # stored GBK-safe
    assert "楼顶彩钢板房" in content and "越搭越高" in content, content  # the words GBK holds survive
    assert not [r for r in rows(hub_ctx) if r.status != OutboundStatus.SENT]
    assert_converged(hub_ctx, world)

