"""Contract of the police plugin's outbound delivery: status effects as feedback, against the
police simulator.

A status effect becomes one feedback (JS/CZ/BJ) on a 警情 handed over to the linkage departments
(06). FKSJ is the hub change's time, so a retry is the police's DUPLICATE_FEEDBACK and is taken
once; INVALID_STATE is decided on the re-read 警情 (not yet handed over: retry; finished: not
owed; the one BJ already taken: done); failures come back classified for the outbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hub.context import HubContext
from hub.facade import Deliverer, DeliveryError, DeliveryResult, OutboundEffect, SystemConfig
from hub.models import OutboundMessage, OutboundStatus, SyncLog
from hub.services import outbox
from plugins.police_patrol.connector import PoliceConnector
from plugins.police_patrol.outbound import DEFAULT_TEXTS, DEFAULT_UNIT, Feedback, after_invalid_state, feedback_time
from tests.support.contract import configure_system, put_faults

pytestmark = pytest.mark.timeout(60)

SYSTEM = "police_patrol"
TOKEN = "police-demo-token"
CHANGED_AT = "2026-11-23T02:02:00.123456+00:00"
FKSJ = "2026-11-23T10:02:00+08:00"  # CHANGED_AT as the police write it
RESULT = "城管中队已到场，占道摊位已清理完毕。"


# ----- the police side ----------------------------------------------------------------------------


def report(cluster: Any) -> str:
    """A call is taken: a new 警情 at 01."""
    answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/jq",
                           json={"JQLBDM": "LD01", "SFDD": "徐汇区斜土路"}, timeout=5)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["jq"]["JJDBH"])


def move(cluster: Any, jjdbh: str, *codes: str, **fields: Any) -> None:
    """Walk a 警情 through ``codes``; ``fields`` go with the last step."""
    for code in codes:
        body = {"JQZTDM": code, **(fields if code == codes[-1] else {})}
        answer = requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/jq/{jjdbh}/status", json=body,
                               timeout=5)
        assert answer.status_code == 200, answer.text


def handed_over(cluster: Any) -> str:
    """A 警情 the police handed over to 城管 (06): the only state taking feedback."""
    jjdbh = report(cluster)
    move(cluster, jjdbh, "02", "03", "04", "06", YJDW="城管")
    return jjdbh


def close(cluster: Any, jjdbh: str) -> requests.Response:
    """The police close a handed-over 警情 (06 → 09: only after an accepted BJ)."""
    return requests.post(f"{cluster.control_urls[SYSTEM]}/_sandbox/jq/{jjdbh}/status", json={"JQZTDM": "09"},
                         timeout=5)


def feedback(cluster: Any, jjdbh: str) -> list[dict[str, Any]]:
    """The feedback the police hold for ``jjdbh``, oldest first."""
    return [f for f in cluster.sim(SYSTEM).state()["feedback"] if f["JJDBH"] == jjdbh]


def answers(cluster: Any, jjdbh: str) -> list[str]:
    """The answer to every feedback POST for ``jjdbh``: ``ok`` or the errorCode."""
    return ["ok" if w["answer"].get("success") else str(w["answer"].get("errorCode"))
            for w in cluster.sim(SYSTEM).state()["writes"]
            if isinstance(w["body"], dict) and w["body"].get("JJDBH") == jjdbh]


# ----- the hub side -------------------------------------------------------------------------------


def connector(cluster: Any, token: str = TOKEN, **settings: Any) -> PoliceConnector:
    config = SystemConfig(key=SYSTEM, plugin=SYSTEM, name="police", base_url=cluster.urls[SYSTEM],
                          credentials={"webhook_secret": "police-demo-secret", "feedback_token": token},
                          settings=settings)
    return PoliceConnector(config)


def effect(jjdbh: str, action: Any, *, status: str = "IN_PROGRESS", result_text: str = "",
           changed_at: Any = CHANGED_AT, operation: str = "status") -> OutboundEffect:
    payload = {"external_id": jjdbh, "status": status, "case_number": "GH-20261123-000001",
               "action": None if action is None else {"action": action, "args": {}},
               "result_text": result_text, "reason": "", "master_external_id": "", "changed_at": changed_at}
    return OutboundEffect(message_id=1, case_id=1, system_key=SYSTEM, operation=operation, payload=payload,
                          idempotency_key=f"case-1:{SYSTEM}:{jjdbh}:{status}:{changed_at}")


def resolved(jjdbh: str, changed_at: str = CHANGED_AT, text: str = RESULT) -> OutboundEffect:
    return effect(jjdbh, "BJ", status="RESOLVED", result_text=text, changed_at=changed_at)


def refusal(conn: PoliceConnector, eff: OutboundEffect) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        conn.deliver(eff)
    return caught.value


@pytest.fixture
def police(sandbox: Any) -> Iterator[Any]:
    yield sandbox
    put_faults(sandbox, SYSTEM)


# ----- feedback on a handed-over 警情 ------------------------------------------------------------------


def test_js_cz_bj_are_taken_in_06(police: Any) -> None:
    conn = connector(police)
    assert isinstance(conn, Deliverer)
    jjdbh = handed_over(police)

    results = [conn.deliver(effect(jjdbh, "JS", status="ACCEPTED", changed_at="2026-11-23T02:00:00Z")),
               conn.deliver(effect(jjdbh, "cz", result_text="城管中队已到场劝离。")),
               conn.deliver(resolved(jjdbh))]

    assert [(r.ok, r.detail, r.external_ref) for r in results] == [
        (True, "JS taken (FKSJ 2026-11-23T10:00:00+08:00)", jjdbh),
        (True, "CZ taken (FKSJ 2026-11-23T10:02:00+08:00)", jjdbh),
        (True, "BJ taken (FKSJ 2026-11-23T10:02:00+08:00)", jjdbh)]
    held = [(f["FKLX"], f["FKNR"], f["FKSJ"], f["FKDW"]) for f in feedback(police, jjdbh)]
    assert held == [("JS", DEFAULT_TEXTS["JS"], "2026-11-23T10:00:00+08:00", DEFAULT_UNIT),
                    ("CZ", "城管中队已到场劝离。", FKSJ, DEFAULT_UNIT),
                    ("BJ", RESULT, FKSJ, DEFAULT_UNIT)]
    assert close(police, jjdbh).status_code == 200  # the police count the BJ: 06 → 09 is allowed now


def test_cz_without_words_and_the_feedback_unit(police: Any) -> None:
    jjdbh = handed_over(police)
    assert connector(police, feedback_unit="斜土街道网格化综合管理中心").deliver(effect(jjdbh, "CZ")).ok
    assert [(f["FKNR"], f["FKDW"]) for f in feedback(police, jjdbh)] == [(DEFAULT_TEXTS["CZ"],
                                                                         "斜土街道网格化综合管理中心")]


# ----- once in effect -----------------------------------------------------------------------------


def test_a_retry_of_the_same_effect_is_taken_once(police: Any) -> None:
    """The answer was lost, the outbox tries again with the same effect: same FKSJ, so the police
    say DUPLICATE_FEEDBACK, a success, also after they closed the 警情 (duplicates first)."""
    conn = connector(police)
    jjdbh = handed_over(police)
    cz, bj = effect(jjdbh, "CZ", result_text="城管中队已到场劝离。"), resolved(jjdbh)
    assert conn.deliver(cz).ok and conn.deliver(bj).ok

    again = conn.deliver(cz)

    assert (again.ok, again.detail) == (True, f"CZ was already taken (DUPLICATE_FEEDBACK, FKSJ {FKSJ})")
    assert close(police, jjdbh).status_code == 200
    assert conn.deliver(bj).detail == f"BJ was already taken (DUPLICATE_FEEDBACK, FKSJ {FKSJ})"
    assert [f["FKLX"] for f in feedback(police, jjdbh)] == ["CZ", "BJ"]
    assert answers(police, jjdbh) == ["ok", "ok", "DUPLICATE_FEEDBACK", "DUPLICATE_FEEDBACK"]


def test_a_second_bj_is_done_because_the_police_accept_one(police: Any) -> None:
    """Resolved again later (another changed_at): the police take one BJ and answer INVALID_STATE
    while the 警情 still sits in 06. The plugin re-reads, sends once more in case the 警情 had
    only just reached 06, and on the same answer knows the BJ is held: done, not a dead letter."""
    conn = connector(police)
    jjdbh = handed_over(police)
    assert conn.deliver(resolved(jjdbh)).ok

    later = conn.deliver(resolved(jjdbh, changed_at="2026-11-24T01:00:00+00:00", text="复查：摊位未再出现。"))

    assert later.ok and later.detail.startswith("BJ was already taken: the police accept one 办结")
    assert "06 (已移交联动单位)" in later.detail
    assert [f["FKNR"] for f in feedback(police, jjdbh)] == [RESULT]
    assert answers(police, jjdbh) == ["ok", "INVALID_STATE", "INVALID_STATE"]

    # closed after the BJ (09 reached from 06): a third BJ is done as well, without a resend
    assert close(police, jjdbh).status_code == 200
    third = conn.deliver(resolved(jjdbh, changed_at="2026-11-25T01:00:00+00:00"))
    assert third.ok and "09 (已结束)" in third.detail
    assert answers(police, jjdbh)[3:] == ["INVALID_STATE"]


# ----- not in 06 ----------------------------------------------------------------------------------


def test_before_the_handover_feedback_is_retried_later(police: Any) -> None:
    conn = connector(police)
    jjdbh = report(police)
    move(police, jjdbh, "02")
    eff = effect(jjdbh, "JS", status="ACCEPTED")

    error = refusal(conn, eff)

    assert error.kind == "transient" and "02 (已派警)" in str(error) and "handover may still come" in str(error)
    move(police, jjdbh, "03", "04", "06", YJDW="综合执法")
    assert conn.deliver(eff).detail == f"JS taken (FKSJ {FKSJ})"


@pytest.mark.parametrize(("codes", "state"), [
    (("02", "03", "04", "05"), "05 (处置完毕)"),
    (("02", "03", "04", "05", "09"), "09 (已结束)"),
    (("99",), "99 (无效警情)"),
])
def test_finished_without_a_handover_owes_no_feedback(police: Any, codes: tuple[str, ...], state: str) -> None:
    jjdbh = report(police)
    move(police, jjdbh, *codes)
    conn = connector(police)

    for eff in (effect(jjdbh, "CZ"), resolved(jjdbh)):
        result = conn.deliver(eff)
        assert not result.ok and state in result.detail and "without a handover" in result.detail
    assert feedback(police, jjdbh) == []


def test_cancelled_after_the_handover_owes_no_bj(police: Any) -> None:
    jjdbh = handed_over(police)
    move(police, jjdbh, "99")
    result = connector(police).deliver(resolved(jjdbh))
    assert not result.ok and "99 (无效警情)" in result.detail and "after the handover" in result.detail


# ----- failures, classified -----------------------------------------------------------------------


def test_unknown_jjdbh_is_permanent(police: Any) -> None:
    error = refusal(connector(police), effect("310104209912319999", "JS"))
    assert error.kind == "permanent" and "JQ_NOT_FOUND" in str(error)


def test_a_refused_token_is_permanent_and_not_repeated(police: Any) -> None:
    wrong = "not-the-police-token"
    error = refusal(connector(police, token=wrong), effect(handed_over(police), "JS"))
    assert error.kind == "permanent" and "token refused" in str(error) and "401" in str(error)
    assert wrong not in str(error) and TOKEN not in str(error)


@pytest.mark.parametrize(("eff_args", "words"), [
    ({"action": "BJ", "status": "RESOLVED"}, "result text is missing"),
    ({"action": "BJ", "status": "RESOLVED", "result_text": "  "}, "result text is missing"),
    ({"action": "XX"}, "'XX'"),
    ({"action": None, "status": "CLOSED"}, "status CLOSED is none"),
    ({"action": "JS", "changed_at": None}, "changed_at"),
    ({"action": "JS", "changed_at": "2026-11-23 十点"}, "changed_at"),
    ({"action": "JS", "operation": "note"}, "'note'"),
])
def test_effects_the_police_cannot_take_are_mapping_errors(police: Any, eff_args: dict[str, Any],
                                                           words: str) -> None:
    jjdbh = handed_over(police)
    action = eff_args.pop("action")
    error = refusal(connector(police), effect(jjdbh, action, **eff_args))
    assert error.kind == "mapping" and words in str(error)
    assert answers(police, jjdbh) == []  # nothing was sent


def test_transport_trouble_is_transient(police: Any) -> None:
    jjdbh = handed_over(police)
    conn = connector(police)
    put_faults(police, SYSTEM, error_5xx_rate=1.0)
    error = refusal(conn, effect(jjdbh, "JS"))
    assert error.kind == "transient" and "502" in str(error)

    put_faults(police, SYSTEM, error_5xx_rate=0.0, rate_limit_per_s=0.5, retry_after_s=7)
    requests.get(f"{police.urls[SYSTEM]}/ldpt/api/jq/{jjdbh}", timeout=5)  # spends this second's budget
    error = refusal(conn, effect(jjdbh, "JS"))
    assert (error.kind, error.retry_after) == ("transient", 7.0) and "429" in str(error)
    assert feedback(police, jjdbh) == []


# ----- through the hub's outbox -------------------------------------------------------------------


def test_the_outbox_delivers_through_the_connector(hub_ctx: HubContext, police: Any) -> None:
    configure_system(hub_ctx, police, SYSTEM)
    jjdbh, finished = handed_over(police), report(police)
    move(police, finished, "02", "03", "04", "05")
    effects = {"taken": effect(jjdbh, "JS", status="ACCEPTED"), "bare": resolved(jjdbh, text=""),
               "finished": effect(finished, "CZ")}
    with hub_ctx.db.session() as s:
        for name, eff in effects.items():
            outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="status", payload=dict(eff.payload),
                           idempotency_key=f"k:{name}")

    counts = outbox.deliver_due(hub_ctx)

    assert counts[OutboundStatus.SENT] == 1 and counts[OutboundStatus.DEAD] == 2
    with hub_ctx.db.read_session() as s:
        rows = {m.idempotency_key: (m.status, m.error_kind) for m in s.scalars(select(OutboundMessage))}
        details = [log.detail for log in s.scalars(select(SyncLog).where(SyncLog.operation == "deliver"))]
    assert rows == {"k:taken": (OutboundStatus.SENT, ""), "k:bare": (OutboundStatus.DEAD, "mapping"),
                    "k:finished": (OutboundStatus.DEAD, "permanent")}
    assert any(f"JS taken (FKSJ {FKSJ})" in d for d in details)
    assert any("feedback not owed" in d and "05 (处置完毕)" in d for d in details)
    assert [f["FKLX"] for f in feedback(police, jjdbh)] == ["JS"] and feedback(police, finished) == []


# ----- the pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("changed_at", "fksj"), [
    ("2026-11-23T02:02:00Z", FKSJ), ("2026-11-23T02:02:00+00:00", FKSJ), ("2026-11-23T02:02:00.999", FKSJ),
    ("2026-11-23T10:02:00+08:00", FKSJ), ("2026-11-23T18:30:00+00:00", "2026-11-24T02:30:00+08:00"),
])
def test_feedback_time_is_the_change_in_shanghai_time(changed_at: str, fksj: str) -> None:
    assert feedback_time(changed_at) == fksj


@pytest.mark.parametrize(("fklx", "state", "yjdw", "resent", "expected"), [
    ("JS", "06", "城管", False, None),  # moved into 06 meanwhile: send once more
    ("BJ", "06", "城管", False, None),
    ("BJ", "06", "城管", True, True),  # the one BJ is taken
    ("CZ", "06", "城管", True, "transient"),
    ("CZ", "01", None, False, "transient"),
    ("BJ", "04", None, False, "transient"),
    ("JS", "05", None, False, False),
    ("BJ", "09", None, False, False),  # finished on the spot, never handed over
    ("BJ", "09", "城管", False, True),  # 06 → 09 only after an accepted BJ
    ("CZ", "09", "城管", False, False),
    ("BJ", "99", "城管", False, False),
    ("BJ", "07", None, False, "permanent"),
])
def test_invalid_state_decided_on_the_re_read(fklx: str, state: str, yjdw: str | None, resent: bool,
                                              expected: Any) -> None:
    fb = Feedback(jjdbh="310104202611230001", fklx=fklx, fknr="x", fksj=FKSJ, fkdw=DEFAULT_UNIT)
    jq = {"JQZTDM": state, "YJDW": yjdw}
    if isinstance(expected, str):
        with pytest.raises(DeliveryError) as caught:
            after_invalid_state(fb, jq, resent)
        assert caught.value.kind == expected
        return
    result = after_invalid_state(fb, jq, resent)
    if expected is None:
        assert result is None
    else:
        assert isinstance(result, DeliveryResult) and result.ok is expected
