"""Contract of the 12345 plugin's outbound delivery: status effects against the 12345 simulator.

A status effect becomes the gateway actions the spec allows, walked from wherever the work order
is (QS before BJ), each sent once in effect (X-Request-Id + expectedVersion); an order already
at the target is a success without a call; failures come back classified for the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from adapters.http import HttpTransport
from hub.context import HubContext
from hub.facade import Deliverer, DeliveryError, OutboundEffect, SystemConfig
from hub.models import OutboundMessage, OutboundStatus, SyncLog
from hub.services import outbox
from plugins.hotline12345.connector import HotlineConnector
from plugins.hotline12345.outbound import Refused, StatusEffect, plan_steps
from tests.support.contract import configure_system, put_faults
from tests.support.hotline12345_side import APP_KEY, SYSTEM, act, hotline_step, take_call

pytestmark = pytest.mark.timeout(60)

APP_SECRET = "demo-secret-0001"
UNITS = ["斜土路街道", "徐汇区城管执法局"]
OTHER_UNIT = "龙华街道"
RESULT = "已现场拆除地锁3处，恢复通行。"


# ----- the 12345 side -----------------------------------------------------------------------------


def order(cluster: Any, gdbh: str) -> dict[str, Any]:
    return dict(cluster.sim(SYSTEM).get(gdbh))


def writes(cluster: Any, gdbh: str) -> list[tuple[str, str, int, int | None]]:
    """(action, X-Request-Id, expectedVersion, answer code) of every action POSTed for ``gdbh``."""
    return [(w["body"]["action"], w["requestId"], w["body"]["expectedVersion"], w["code"])
            for w in cluster.sim(SYSTEM).state()["writes"] if w["gdbh"] == gdbh]


def steps(cluster: Any, gdbh: str) -> list[str]:
    """czlx of the order's 办理过程, oldest first."""
    return [entry["czlx"] for entry in order(cluster, gdbh)["blgc"]]


# ----- the hub side -------------------------------------------------------------------------------


def connector(cluster: Any, secret: str = APP_SECRET, transport: HttpTransport | None = None,
              **settings: Any) -> HotlineConnector:
    config = SystemConfig(key=SYSTEM, plugin=SYSTEM, name="12345", base_url=cluster.urls[SYSTEM],
                          credentials={"app_key": APP_KEY, "app_secret": secret},
                          settings={"units": UNITS, **settings})
    return HotlineConnector(config, transport=transport)


def effect(gdbh: str, status: str, action: str | None, key: str | None = None, *, args: dict[str, Any] | None = None,
           result_text: str = "", reason: str = "", master: str = "", operation: str = "status") -> OutboundEffect:
    payload = {"external_id": gdbh, "status": status,
               "action": None if action is None else {"action": action, "args": args or {}},
               "result_text": result_text, "reason": reason, "master_external_id": master}
    return OutboundEffect(message_id=1, case_id=1, system_key=SYSTEM, operation=operation, payload=payload,
                          idempotency_key=key or f"case-1:{SYSTEM}:{gdbh}:{status}:{uuid.uuid4().hex[:8]}")


def resolved(gdbh: str, key: str | None = None, text: str = RESULT) -> OutboundEffect:
    return effect(gdbh, "RESOLVED", "BJ", key, args={"bjlx": "1"}, result_text=text)


def refusal(conn: HotlineConnector, eff: OutboundEffect) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        conn.deliver(eff)
    return caught.value


@pytest.fixture
def hotline(sandbox: Any) -> Iterator[Any]:
    yield sandbox
    put_faults(sandbox, SYSTEM)


# ----- walking the spec's steps -------------------------------------------------------------------


def test_bj_from_20_walks_qs_then_bj_with_the_departments_words(hotline: Any) -> None:
    conn = connector(hotline, operator="网格中心")
    assert isinstance(conn, Deliverer)
    gdbh = take_call(hotline)
    assert order(hotline, gdbh)["zt"] == "20"
    eff = resolved(gdbh)

    result = conn.deliver(eff)

    assert (result.ok, result.detail, result.external_ref) == (True, "QS+BJ", gdbh)
    after = order(hotline, gdbh)
    assert after["zt"] == "40" and steps(hotline, gdbh) == ["PD", "QS", "BJ"]
    bj = after["blgc"][-1]
    assert (bj["nr"], bj["cbdw"]) == (RESULT, UNITS[0])
    key = eff.idempotency_key
    # each step has its own request id and the version it was planned on
    assert writes(hotline, gdbh) == [("QS", f"{key}:QS", 2, 0), ("BJ", key, 3, 0)]
    body = hotline.sim(SYSTEM).state()["writes"][-1]["body"]
    assert (body["bjlx"], body["czr"], body["cbdw"]) == ("1", "网格中心", UNITS[0])


def test_yq_from_20_walks_qs_and_asks_for_the_default_days(hotline: Any) -> None:
    gdbh = take_call(hotline)
    result = connector(hotline, yq_days=3).deliver(
        effect(gdbh, "SUSPENDED", "YQ", reason="需协调物业公司，申请延期办理。"))
    assert result.detail == "QS+YQ"
    assert order(hotline, gdbh)["zt"] == "35"
    assert hotline.sim(SYSTEM).state()["writes"][-1]["body"]["yqts"] == 3


def test_td_and_qs_alone(hotline: Any) -> None:
    conn = connector(hotline)
    accepted, returned = take_call(hotline), take_call(hotline)
    assert conn.deliver(effect(accepted, "ACCEPTED", "QS")).detail == "QS"
    assert conn.deliver(effect(returned, "RETURNED", "TD", reason="非本单位职责，请改派。")).detail == "TD"
    assert (order(hotline, accepted)["zt"], order(hotline, returned)["zt"]) == ("30", "60")
    assert order(hotline, returned)["blgc"][-1]["nr"] == "非本单位职责，请改派。"


# ----- once in effect -----------------------------------------------------------------------------


def test_redelivery_with_the_same_key_changes_nothing(hotline: Any) -> None:
    conn = connector(hotline)
    gdbh = take_call(hotline)
    eff = resolved(gdbh)
    assert conn.deliver(eff).detail == "QS+BJ"
    version, sent = order(hotline, gdbh)["version"], writes(hotline, gdbh)

    again = conn.deliver(eff)

    assert again.ok and again.detail == "nothing sent: already 40 (已办结待回访)"
    assert order(hotline, gdbh)["version"] == version and writes(hotline, gdbh) == sent  # no call at all


def test_lost_answers_are_applied_once(hotline: Any) -> None:
    """The answer to QS is lost (HTTP 504 after the action was done): the retry reads the order,
    sees QS done and sends only BJ; a retry after that sends nothing."""
    conn = connector(hotline)
    gdbh = take_call(hotline)
    eff = resolved(gdbh)
    put_faults(hotline, SYSTEM, lost_answer_rate=1.0)
    error = refusal(conn, eff)
    assert error.kind == "transient" and "504" in str(error)
    assert order(hotline, gdbh)["zt"] == "30"  # QS was done nevertheless

    put_faults(hotline, SYSTEM)
    assert conn.deliver(eff).detail == "BJ"
    assert conn.deliver(eff).detail.startswith("nothing sent")
    assert steps(hotline, gdbh) == ["PD", "QS", "BJ"]


def test_x_request_id_holds_when_the_order_moved_on_after_a_lost_answer(hotline: Any) -> None:
    """BJ is done but its answer lost; before the retry the citizen says 未解决 and the order is
    back at 30 (重办). The retry sends BJ with the same X-Request-Id: 12345 answers the first
    result and does not finish the order a second time on the old text."""
    conn = connector(hotline)
    gdbh = take_call(hotline)
    act(hotline, gdbh, "QS")
    eff = resolved(gdbh)
    put_faults(hotline, SYSTEM, lost_answer_rate=1.0)
    assert refusal(conn, eff).kind == "transient"
    put_faults(hotline, SYSTEM)
    hotline_step(hotline, gdbh, op="HF", myd="3", sfjj="0")
    assert order(hotline, gdbh)["zt"] == "30"

    assert conn.deliver(eff).detail == "BJ"

    assert steps(hotline, gdbh).count("BJ") == 1 and order(hotline, gdbh)["zt"] == "30"
    assert [w[1] for w in writes(hotline, gdbh)] == [eff.idempotency_key, eff.idempotency_key]


def test_version_conflict_is_re_read_and_retried_once(hotline: Any) -> None:
    """Someone adds a note (BC, version +1) between the hub's read and its BJ: 4009, re-read,
    BJ again on the new version with a request id of its own (12345 remembers the 4009)."""
    gdbh = take_call(hotline)
    act(hotline, gdbh, "QS")

    class RacingTransport(HttpTransport):
        raced = False

        def send(self, request: Any, **kwargs: Any) -> Any:
            if request.method == "POST" and not self.raced:
                self.raced = True
                act(hotline, gdbh, "BC", nr="已联系物业到场。")
            return super().send(request, **kwargs)

    conn = connector(hotline, transport=RacingTransport())
    eff = resolved(gdbh)

    assert conn.deliver(eff).detail == "BJ"

    key = eff.idempotency_key
    assert writes(hotline, gdbh)[-2:] == [("BJ", key, 3, 4009), ("BJ", f"{key}@v4", 4, 0)]
    assert order(hotline, gdbh)["zt"] == "40"


def test_already_at_the_target_is_a_success_without_a_call(hotline: Any) -> None:
    """The department finished in 12345 itself (the echo case), or the order went further."""
    conn = connector(hotline)
    finished, archived, signed, duplicate = (take_call(hotline) for _ in range(4))
    for gdbh in (finished, archived, signed):
        act(hotline, gdbh, "QS")
    act(hotline, finished, "BJ", nr=RESULT, bjlx="1")
    act(hotline, archived, "BJ", nr=RESULT, bjlx="1")
    hotline_step(hotline, archived, op="HF", myd="1", sfjj="1")
    act(hotline, duplicate, "CF", zgdbh=finished)
    calls_before = len(hotline.sim(SYSTEM).state()["writes"])

    assert conn.deliver(resolved(finished)).detail == "nothing sent: already 40 (已办结待回访)"
    assert conn.deliver(resolved(archived)).detail == "nothing sent: already 50 (已回访归档)"
    assert conn.deliver(effect(signed, "ACCEPTED", "QS")).detail == "nothing sent: already 30 (办理中)"
    assert conn.deliver(resolved(duplicate)).detail == "nothing sent: already 80 (重复件)"  # master carries on
    assert conn.deliver(effect(duplicate, "DUPLICATE", "CF", master=finished)).ok
    assert len(hotline.sim(SYSTEM).state()["writes"]) == calls_before


# ----- what the effect must carry -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "已处理"])
def test_bj_without_the_departments_result_text_is_a_mapping_error(hotline: Any, text: str) -> None:
    gdbh = take_call(hotline)
    error = refusal(connector(hotline), resolved(gdbh, text=text))
    assert error.kind == "mapping" and "result text" in str(error) and "10" in str(error)
    assert writes(hotline, gdbh) == [] and order(hotline, gdbh)["zt"] == "20"  # not even QS was sent


def test_effects_12345_cannot_express_are_mapping_errors(hotline: Any) -> None:
    conn = connector(hotline)
    gdbh = take_call(hotline)
    cases = [
        effect(gdbh, "DUPLICATE", "CF"),  # no master
        effect(gdbh, "DUPLICATE", "CF", master=gdbh),  # itself
        effect(gdbh, "RETURNED", "TD"),  # no reason; the spec requires nr
        effect(gdbh, "SUSPENDED", "YQ"),  # no reason
        effect(gdbh, "RESOLVED", "BJ", result_text=RESULT),  # the mapping gives no bjlx
        effect(gdbh, "CLOSED", None),  # the mapping has no action for the status
        effect(gdbh, "RESOLVED", "XX"),  # not an action of 12345
        effect(gdbh, "RESOLVED", "BJ", operation="note", result_text=RESULT),
    ]
    for eff in cases:
        assert refusal(conn, eff).kind == "mapping", eff.payload
    assert writes(hotline, gdbh) == []


def test_cf_marks_the_duplicate_with_its_master(hotline: Any) -> None:
    conn = connector(hotline)
    master, duplicate = take_call(hotline), take_call(hotline)
    eff = effect(duplicate, "DUPLICATE", "CF", master=master)

    assert conn.deliver(eff).detail == "CF"
    after = order(hotline, duplicate)
    assert (after["zt"], after["zgdbh"]) == ("80", master)
    assert conn.deliver(eff).detail == "nothing sent: already 80 (重复件)"

    # the master finishes: its BJ reaches the duplicate, and BJ on the duplicate needs nothing
    assert conn.deliver(resolved(master)).detail == "QS+BJ"
    assert order(hotline, duplicate)["blgc"][-1]["nr"] == RESULT
    assert conn.deliver(resolved(duplicate)).detail.startswith("nothing sent")

    third = take_call(hotline)
    error = refusal(conn, effect(duplicate, "DUPLICATE", "CF", master=third))
    assert error.kind == "permanent" and f"already a 重复件 of {master}" in str(error)
    # a master that is itself a 重复件: 12345's own 4001 naming zgdbh
    error = refusal(conn, effect(third, "DUPLICATE", "CF", master=duplicate))
    assert error.kind == "permanent" and "4001" in str(error) and "zgdbh" in str(error)


# ----- failures, classified -----------------------------------------------------------------------


def test_rate_limit_is_transient_with_retry_after(hotline: Any) -> None:
    gdbh = take_call(hotline)
    conn = connector(hotline)
    put_faults(hotline, SYSTEM, rate_limit_per_s=0.5, retry_after_s=7)
    requests.get(f"{hotline.urls[SYSTEM]}/workorders/{gdbh}", timeout=5)  # spends this second's budget
    error = refusal(conn, resolved(gdbh))
    assert (error.kind, error.retry_after) == ("transient", 7.0) and "429" in str(error)
    assert order(hotline, gdbh)["zt"] == "20"


def test_errors_inside_http_200_are_classified(hotline: Any) -> None:
    conn = connector(hotline)
    gdbh = take_call(hotline)

    put_faults(hotline, SYSTEM, internal_error_rate=1.0)  # code 5000: nothing done, retry
    error = refusal(conn, resolved(gdbh))
    assert error.kind == "transient" and "5000" in str(error)
    put_faults(hotline, SYSTEM)

    error = refusal(conn, resolved("GD20991231999999"))  # 4004
    assert error.kind == "permanent" and "4004" in str(error)

    wrong = "not-the-secret-0001"
    error = refusal(connector(hotline, secret=wrong), resolved(gdbh))  # 4010
    assert error.kind == "permanent" and "4010" in str(error)
    assert wrong not in str(error) and APP_SECRET not in str(error)

    # re-dispatched to a unit that is not the gateway's: the order stays visible, 12345 says 4002
    act(hotline, gdbh, "TD", nr="非本单位职责，请改派。")
    hotline_step(hotline, gdbh, op="PD", cbdw=OTHER_UNIT)
    error = refusal(connector(hotline, units=[]), effect(gdbh, "ACCEPTED", "QS"))
    assert error.kind == "permanent" and "4002" in str(error) and "非当前承办单位" in str(error)
    assert [w[3] for w in writes(hotline, gdbh)][-2:] == [4002, 4002]  # re-read, tried once more
    # knowing its units, the plugin refuses without asking
    sent = writes(hotline, gdbh)
    error = refusal(conn, effect(gdbh, "ACCEPTED", "QS"))
    assert error.kind == "permanent" and OTHER_UNIT in str(error) and writes(hotline, gdbh) == sent


def test_transport_trouble_is_transient(hotline: Any) -> None:
    gdbh = take_call(hotline)
    put_faults(hotline, SYSTEM, down=True)
    error = refusal(connector(hotline), resolved(gdbh))
    assert error.kind == "transient" and "503" in str(error)
    put_faults(hotline, SYSTEM, down=False, timeout_rate=1.0, timeout_s=1.0)
    error = refusal(connector(hotline, timeout_s=0.3), resolved(gdbh))
    assert error.kind == "transient" and "timed out" in str(error)


def test_a_state_the_spec_gives_no_way_from_is_permanent(hotline: Any) -> None:
    conn = connector(hotline)
    withdrawn, returned = take_call(hotline), take_call(hotline)
    hotline_step(hotline, withdrawn, op="CX")
    act(hotline, returned, "TD", nr="非本单位职责，请改派。")
    error = refusal(conn, resolved(withdrawn))
    assert error.kind == "permanent" and "70 (已撤销)" in str(error)
    error = refusal(conn, resolved(returned))
    assert error.kind == "permanent" and "60 (已退单)" in str(error)
    assert writes(hotline, withdrawn) == []


# ----- through the hub's outbox -------------------------------------------------------------------


def test_the_outbox_delivers_through_the_connector(hub_ctx: HubContext, hotline: Any) -> None:
    configure_system(hub_ctx, hotline, SYSTEM)
    gdbh, bare = take_call(hotline), take_call(hotline)
    with hub_ctx.db.session() as s:
        outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="status",
                       payload=dict(resolved(gdbh).payload), idempotency_key=f"k:{gdbh}")
        outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="status",
                       payload=dict(resolved(bare, text="").payload), idempotency_key=f"k:{bare}")

    counts = outbox.deliver_due(hub_ctx)

    assert counts == {OutboundStatus.SENT: 1, OutboundStatus.FAILED: 0, OutboundStatus.DEAD: 1, outbox.DEFERRED: 0}
    with hub_ctx.db.read_session() as s:
        rows = {m.idempotency_key: (m.status, m.error_kind) for m in s.scalars(select(OutboundMessage))}
        details = [log.detail for log in s.scalars(select(SyncLog).where(SyncLog.operation == "deliver"))]
    assert rows == {f"k:{gdbh}": (OutboundStatus.SENT, ""), f"k:{bare}": (OutboundStatus.DEAD, "mapping")}
    assert any("QS+BJ" in d for d in details)
    assert order(hotline, gdbh)["zt"] == "40" and order(hotline, bare)["zt"] == "20"


# ----- the plan, by the spec's table --------------------------------------------------------------


@pytest.mark.parametrize(("action", "zt", "expected"), [
    ("QS", "20", ("QS",)), ("QS", "30", ()), ("QS", "35", ()), ("QS", "40", ()), ("QS", "50", ()),
    ("BJ", "20", ("QS", "BJ")), ("BJ", "30", ("BJ",)), ("BJ", "35", ("BJ",)), ("BJ", "40", ()), ("BJ", "50", ()),
    ("BJ", "80", ()), ("YQ", "20", ("QS", "YQ")), ("YQ", "30", ("YQ",)), ("YQ", "35", ()),
    ("TD", "20", ("TD",)), ("TD", "30", ("TD",)), ("TD", "60", ()),
    ("CF", "20", ("CF",)), ("CF", "30", ("CF",)), ("BC", "20", ("QS", "BC")), ("BC", "35", ("BC",)),
])
def test_plan(action: str, zt: str, expected: tuple[str, ...]) -> None:
    assert plan_steps(StatusEffect(gdbh="GD1", status="X", action=action, master="GD0"), zt, None) == expected


@pytest.mark.parametrize(("action", "zt"), [
    ("QS", "60"), ("QS", "70"), ("BJ", "60"), ("BJ", "70"), ("BJ", "10"), ("TD", "35"), ("TD", "40"),
    ("CF", "35"), ("CF", "40"), ("CF", "70"), ("YQ", "60"), ("BC", "40"),
])
def test_plan_refuses_what_the_spec_rules_out(action: str, zt: str) -> None:
    with pytest.raises(Refused):
        plan_steps(StatusEffect(gdbh="GD1", status="X", action=action, master="GD0"), zt, None)
