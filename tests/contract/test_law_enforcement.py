"""Contract of the 综合执法 plugin: the hub against the 综合执法 simulator, end to end.

Every case becomes exactly one ticket at its newest snapshot, also when cases change while the
hub pages; a case changed in the cursor's second behind the cursor is not missed; re-polling
changes nothing; maintenance, rate limits and gateway errors lose nothing; Chinese text travels
intact through GBK (an emoji arrives as the platform's replacement).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub.context import HubContext
from hub.models import InboundEvent, InboundStatus, SyncLog, TicketReference
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

SYSTEM = "law_enforcement"
SHANGHAI = timezone(timedelta(hours=8))
NEXT = {"XSDJ": "HC", "HC": "LA", "LA": "DCQZ", "DCQZ": "SC", "SC": "CFJD", "CFJD": "ZX", "ZX": "JA"}


class FakeClock:
    """The platform's clock: the tests decide when a second passes (never 01:00–02:00)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


# ----- wiring -------------------------------------------------------------------------------------


def connect(ctx: HubContext, cluster: Any, **settings: Any) -> None:
    configure_system(ctx, cluster, SYSTEM, settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def zf(hub_ctx: HubContext, sandbox: Any, clock: FakeClock) -> Any:
    """The cluster with 综合执法 connected (3 cases per call) and its clock in the test's hands."""
    connect(hub_ctx, sandbox, max_count=3)
    sim = sandbox.sim(SYSTEM)
    sim.clock = clock
    sim.rate_limit_per_s = 0
    return sandbox


# ----- the 综合执法 side ---------------------------------------------------------------------------


def file_case(cluster: Any, **fields: Any) -> dict[str, Any]:
    """A case found by the platform's own patrol or a tip-off: control endpoint."""
    body = {"Source": "巡查", "Category": "CG-0201", "Content": "沿街无照经营，占用人行道",
            "Address": "徐汇区斜土路1200号", "Lng": "121.4410", "Lat": "31.1860", **fields}
    answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/cases", json=body, timeout=5)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def file_cases(cluster: Any, count: int) -> list[str]:
    sim = cluster.sim(SYSTEM)
    return [sim.file_case({"Category": "CG-0601", "Content": f"餐饮油烟扰民{i}"})["ClueNo"] for i in range(count)]


def advance(cluster: Any, clue_no: str, status: str | None = None, **details: str) -> None:
    sim = cluster.sim(SYSTEM)
    sim.advance(clue_no, status or NEXT[sim.query_case(clue_no)["Status"]], **details)


def set_faults(cluster: Any, **faults: Any) -> None:
    put_faults(cluster, SYSTEM, **faults)


def between_calls(cluster: Any, action: Callable[[int], None]) -> None:
    """Run ``action(call_index)`` right after the platform answered a QueryCases call."""
    sim = cluster.sim(SYSTEM)
    original = sim.query_cases
    count = iter(range(10_000))

    def query_cases(since: Any, after: Any, max_count: int) -> Any:
        answer = original(since, after, max_count)
        action(next(count))
        return answer

    sim.query_cases = query_cases


# ----- the hub side -------------------------------------------------------------------------------


def poll_until_done(ctx: HubContext, limit: int = 30) -> None:
    for _ in range(limit):
        if not poll_once(ctx, SYSTEM).more and last_poll_ok(ctx):
            return
    raise AssertionError("the cases were not read to their end")


def last_poll_ok(ctx: HubContext) -> bool:
    with ctx.db.read_session() as s:
        return bool(s.scalar(select(SyncLog.ok).where(SyncLog.system_key == SYSTEM)
                             .order_by(SyncLog.id.desc()).limit(1)))


def failures(ctx: HubContext) -> list[tuple[str, str]]:
    return sync_failures(ctx, SYSTEM)


def tickets(ctx: HubContext) -> dict[str, dict[str, Any]]:
    return held_tickets(ctx, SYSTEM)


def inbound_count(ctx: HubContext) -> int:
    return len(inbound_rows(ctx, SYSTEM))


def assert_converged(ctx: HubContext, cluster: Any) -> None:
    """Every case of the platform is one ticket holding exactly its current snapshot."""
    cases = {c["ClueNo"]: c for c in cluster.sim(SYSTEM).state()["cases"]}
    held = tickets(ctx)
    assert set(held) == set(cases)
    for clue_no, ticket in held.items():
        case = cases[clue_no]
        assert (ticket["seq"], ticket["status_code"]) == (int(case["Modified"]), case["Status"]), clue_no
        assert f"<Status>{case['Status']}</Status>" in ticket["raw"]
    with ctx.db.read_session() as s:
        bad = s.scalars(select(InboundEvent.error_reason).where(
            InboundEvent.system_key == SYSTEM,
            InboundEvent.status.not_in([InboundStatus.PROCESSED, InboundStatus.STALE]))).all()
    assert bad == []


# ----- the contract -------------------------------------------------------------------------------


def test_every_case_is_one_ticket_at_its_newest_snapshot(hub_ctx: HubContext, zf: Any, clock: FakeClock,
                                                         client: Any, admin_headers: dict[str, str]) -> None:
    expected = {}
    for category, canonical, steps in (("CG-0101", "illegal_construction", 0), ("CG-0201", "street_vending", 1),
                                       ("CG-0301", "construction_waste", 2), ("CG-0501", "noise_social", 4),
                                       ("CG-0601", "cooking_fumes", 7)):
        clue_no = file_case(zf, Category=category)["ClueNo"]
        for _ in range(steps):
            clock.tick()
            advance(zf, clue_no)
        expected[clue_no] = canonical
    referred = file_case(zf, Category="CG-0701", Source="12345", ExternalNo="GD2026112300099")["ClueNo"]
    advance(zf, referred, "YS")
    expected[referred] = "municipal_facility_damage"
    clock.tick()
    expected.update(dict.fromkeys(file_cases(zf, 7), "cooking_fumes"))  # one crowded second

    poll_until_done(hub_ctx)

    assert_converged(hub_ctx, zf)
    held = tickets(hub_ctx)
    assert {k: t["category"] for k, t in held.items()} == expected
    assert held[referred]["status"] == "RETURNED"
    assert len({t["case_id"] for t in held.values()}) == len(expected)
    cases = {c["ClueNo"]: c for c in zf.sim(SYSTEM).state()["cases"]}
    for clue_no, ticket in held.items():  # 案件编号 given at 立案 is a permanent alias
        case_no = cases[clue_no]["CaseNo"]
        assert ticket["aliases"] == ([("case_no", case_no)] if case_no else [])
    assert any(t["aliases"] for t in held.values())
    with hub_ctx.db.read_session() as s:
        refs = s.execute(select(TicketReference.ref_system_type, TicketReference.ref_external_id)).all()
    assert [tuple(r) for r in refs] == [("hotline12345", "GD2026112300099")]
    answer = client.get(f"/api/v1/tickets/{SYSTEM}/{referred}", headers=admin_headers)
    assert answer.status_code == 200 and answer.get_json()["status_label"] == "移送其他部门"

    stored = inbound_count(hub_ctx)
    poll_until_done(hub_ctx)  # nothing changed: nothing new, nothing moves
    assert inbound_count(hub_ctx) == stored and tickets(hub_ctx) == held


def test_a_case_changed_in_the_cursor_second_behind_the_cursor_is_not_missed(
        hub_ctx: HubContext, zf: Any, clock: FakeClock) -> None:
    clues = file_cases(zf, 5)  # all in one second
    poll_until_done(hub_ctx)
    assert set(tickets(hub_ctx)) == set(clues)
    # still the same second: the smallest ClueNo changes after the cursor passed it (twice)
    advance(zf, clues[0], Handler="徐汇区城管执法局第二中队")
    poll_until_done(hub_ctx)
    assert tickets(hub_ctx)[clues[0]]["status_code"] == "HC"
    advance(zf, clues[0], "BYLA", Result="经核查已整改")
    advance(zf, clues[1])
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, zf)
    assert tickets(hub_ctx)[clues[0]]["status"] == "CLOSED"
    assert len({t["seq"] for t in tickets(hub_ctx).values()}) == 1  # one second for all of them


def test_cases_changing_while_the_hub_pages_are_not_lost(hub_ctx: HubContext, zf: Any, clock: FakeClock) -> None:
    crowded = file_cases(zf, 8)
    clock.tick()
    later = file_cases(zf, 5)
    clock.tick(2)
    moves = {0: [crowded[0]], 1: [crowded[6], later[1]], 2: [crowded[1]], 3: [later[4], crowded[7]],
             4: [crowded[2]]}

    def move(call: int) -> None:
        if call % 2:
            clock.tick()  # sometimes within the same second, sometimes later
        for clue_no in moves.get(call, []):
            advance(zf, clue_no)
        if call == 2:
            file_cases(zf, 2)

    between_calls(zf, move)
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, zf)


def test_maintenance_rate_limit_and_gateway_errors_lose_nothing(hub_ctx: HubContext, zf: Any,
                                                                clock: FakeClock) -> None:
    for _ in range(3):
        file_cases(zf, 3)
        clock.tick()
    sim = zf.sim(SYSTEM)
    set_faults(zf, maintenance=True)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "transient" and "3001" in failures(hub_ctx)[-1][1]
    set_faults(zf)
    sim.rate_limit_per_s = 1  # the second call of a poll within one second: 1003
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "transient" and "1003" in failures(hub_ctx)[-1][1]
    assert 0 < len(tickets(hub_ctx)) < 9  # the first answer is kept with its cursor
    sim.rate_limit_per_s = 0

    def gateway_down_after_first(call: int) -> None:
        if call == 0:
            set_faults(zf, error_5xx_rate=1.0)

    between_calls(zf, gateway_down_after_first)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "transient" and "502" in failures(hub_ctx)[-1][1]
    set_faults(zf)
    clock.tick()
    advance(zf, sorted(tickets(hub_ctx))[0])  # a change while the hub could not read
    clock.now = (clock.now + timedelta(days=1)).replace(hour=1, minute=30)  # the nightly window
    poll_once(hub_ctx, SYSTEM)
    assert "3001" in failures(hub_ctx)[-1][1]
    clock.tick(3600)
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, zf)


def test_chinese_text_travels_intact_and_an_emoji_arrives_as_the_platforms_replacement(
        hub_ctx: HubContext, zf: Any) -> None:
    content = "深夜烧烤店油烟直排😡，邻居窗户被熏黑，多次投诉无果"
    address = "徐汇区斜土路１２００号（近宛平南路）"
    clue_no = file_case(zf, Category="CG-0601", Content=content, Address=address)["ClueNo"]
    stored = zf.sim(SYSTEM).query_case(clue_no)
    assert stored["Content"] == content.replace("😡", "?")  # what a GBK database keeps
    poll_until_done(hub_ctx)
    ticket = tickets(hub_ctx)[clue_no]
    assert ticket["description"] == stored["Content"]
    assert ticket["address"] == "徐汇区斜土路1200号（近宛平南路）"  # full-width digits cleaned, the rest kept
    assert stored["Content"] in ticket["raw"]


def test_refused_account_and_test_connection(hub_ctx: HubContext, zf: Any, client: Any,
                                             admin_headers: dict[str, str]) -> None:
    file_cases(zf, 2)
    item = next(i for i in demo_systems(zf.urls) if i["key"] == SYSTEM)
    item["credentials"] = {"user": "wgzx", "password": "not-the-password"}
    with hub_ctx.db.session() as s:
        upsert_system(hub_ctx, s, item)
    poll_once(hub_ctx, SYSTEM)
    assert failures(hub_ctx)[-1][0] == "permanent" and "1001" in failures(hub_ctx)[-1][1]
    answer = client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers).get_json()
    assert answer["ok"] is False and "not-the-password" not in str(answer)
    assert inbound_count(hub_ctx) == 0
    connect(hub_ctx, zf)
    answer = client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers).get_json()
    assert answer["ok"] is True and answer["detail"]["more"] is True  # MaxCount 1, two cases
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, zf)
