"""The two-way status sync end to end: a real hub (services, pollers, the police webhook) against
the four simulators. Each test is one business flow across systems: a case is routed, the
department's progress is read back, and every other linked record is told in its own words
(12345 QS/BC/BJ/CF, police JS/CZ/BJ, 数字城管 VERIFY), until everything settles and converges.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub.context import HubContext
from hub.models import Case, CaseEvent, OutboundMessage, OutboundStatus, Ticket, utcnow
from hub.services import outbox, routing, sync
from hub.workers.poller import poll_once, pulled_systems
from tests.support.convergence import assert_converged
from tests.support.hotline12345_side import act, hotline_step, take_call

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOTLINE, POLICE, DCM, LAW = "hotline12345", "police_patrol", "city_management", "law_enforcement"
STALL = {"sqbt": "斜土路小区门口流动摊贩占道", "wtfl": "0301", "fsdz": "上海市徐汇区斜土路1200号门口",
         "zb": "121.4430,31.1940"}  # BD-09, inside the sandbox district
HANDLED = "城管中队已到场劝离流动摊贩，占道区域已清理完毕。"
VERIFIED_TEXT = "网格员现场核查：摊贩已撤离，通道畅通。"
DEMOLISHED = "已责令当事人自行拆除彩钢板房，现场已恢复原状。"
SETTLE_ROUNDS = 12


# ----- driving the hub ---------------------------------------------------------------------------


def settle(ctx: HubContext, cluster: Any, rounds: int = SETTLE_ROUNDS) -> None:
    """Deliver what is due, push the police webhooks, poll every pulled system, until two rounds in
    a row send and read nothing and nothing waits (bounded: a flow that never settles fails its
    asserts). The police simulator's own thread also pushes, so quiet means its queue is empty."""
    quiet = 0
    for _ in range(rounds):
        counts = outbox.deliver_due(ctx)
        cluster.sim(POLICE).dispatcher.deliver_due()
        stored = sum(poll_once(ctx, key).stored for key in pulled_systems(ctx))
        busy = counts.get(OutboundStatus.SENT) or stored or _waiting(ctx, cluster)
        quiet = 0 if busy else quiet + 1
        if quiet == 2:
            return
        time.sleep(0.05)  # lets a webhook the simulator's thread is pushing arrive


def _waiting(ctx: HubContext, cluster: Any) -> bool:
    """Work still under way: a due outbox row, or a 警情 event the police have not delivered."""
    with ctx.db.read_session() as s:
        due = s.scalar(select(OutboundMessage.id).where(OutboundMessage.status == OutboundStatus.PENDING,
                                                        OutboundMessage.next_attempt_at <= utcnow()).limit(1))
    events = cluster.sim(POLICE).dispatcher.state()["events"]
    return due is not None or any(e["status"] == "pending" for e in events)


def case_of(ctx: HubContext, system_key: str, external_id: str) -> Case:
    with ctx.db.read_session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.system_key == system_key, Ticket.external_id == external_id))
        assert ticket is not None and ticket.case_id is not None, f"{system_key} {external_id} not read in"
        case = s.get(Case, ticket.case_id)
        assert case is not None
        s.expunge(case)
        return case


def tickets_of(ctx: HubContext, case_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    with ctx.db.read_session() as s:
        rows = s.scalars(select(Ticket).where(Ticket.case_id == case_id))
        return {(t.system_key, t.external_id): {"status": t.status, "code": t.status_code, "fields": t.fields}
                for t in rows}


def timeline(ctx: HubContext, case_id: int) -> list[tuple[str, dict[str, Any]]]:
    with ctx.db.read_session() as s:
        rows = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id))
        return [(e.kind, dict(e.detail or {})) for e in rows]


def sent(ctx: HubContext, case_id: int) -> list[tuple[str, str, str, str]]:
    """(system, operation, action or status, row status) of the case's outbox rows, in order."""
    with ctx.db.read_session() as s:
        rows = s.scalars(select(OutboundMessage).where(OutboundMessage.case_id == case_id)
                         .order_by(OutboundMessage.id))
        return [(m.system_key, m.operation, str(((m.payload or {}).get("action") or {}).get("action", "")),
                 m.status) for m in rows]


def route(ctx: HubContext, case_id: int, system_key: str, reason: str) -> routing.Routed:
    with ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return routing.route_case(ctx, s, case, system_key, actor="网格中心", reason=reason)


def verify(ctx: HubContext, case_id: int) -> int:
    """A grid worker's on-site check passes (what ``POST /cases/{id}/verify`` does)."""
    with ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "RESOLVED", case and case.status
        return sync.plan_hub_change(s, case, "VERIFIED", actor="网格员", reason=VERIFIED_TEXT)


# ----- driving the simulators --------------------------------------------------------------------


def dcm_case(cluster: Any, external_no: str) -> dict[str, Any]:
    return next(c for c in cluster.sim(DCM).state()["cases"] if c["externalNo"] == external_no)


def law_case(cluster: Any, external_no: str) -> dict[str, Any]:
    return next(c for c in cluster.sim(LAW).state()["cases"] if c["ExternalNo"] == external_no)


class SteppedClock:
    """The departments' clock: real time plus a minute per department step. 综合执法's ``Modified``
    (its version) has one-second resolution, two steps in one second would read back as the same
    version; and the two departments share it, so a record opened after another one's step is
    newer than that step (the case follows the newest change)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def step(self) -> None:
        self.offset += timedelta(minutes=1)


def law_handles(cluster: Any, clue_no: str, *statuses: str, result: str = "") -> None:
    """The 综合执法 platform moves the case; the last step carries the Result."""
    for status in statuses:
        cluster.sim(LAW).clock.step()
        cluster.sim(LAW).advance(clue_no, status, Result=result if status == statuses[-1] else None)


def dcm_handles(cluster: Any, case_id: str, *statuses: str, result: str = HANDLED) -> None:
    """The 数字城管 departments move the case; the last step carries the handling result."""
    for status in statuses:
        cluster.sim(DCM).clock.step()
        cluster.sim(DCM).advance(case_id, status, handle_result=result if status == statuses[-1] else None)


def order(cluster: Any, gdbh: str) -> dict[str, Any]:
    return dict(cluster.sim(HOTLINE).get(gdbh))


def bj_text(cluster: Any, gdbh: str) -> str:
    return next((e["nr"] for e in reversed(order(cluster, gdbh)["blgc"]) if e["czlx"] == "BJ"), "")


def police_report(cluster: Any) -> str:
    answer = requests.post(f"{cluster.control_urls[POLICE]}/_sandbox/jq",
                           json={"JQLBDM": "LD01", "SFDD": "徐汇区斜土路1200号",
                                 "JYQK": "报警人称斜土路1200号门口流动摊贩占道，与路人发生争执。"}, timeout=5)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["jq"]["JJDBH"])


def police_move(cluster: Any, jjdbh: str, *codes: str, **fields: Any) -> None:
    for code in codes:
        body = {"JQZTDM": code, **(fields if code == codes[-1] else {})}
        answer = requests.post(f"{cluster.control_urls[POLICE]}/_sandbox/jq/{jjdbh}/status", json=body, timeout=5)
        assert answer.status_code == 200, answer.text


def police_feedback(cluster: Any, jjdbh: str) -> list[tuple[str, str]]:
    return [(f["FKLX"], f.get("FKNR", "")) for f in cluster.sim(POLICE).state()["feedback"] if f["JJDBH"] == jjdbh]


@pytest.fixture
def world(hub_ctx: HubContext, connected: Any) -> Iterator[Any]:
    """The hub wired to the cluster; 数字城管 closes a verified case at once; the departments'
    steps happen a minute apart."""
    connected.sim(DCM).close_after_s = 0
    connected.sim(DCM).clock = connected.sim(LAW).clock = SteppedClock()
    yield connected


# ----- 1. 12345 → 数字城管 → verified → 12345 办结 -------------------------------------------------


def complaint_handled_by_dcm(ctx: HubContext, cluster: Any) -> tuple[str, int, str]:
    """A 12345 complaint routed to 数字城管 and handled there up to 05; returns (gdbh, case, caseId)."""
    gdbh = take_call(cluster, **STALL, sqnr="小区门口每天傍晚有流动摊贩占道经营，行人无法通行。")
    settle(ctx, cluster)
    case_id = case_of(ctx, HOTLINE, gdbh).id
    routed = route(ctx, case_id, DCM, "属城管职责")
    assert (routed.source, routed.external_no) == ("03", gdbh)
    settle(ctx, cluster)
    created = dcm_case(cluster, gdbh)
    assert (created["source"], created["status"]) == ("03", "01")
    assert case_of(ctx, DCM, created["caseId"]).id == case_id  # joined through the 12345 reference
    assert order(cluster, gdbh)["zt"] == "30"  # 12345 was told it is taken: QS
    dcm_handles(cluster, created["caseId"], "02", "03", "04", "05")
    settle(ctx, cluster)
    return gdbh, case_id, created["caseId"]


def test_12345_complaint_routed_to_dcm_waits_for_verification(hub_ctx: HubContext, world: Any, client: Any,
                                                              admin_headers: dict[str, str]) -> None:
    gdbh, case_id, dcm_id = complaint_handled_by_dcm(hub_ctx, world)

    assert case_of(hub_ctx, HOTLINE, gdbh).status == "RESOLVED"
    assert order(world, gdbh)["zt"] == "30"  # not 办结 before the grid worker checked on site
    assert not any(a == "BJ" for _, _, a, _ in sent(hub_ctx, case_id))

    answer = client.post(f"/api/v1/cases/{case_id}/verify", headers=admin_headers,
                         json={"result": "pass", "text": VERIFIED_TEXT})
    assert answer.status_code == 200 and answer.get_json()["status"] == "VERIFIED", answer.get_data(as_text=True)
    settle(hub_ctx, world)

    assert world.sim(DCM).get_case(dcm_id)["status"] in ("06", "07")
    assert world.sim(DCM).get_case(dcm_id)["verifyResult"] == "PASS"
    assert (DCM, "status", "VERIFY", OutboundStatus.SENT) in sent(hub_ctx, case_id)
    assert_converged(hub_ctx, world)


def test_12345_gets_bj_with_the_departments_words_after_verification(hub_ctx: HubContext, world: Any) -> None:
    gdbh, case_id, _ = complaint_handled_by_dcm(hub_ctx, world)
    verify(hub_ctx, case_id)
    settle(hub_ctx, world)

    assert order(world, gdbh)["zt"] == "40"
    assert bj_text(world, gdbh) == HANDLED
    hotline_step(world, gdbh, op="HF", myd="1", sfjj="1")  # 回访: 满意
    settle(hub_ctx, world)
    assert tickets_of(hub_ctx, case_id)[(HOTLINE, gdbh)]["fields"]["satisfaction"] == "satisfied"
    assert_converged(hub_ctx, world)


# ----- 2. three calls about one stall → one case, two 重复件 ------------------------------------------


def test_three_calls_about_one_stall_make_one_case_and_two_duplicates(hub_ctx: HubContext, world: Any) -> None:
    calls = [take_call(world, **STALL, ldsj=f"2026-11-23 18:0{i}:00",
                       sqnr=f"斜土路1200号小区门口流动摊贩占道经营，堵住人行道。来电{i}") for i in range(3)]
    settle(hub_ctx, world)

    cases = {case_of(hub_ctx, HOTLINE, gdbh).id for gdbh in calls}
    assert len(cases) == 1, f"the three calls were not matched into one case: {cases}"
    case_id = cases.pop()
    merges = [row for row in sent(hub_ctx, case_id) if row[1] == "merge"]
    assert len(merges) == 2 and all(r[3] == OutboundStatus.SENT for r in merges), merges
    master = calls[0]
    for gdbh in calls[1:]:
        assert (order(world, gdbh)["zt"], order(world, gdbh)["zgdbh"]) == ("80", master)

    act(world, master, "QS")
    act(world, master, "BJ", nr=HANDLED, bjlx="1")  # the unit finished in 12345 itself
    settle(hub_ctx, world)

    assert case_of(hub_ctx, HOTLINE, master).status == "RESOLVED"
    assert all(bj_text(world, gdbh) == HANDLED for gdbh in calls[1:])  # 12345 passes the master's BJ on
    hotline_step(world, master, op="HF", myd="1", sfjj="1")  # 回访: 满意, archived (50)
    settle(hub_ctx, world)

    assert case_of(hub_ctx, HOTLINE, master).status == "CLOSED"
    assert tickets_of(hub_ctx, case_id)[(HOTLINE, master)]["fields"]["satisfaction"] == "satisfied"
    assert_converged(hub_ctx, world)


# ----- 3. police 06 handed over to 城管 ----------------------------------------------------------------


def police_handover_handled(ctx: HubContext, cluster: Any) -> tuple[str, int, str]:
    """A 警情 handed over to 城管, routed to 数字城管 and handled there up to 05."""
    jjdbh = police_report(cluster)
    police_move(cluster, jjdbh, "02", "03", "04", "06", YJDW="城管")
    settle(ctx, cluster)
    case = case_of(ctx, POLICE, jjdbh)
    assert case.owner_system == DCM
    created = dcm_case(cluster, case.number)
    assert created["source"] == "07"
    assert case_of(ctx, DCM, created["caseId"]).id == case.id
    assert [k for k, _ in police_feedback(cluster, jjdbh)] == ["JS"]

    dcm_handles(cluster, created["caseId"], "02", "03", "04")
    settle(ctx, cluster)
    # the department is at work: the case was IN_PROGRESS already (the police's own 03/04), so
    # this is the handler's progress, and the police hear 处置进展 once
    assert [k for k, _ in police_feedback(cluster, jjdbh)] == ["JS", "CZ"]
    dcm_handles(cluster, created["caseId"], "05")
    settle(ctx, cluster)
    assert case_of(ctx, POLICE, jjdbh).status == "RESOLVED"
    return jjdbh, case.id, created["caseId"]


def test_police_handover_becomes_a_dcm_case_and_is_verified(hub_ctx: HubContext, world: Any) -> None:
    jjdbh, case_id, dcm_id = police_handover_handled(hub_ctx, world)
    # RESOLVED waits for the grid worker's check: no BJ yet
    assert [k for k, _ in police_feedback(world, jjdbh)] == ["JS", "CZ"]

    verify(hub_ctx, case_id)
    settle(hub_ctx, world)

    assert world.sim(DCM).get_case(dcm_id)["verifyResult"] == "PASS"
    assert_converged(hub_ctx, world)


def test_police_get_bj_with_the_result_once_verified(hub_ctx: HubContext, world: Any) -> None:
    jjdbh, case_id, _ = police_handover_handled(hub_ctx, world)
    verify(hub_ctx, case_id)
    settle(hub_ctx, world)
    assert police_feedback(world, jjdbh)[-1] == ("BJ", HANDLED)


# ----- 4. illegal construction → 综合执法 --------------------------------------------------------------


def construction_closed_by_law(ctx: HubContext, cluster: Any) -> tuple[str, int, str]:
    """A 违章搭建 order routed to 综合执法 and taken through to 结案; returns (gdbh, case, ClueNo)."""
    gdbh = take_call(cluster, sqbt="楼顶违章搭建", sqnr="斜土路1200号楼顶有人搭建彩钢板房，已施工三天。",
                     wtfl="0101", fsdz="上海市徐汇区斜土路1200号", zb="121.4430,31.1940")
    settle(ctx, cluster)
    case_id = case_of(ctx, HOTLINE, gdbh).id
    route(ctx, case_id, LAW, "违法建设属综合执法")
    settle(ctx, cluster)
    clue = law_case(cluster, gdbh)
    assert clue["Source"] == "12345"  # a 12345 transfer, filed under its gdbh
    assert case_of(ctx, LAW, clue["ClueNo"]).id == case_id
    assert order(cluster, gdbh)["zt"] == "30"
    law_handles(cluster, clue["ClueNo"], "HC", "LA", "DCQZ", "SC", "CFJD", "ZX")
    settle(ctx, cluster)
    assert case_of(ctx, HOTLINE, gdbh).status == "IN_PROGRESS"
    law_handles(cluster, clue["ClueNo"], "JA", result=DEMOLISHED)
    settle(ctx, cluster)
    assert case_of(ctx, HOTLINE, gdbh).status == "CLOSED"
    assert tickets_of(ctx, case_id)[(LAW, clue["ClueNo"])]["code"] == "JA"
    return gdbh, case_id, clue["ClueNo"]


def test_illegal_construction_goes_to_law_enforcement_and_is_read_back(hub_ctx: HubContext, world: Any) -> None:
    construction_closed_by_law(hub_ctx, world)
    assert_converged(hub_ctx, world)


def test_the_linked_12345_order_gets_bj_at_ja(hub_ctx: HubContext, world: Any) -> None:
    gdbh, _, _ = construction_closed_by_law(hub_ctx, world)
    assert order(world, gdbh)["zt"] == "40"
    assert bj_text(world, gdbh) == DEMOLISHED
    # 综合执法's steps inside 办理中 reached the order as 补充办理情况 notes, in 综合执法's words
    notes = [e["nr"] for e in order(world, gdbh)["blgc"] if e["czlx"] == "BC"]
    assert notes and all("综合执法" in n or "执法" in n for n in notes), notes


# ----- 5. a department returns the case; it is routed again -----------------------------------------


def test_a_returned_case_is_routed_again(hub_ctx: HubContext, world: Any, client: Any,
                                         admin_headers: dict[str, str]) -> None:
    gdbh = take_call(world, **STALL, sqnr="斜土路1200号门口流动摊贩占道经营，傍晚最严重。")
    settle(hub_ctx, world)
    case_id = case_of(hub_ctx, HOTLINE, gdbh).id
    route(hub_ctx, case_id, LAW, "先交综合执法")
    settle(hub_ctx, world)
    clue = law_case(world, gdbh)["ClueNo"]
    law_handles(world, clue, "YS")  # 移送其他部门: not theirs
    settle(hub_ctx, world)
    assert case_of(hub_ctx, HOTLINE, gdbh).status == "RETURNED"

    answer = client.post(f"/api/v1/cases/{case_id}/route", headers=admin_headers,
                         json={"system_key": DCM, "reason": "综合执法移送，改派城管"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    routed = answer.get_json()
    assert (routed["owner_system"], routed["source"], routed["external_no"]) == (DCM, "03", gdbh)
    settle(hub_ctx, world)

    created = dcm_case(world, gdbh)
    assert case_of(hub_ctx, DCM, created["caseId"]).id == case_id
    events = timeline(hub_ctx, case_id)
    assert [d["to_owner"] for k, d in events if k == "routed"] == [LAW, DCM]
    moves = [(d["from"], d["to"]) for k, d in events if k == "status_changed"]
    assert ("IN_PROGRESS", "RETURNED") in moves and moves[-1] == ("RETURNED", "REPORTED")  # 数字城管 01
    returned_at = next(i for i, (k, d) in enumerate(events) if k == "status_changed" and d["to"] == "RETURNED")
    rerouted_at = max(i for i, (k, _) in enumerate(events) if k == "routed")
    assert returned_at < rerouted_at
    assert_converged(hub_ctx, world)
