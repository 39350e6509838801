"""Contract of the 数字城管 plugin: the hub against the 数字城管 simulator, end to end.

Every case becomes exactly one ticket at its newest version, also when cases move while the
hub pages through the list; re-polling changes nothing; gateway errors, rate limits and revoked
tokens lose nothing; a 12345 transfer (source 03) joins its work order's case in either order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub.context import HubContext
from hub.models import InboundEvent, InboundStatus, SyncLog, Ticket, TicketReference
from hub.services.systems import upsert_system
from hub.workers.poller import poll_once
from tests.conftest import demo_systems
from tests.support.contract import (
    configure_system,
    held_tickets,
    inbound_rows,
    put_faults,
    sync_failures,
)

pytestmark = pytest.mark.timeout(60)

SYSTEM = "city_management"
HOTLINE = "hotline12345"
SHANGHAI = timezone(timedelta(hours=8))
X, Y = 3_448_000.0, 551_000.0  # a plausible EPSG:4549 point (northing, easting)
NEXT = {"01": "02", "02": "03", "03": "04", "04": "05"}


class FakeClock:
    """The simulator's clock: the tests decide when a second passes."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


# ----- wiring -------------------------------------------------------------------------------------


def connect(ctx: HubContext, cluster: Any, key: str = SYSTEM, **settings: Any) -> None:
    configure_system(ctx, cluster, key, settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dcm(hub_ctx: HubContext, sandbox: Any, clock: FakeClock) -> Any:
    """The cluster with 数字城管 connected (pages of 4) and its clock in the test's hands."""
    connect(hub_ctx, sandbox, page_size=4)
    sandbox.sim(SYSTEM).clock = clock
    return sandbox


# ----- the 数字城管 side ---------------------------------------------------------------------------


def file_case(cluster: Any, **fields: Any) -> dict[str, Any]:
    """The platform's inspector (or the hotline's own transfer) files a case: control endpoint."""
    body = {"bigClass": "05", "smallClass": "0504", "description": "店外经营占用人行道", "address": "斜土路1200号",
            "x": X, "y": Y, **fields}
    answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/cases", json=body, timeout=5)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def file_cases(cluster: Any, count: int, **fields: Any) -> list[str]:
    sim = cluster.sim(SYSTEM)
    return [sim.file_case({"bigClass": "05", "smallClass": "0505", "description": f"机动车乱停放{i}",
                           "x": X, "y": Y, **fields})["caseId"] for i in range(count)]


def advance(cluster: Any, case_id: str, status: str | None = None) -> None:
    sim = cluster.sim(SYSTEM)
    sim.advance(case_id, status or NEXT[sim.get_case(case_id)["status"]])


def set_faults(cluster: Any, **faults: Any) -> None:
    put_faults(cluster, SYSTEM, **faults)


def between_pages(cluster: Any, action: Callable[[int], None]) -> None:
    """Run ``action(page_index)`` right after the platform answered a list page (a moving set)."""
    sim = cluster.sim(SYSTEM)
    original = sim.list_cases
    count = iter(range(10_000))

    def list_cases(updated_from: Any, page_no: int, page_size: int) -> dict[str, Any]:
        page: dict[str, Any] = original(updated_from, page_no, page_size)
        action(next(count))
        return page

    sim.list_cases = list_cases


# ----- the hub side -------------------------------------------------------------------------------


def poll_until_done(ctx: HubContext, key: str = SYSTEM, limit: int = 30) -> None:
    for _ in range(limit):
        if not poll_once(ctx, key).more and last_poll_ok(ctx, key):
            return
    raise AssertionError("the list was not read to its end")


def last_poll_ok(ctx: HubContext, key: str = SYSTEM) -> bool:
    with ctx.db.read_session() as s:
        return bool(s.scalar(select(SyncLog.ok).where(SyncLog.system_key == key)
                             .order_by(SyncLog.id.desc()).limit(1)))


def failures(ctx: HubContext) -> list[tuple[str, str]]:
    return sync_failures(ctx, SYSTEM)


def tickets(ctx: HubContext, key: str = SYSTEM) -> dict[str, dict[str, Any]]:
    return held_tickets(ctx, key)


def inbound_count(ctx: HubContext) -> int:
    return len(inbound_rows(ctx, SYSTEM))


def assert_converged(ctx: HubContext, cluster: Any) -> None:
    """Every case of the platform is one ticket at its newest version and status."""
    cases = {c["caseId"]: c for c in cluster.sim(SYSTEM).state()["cases"]}
    held = tickets(ctx)
    assert set(held) == set(cases)
    for case_id, ticket in held.items():
        assert (ticket["seq"], ticket["status_code"]) == (cases[case_id]["version"], cases[case_id]["status"])
    with ctx.db.read_session() as s:
        bad = s.scalars(select(InboundEvent.error_reason).where(
            InboundEvent.system_key == SYSTEM,
            InboundEvent.status.not_in([InboundStatus.PROCESSED, InboundStatus.STALE]))).all()
    assert bad == []


# ----- the contract -------------------------------------------------------------------------------


def test_every_case_is_one_ticket_at_its_newest_version(hub_ctx: HubContext, dcm: Any, clock: FakeClock, client: Any,
                                                        admin_headers: dict[str, str]) -> None:
    expected = {}
    for big, small, category, moves in (("05", "0501", "street_vending", 0),
                                        ("01", "0102", "garbage_exposed", 1),
                                        ("05", "0505", "illegal_parking_motor", 2),
                                        ("03", "0301", "noise_construction", 3),
                                        ("11", "1101", "manhole_cover", 4)):
        case_id = file_case(dcm, bigClass=big, smallClass=small)["caseId"]
        for _ in range(moves):
            clock.tick()
            advance(dcm, case_id)
        expected[case_id] = category
    voided = file_case(dcm)["caseId"]
    advance(dcm, voided, "08")
    expected[voided] = "shopfront_trading"
    clock.tick()
    expected.update(dict.fromkeys(file_cases(dcm, 6), "illegal_parking_motor"))  # one crowded second

    poll_until_done(hub_ctx)

    assert_converged(hub_ctx, dcm)
    held = tickets(hub_ctx)
    assert {k: t["category"] for k, t in held.items()} == expected
    assert held[voided]["status"] == "CANCELLED"
    assert len({t["case_id"] for t in held.values()}) == len(expected)
    sim_cases = {c["caseId"]: c for c in dcm.sim(SYSTEM).state()["cases"]}
    for case_id, ticket in held.items():  # 案卷号 given at 立案 is a permanent alias
        case_no = sim_cases[case_id]["caseNo"]
        assert ticket["aliases"] == ([("case_no", case_no)] if case_no else [])
    some = next(k for k, t in held.items() if t["status_code"] == "05")
    answer = client.get(f"/api/v1/tickets/{SYSTEM}/{some}", headers=admin_headers)
    assert answer.status_code == 200
    assert answer.get_json()["status_label"] == "处置完成待核查"

    stored = inbound_count(hub_ctx)
    poll_until_done(hub_ctx)  # nothing changed: nothing new, nothing moves
    assert inbound_count(hub_ctx) == stored and tickets(hub_ctx) == held


def test_cases_moving_while_the_hub_pages_are_not_lost(hub_ctx: HubContext, dcm: Any, clock: FakeClock) -> None:
    crowded = sorted(file_cases(dcm, 11))  # more cases in one second than a page holds
    clock.tick()
    later = sorted(file_cases(dcm, 6))
    clock.tick(2)
    # already read (crowded[0..3] are page 1) and not yet read cases move to the end
    moves = {0: [crowded[0]], 1: [crowded[5], later[1]], 2: [crowded[1]], 3: [later[4], crowded[9]],
             5: [crowded[2]], 7: [later[0]]}

    def move(page: int) -> None:
        clock.tick()
        for case_id in moves.get(page, []):
            advance(dcm, case_id)
        if page == 4:
            file_cases(dcm, 2)  # new cases arrive too

    between_pages(dcm, move)
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, dcm)


def test_transient_faults_and_revoked_tokens_lose_nothing(hub_ctx: HubContext, dcm: Any, clock: FakeClock) -> None:
    for _ in range(3):
        file_cases(dcm, 3)
        clock.tick()
    state = {"fault_after": 1}

    def fail_mid_poll(page: int) -> None:
        if page == state["fault_after"]:
            set_faults(dcm, error_5xx_rate=1.0)  # the gateway fails from the next request on

    between_pages(dcm, fail_mid_poll)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "transient" and "502" in failures(hub_ctx)[-1][1]
    assert 0 < len(tickets(hub_ctx)) < 9  # the pages before the failure are kept

    set_faults(dcm)
    set_faults(dcm, rate_limit_per_s=1)  # the token request after the refused read is one too many
    requests.post(f"{dcm.control_urls[SYSTEM]}/_sandbox/revoke-tokens", timeout=5)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "transient" and "429" in failures(hub_ctx)[-1][1]

    set_faults(dcm)
    state["fault_after"] = -1
    advance(dcm, tickets_first(hub_ctx))  # a change meanwhile
    requests.post(f"{dcm.control_urls[SYSTEM]}/_sandbox/revoke-tokens", timeout=5)  # a restart
    set_faults(dcm, revoke_tokens=True)  # and another one at the next poll's first read
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, dcm)
    assert last_poll_ok(hub_ctx)


def tickets_first(ctx: HubContext) -> str:
    return sorted(tickets(ctx))[0]


def test_refused_client_stores_nothing_and_test_connection_says_why(
        hub_ctx: HubContext, dcm: Any, client: Any, admin_headers: dict[str, str]) -> None:
    file_cases(dcm, 2)
    item = next(i for i in demo_systems(dcm.urls) if i["key"] == SYSTEM)
    item["credentials"] = {"client_id": "gridhub", "client_secret": "not-the-secret"}
    with hub_ctx.db.session() as s:
        upsert_system(hub_ctx, s, item)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "permanent" and "invalid_client" in failures(hub_ctx)[-1][1]
    assert inbound_count(hub_ctx) == 0
    answer = client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers).get_json()
    assert answer["ok"] is False and "not-the-secret" not in str(answer)

    connect(hub_ctx, dcm)  # the demo credentials again
    answer = client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers).get_json()
    assert answer["ok"] is True and answer["detail"]["total"] == 2
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, dcm)


# ----- a 12345 transfer joins its work order's case -----------------------------------------------


def take_call(cluster: Any) -> str:
    """A 12345 operator takes a call about a street stall (dispatched to the gateway's unit)."""
    answer = requests.post(f"{cluster.control_urls[HOTLINE]}/_sandbox/workorders", timeout=5, json={
        "sqbt": "人行道上流动摊贩占道经营", "sqnr": "斜土路1200号门口流动摊贩占道，行人无法通行。",
        "wtfl": "0301", "fsdz": "徐汇区斜土路1200号"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["gdbh"])


def cross_referenced(ctx: HubContext, gdbh: str, case_id: str) -> None:
    order, transfer = tickets(ctx, HOTLINE)[gdbh], tickets(ctx, SYSTEM)[case_id]
    assert order["case_id"] is not None and order["case_id"] == transfer["case_id"]
    with ctx.db.read_session() as s:
        refs = s.execute(select(TicketReference.ref_system_type, TicketReference.ref_external_id,
                                TicketReference.relation)
                         .join(Ticket, Ticket.id == TicketReference.ticket_id)
                         .where(Ticket.system_key == SYSTEM)).all()
    assert [tuple(r) for r in refs] == [(HOTLINE, gdbh, "transferred_from")]


@pytest.mark.parametrize("hotline_first", [True, False], ids=["12345-first", "transfer-first"])
def test_a_12345_transfer_joins_the_work_orders_case(hub_ctx: HubContext, dcm: Any, hotline_first: bool) -> None:
    connect(hub_ctx, dcm, HOTLINE)
    gdbh = take_call(dcm)
    unrelated = file_case(dcm, bigClass="11", smallClass="1105", description="路灯不亮")["caseId"]
    if hotline_first:
        poll_until_done(hub_ctx, HOTLINE)
    transfer = file_case(dcm, source="03", externalNo=gdbh, bigClass="05", smallClass="0501",
                         description="12345转办：流动摊贩占道经营")["caseId"]
    poll_until_done(hub_ctx)
    if not hotline_first:
        poll_until_done(hub_ctx, HOTLINE)
    cross_referenced(hub_ctx, gdbh, transfer)
    assert tickets(hub_ctx)[unrelated]["case_id"] != tickets(hub_ctx)[transfer]["case_id"]
