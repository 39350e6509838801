"""Contract of the 12345 plugin: the hub against the 12345 simulator, end to end.

Every visible work order becomes exactly one ticket at its newest version; replays, faults
and refused credentials lose nothing and duplicate nothing; a 重复件 joins its master's case;
an unknown category waits in quarantine until the mapping is fixed and the event replayed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, func, select

from hub.context import HubContext
from hub.models import Case, PollCursor, SyncLog, Ticket, TicketReference
from hub.services.inbox import Inbox
from hub.workers.poller import poll_once
from sandbox import hotline12345_store
from tests.support.contract import (
    add_code_and_replay,
    assert_quarantined_for_code,
    case_count,
    configure_system,
    held_tickets,
    inbound_rows,
    put_faults,
    sync_failures,
)
from tests.support.hotline12345_side import APP_KEY, SYSTEM, act, hotline_step, take_call

pytestmark = pytest.mark.timeout(60)

OTHER_UNIT = "龙华街道"  # not one of the gateway's units: its orders stay invisible


# ----- wiring -------------------------------------------------------------------------------------


def connect(ctx: HubContext, cluster: Any, **changes: Any) -> None:
    configure_system(ctx, cluster, SYSTEM, changes.pop("settings", {}), **changes)


@pytest.fixture
def hotline(hub_ctx: HubContext, sandbox: Any) -> Any:
    connect(hub_ctx, sandbox, settings={"page_limit": 3})
    return sandbox


# ----- the 12345 side -----------------------------------------------------------------------------


def visible_changes(cluster: Any) -> int:
    """How many feed items the gateway can read from the start."""
    return len(cluster.sim(SYSTEM).changes(None, 10_000)["items"])


def set_faults(cluster: Any, **faults: Any) -> None:
    put_faults(cluster, SYSTEM, **faults)


# ----- the hub side -------------------------------------------------------------------------------


def poll_until_done(ctx: HubContext, limit: int = 30) -> None:
    for _ in range(limit):
        if not poll_once(ctx, SYSTEM).more and _last_poll_ok(ctx):
            return
    raise AssertionError("the feed was not read to its end")


def _last_poll_ok(ctx: HubContext) -> bool:
    with ctx.db.read_session() as s:
        return bool(s.scalar(select(SyncLog.ok).where(SyncLog.system_key == SYSTEM)
                             .order_by(SyncLog.id.desc()).limit(1)))


def tickets(ctx: HubContext) -> dict[str, dict[str, Any]]:
    return held_tickets(ctx, SYSTEM)


def inbound(ctx: HubContext) -> list[tuple[str, str, str]]:
    return inbound_rows(ctx, SYSTEM)


def forget_cursor(ctx: HubContext) -> None:
    with ctx.db.session() as s:
        s.execute(delete(PollCursor).where(PollCursor.system_key == SYSTEM))


def assert_converged(ctx: HubContext, cluster: Any) -> None:
    """Every visible order is one ticket at its newest version; every feed item stored once."""
    sim = cluster.sim(SYSTEM)
    held = tickets(ctx)
    assert set(held) == set(sim.state()["visible"])
    for gdbh, ticket in held.items():
        order = sim.get(gdbh)
        assert (ticket["seq"], ticket["status_code"]) == (order["version"], order["zt"]), gdbh
    events = inbound(ctx)
    assert len(events) == len({e[0] for e in events}) == visible_changes(cluster)
    assert all(status in ("processed", "stale") for _, status, _ in events)


# ----- the contract -------------------------------------------------------------------------------


def test_every_visible_order_is_one_ticket_at_its_newest_version(hub_ctx: HubContext, hotline: Any) -> None:
    expected = {}  # gdbh → (zt, canonical status, canonical category)
    gdbh = take_call(hotline, wtfl="0101")
    expected[gdbh] = ("20", "DISPATCHED", "illegal_construction")
    gdbh = take_call(hotline, wtfl="0102")
    act(hotline, gdbh, "QS")
    expected[gdbh] = ("30", "IN_PROGRESS", "group_rental")
    gdbh = take_call(hotline, wtfl="0201")
    act(hotline, gdbh, "QS")
    act(hotline, gdbh, "YQ", yqts=3, nr="需协调物业，申请延期。")
    expected[gdbh] = ("35", "SUSPENDED", "garbage_exposed")
    gdbh = take_call(hotline, wtfl="0301")
    act(hotline, gdbh, "QS")
    act(hotline, gdbh, "BJ", nr="已现场劝离流动摊贩，恢复通行。", bjlx="1")
    expected[gdbh] = ("40", "RESOLVED", "street_vending")
    gdbh = take_call(hotline, wtfl="0401")
    act(hotline, gdbh, "QS")
    act(hotline, gdbh, "BJ", nr="已联系车主挪车，通道恢复畅通。", bjlx="1")
    hotline_step(hotline, gdbh, op="HF", myd="1", sfjj="1")
    expected[gdbh] = ("50", "CLOSED", "illegal_parking_motor")
    gdbh = take_call(hotline, wtfl="0501")
    act(hotline, gdbh, "TD", nr="非本单位职责，请改派。")
    expected[gdbh] = ("60", "RETURNED", "noise_construction")
    gdbh = take_call(hotline, wtfl="0601")
    hotline_step(hotline, gdbh, op="CX")
    expected[gdbh] = ("70", "CANCELLED", "manhole_cover")
    take_call(hotline, wtfl="0701", dispatch=False)  # still at 10: invisible
    take_call(hotline, wtfl="0801", cbdw=OTHER_UNIT)  # another unit's order: invisible

    poll_until_done(hub_ctx)

    held = tickets(hub_ctx)
    assert {g: (t["status_code"], t["status"], t["category"]) for g, t in held.items()} == expected
    assert_converged(hub_ctx, hotline)
    assert all(status == "processed" for _, status, _ in inbound(hub_ctx))  # the feed is ordered
    assert case_count(hub_ctx) == len({t["case_id"] for t in held.values()}) == len(expected)


def test_replay_changes_nothing_and_older_versions_arrive_stale(hub_ctx: HubContext, hotline: Any) -> None:
    first = take_call(hotline, wtfl="0203")
    second = take_call(hotline, wtfl="0602")
    act(hotline, second, "QS")
    act(hotline, second, "BC", nr="已联系路灯养护单位。")  # second is now at version 4
    # The hub's first read starts after second's first two changes (a cursor from a restored
    # backup, say): it sees second only at version 4.
    head = hotline.sim(SYSTEM).changes(None, 3)
    assert [(i["gdbh"], i["version"]) for i in head["items"]] == [(first, 2), (second, 2), (second, 3)]
    Inbox(hub_ctx, SYSTEM).set_cursor("feed", head["nextCursor"])
    poll_until_done(hub_ctx)
    assert set(tickets(hub_ctx)) == {second}
    assert tickets(hub_ctx)[second]["seq"] == 4

    forget_cursor(hub_ctx)  # replay everything from the start of retention
    poll_until_done(hub_ctx)
    held, stored = tickets(hub_ctx), inbound(hub_ctx)
    assert held[second]["seq"] == 4 and held[second]["status"] == "IN_PROGRESS"
    assert {event_id: status for event_id, status, _ in stored if event_id.startswith(second)} == {
        f"{second}@2": "stale", f"{second}@3": "stale", f"{second}@4": "processed"}
    assert set(held) == {first, second} and case_count(hub_ctx) == 2

    forget_cursor(hub_ctx)  # and once more: nothing at all changes
    poll_until_done(hub_ctx)
    assert tickets(hub_ctx) == held and inbound(hub_ctx) == stored and case_count(hub_ctx) == 2
    assert_converged(hub_ctx, hotline)


def test_transient_faults_lose_nothing(hub_ctx: HubContext, hotline: Any) -> None:
    orders = [take_call(hotline, wtfl=code) for code in ("0101", "0201", "0301", "0401", "0501",
                                                         "0601", "0701", "0801")]
    for gdbh in orders[:4]:
        act(hotline, gdbh, "QS")
    connect(hub_ctx, hotline, settings={"page_limit": 2})

    set_faults(hotline, rate_limit_per_s=1)  # the second page in the same second is refused
    poll_once(hub_ctx, SYSTEM)
    set_faults(hotline, rate_limit_per_s=0, error_5xx_rate=0.5, seed=11)
    for _ in range(4):
        poll_once(hub_ctx, SYSTEM)
    set_faults(hotline, error_5xx_rate=0, internal_error_rate=1.0)  # code 5000 in HTTP 200
    poll_once(hub_ctx, SYSTEM)
    set_faults(hotline, internal_error_rate=0, timeout_rate=1.0, timeout_s=0.6)
    connect(hub_ctx, hotline, settings={"timeout_s": 0.2})
    poll_once(hub_ctx, SYSTEM)

    failures = sync_failures(hub_ctx, SYSTEM)
    assert {kind for kind, _ in failures} == {"transient"}
    details = " ".join(detail for _, detail in failures)
    for sign in ("429", "502", "5000", "timed out"):
        assert sign in details

    set_faults(hotline)
    connect(hub_ctx, hotline, settings={"timeout_s": 10})
    act(hotline, orders[0], "BJ", nr="违章搭建已拆除完毕，现场恢复。", bjlx="1")  # a change meanwhile
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, hotline)
    assert case_count(hub_ctx) == len(orders)


def test_refused_credentials_store_nothing_until_fixed(hub_ctx: HubContext, hotline: Any,
                                                       client: Any, admin_headers: dict[str, str]) -> None:
    take_call(hotline, wtfl="0402")
    connect(hub_ctx, hotline, credentials={"app_key": APP_KEY, "app_secret": "not-the-secret-0001"})
    poll_once(hub_ctx, SYSTEM)
    assert sync_failures(hub_ctx, SYSTEM)[-1][0] == "permanent" and "4010" in sync_failures(hub_ctx, SYSTEM)[-1][1]
    assert inbound(hub_ctx) == [] and Inbox(hub_ctx, SYSTEM).get("feed") is None
    answer = client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers)
    assert answer.status_code == 200 and answer.get_json()["ok"] is False
    assert "not-the-secret-0001" not in answer.get_data(as_text=True)

    connect(hub_ctx, hotline, credentials={"app_key": APP_KEY, "app_secret": "demo-secret-0001"})
    assert client.post(f"/api/v1/systems/{SYSTEM}/test-connection", headers=admin_headers).get_json()["ok"]
    poll_until_done(hub_ctx)
    assert_converged(hub_ctx, hotline)


def duplicate_pair(ctx: HubContext, cluster: Any) -> tuple[str, str, int | None]:
    """A master order and a second call about the same stall, first seen apart, then marked CF."""
    master = take_call(cluster, wtfl="0301", fsdz="斜土路1175号门口", sqbt="流动摊贩占道")
    duplicate = take_call(cluster, wtfl="0203", fsdz="斜土路1175号", sqbt="摊贩留下垃圾")
    poll_until_done(ctx)
    own_case = tickets(ctx)[duplicate]["case_id"]
    assert tickets(ctx)[master]["case_id"] != own_case
    act(cluster, duplicate, "QS")
    act(cluster, duplicate, "CF", zgdbh=master)
    poll_until_done(ctx)
    return master, duplicate, own_case


def test_a_duplicate_order_references_its_master(hub_ctx: HubContext, hotline: Any) -> None:
    master, duplicate, _ = duplicate_pair(hub_ctx, hotline)
    held = tickets(hub_ctx)
    assert (held[duplicate]["status_code"], held[duplicate]["status"]) == ("80", "DUPLICATE")
    with hub_ctx.db.read_session() as s:
        refs = s.execute(select(TicketReference.ref_system_type, TicketReference.ref_external_id,
                                TicketReference.relation).join(Ticket)
                         .where(Ticket.external_id == duplicate)).all()
    assert [tuple(r) for r in refs] == [(SYSTEM, master, "duplicate_of")]

    # The master is finished: its 办结 is appended to the duplicate, which comes round again.
    act(hotline, master, "QS")
    act(hotline, master, "BJ", nr="摊贩已劝离，垃圾已清运。", bjlx="1")
    poll_until_done(hub_ctx)
    with hub_ctx.db.read_session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.external_id == duplicate))
        assert ticket is not None and ticket.seq == hotline.sim(SYSTEM).get(duplicate)["version"]
        assert (ticket.status, ticket.fields.get("result_text")) == ("DUPLICATE", "摊贩已劝离，垃圾已清运。")
    assert_converged(hub_ctx, hotline)


def test_a_duplicate_order_joins_its_masters_case(hub_ctx: HubContext, hotline: Any) -> None:
    master, duplicate, own_case = duplicate_pair(hub_ctx, hotline)
    held = tickets(hub_ctx)
    assert held[duplicate]["case_id"] == held[master]["case_id"]
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, held[master]["case_id"])
        assert case is not None and case.status == "DISPATCHED"  # the master carries the case
        emptied = s.get(Case, own_case)
        assert emptied is not None and emptied.status == "CANCELLED"  # merged away, kept for history
        assert s.scalar(select(func.count(Ticket.id)).where(Ticket.case_id == own_case)) == 0


def test_unknown_category_waits_in_quarantine_until_the_mapping_is_fixed(
        hub_ctx: HubContext, hotline: Any, client: Any, admin_headers: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 12345 adds a category to its taxonomy; the hub's mapping does not know it yet.
    monkeypatch.setitem(hotline12345_store.TAXONOMY, "1001", "城市管理>共享单车>乱停放")
    monkeypatch.setitem(hotline12345_store.CODE_SETS, "wtfl", {*hotline12345_store.CODE_SETS["wtfl"], "1001"})
    gdbh = take_call(hotline, wtfl="1001")
    act(hotline, gdbh, "QS")
    known = take_call(hotline, wtfl="0402")
    poll_until_done(hub_ctx)
    assert set(tickets(hub_ctx)) == {known}

    assert_quarantined_for_code(client, admin_headers, SYSTEM, [f"{gdbh}@2", f"{gdbh}@3"], "1001")
    add_code_and_replay(client, admin_headers, SYSTEM, after_line='    "0901": policy_inquiry',
                        new_line='    "1001": illegal_parking_bike',
                        vocabulary=('"0801", "0901"]', '"0801", "0901", "1001"]'),
                        code='"1001"', comment="新增分类 1001 共享单车乱停放", replayed=2)

    held = tickets(hub_ctx)
    assert (held[gdbh]["seq"], held[gdbh]["status"], held[gdbh]["category"]) == (
        3, "IN_PROGRESS", "illegal_parking_bike")
    assert case_count(hub_ctx) == 2
    assert_converged(hub_ctx, hotline)
