"""Contract of the 综合执法 plugin's outbound delivery: clues and remarks against the simulator.

A ``create`` effect becomes one ``TransferClue`` (GCJ-02 coordinates, local report time, the
mapping's 执法事项 code) and is applied once whatever the retries (2003 is a success with the
existing ClueNo); a ``note`` becomes ``AddRemark`` and a final case refuses it for good; text GBK
cannot hold arrives as a clean replacement; failures come back classified for the outbox, the
nightly maintenance with a wait until 02:00.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.facade import Deliverer, DeliveryError, DeliveryResult, OutboundEffect, SystemConfig
from hub.models import OutboundMessage, OutboundStatus, SyncLog
from hub.services import outbox
from mappings.datum import gcj02_to_wgs84
from mappings.documents import load_default
from plugins.law_enforcement.connector import LawEnforcementConnector
from plugins.law_enforcement.outbound import request_id
from sandbox import geo
from tests.support.contract import configure_system, put_faults

pytestmark = pytest.mark.timeout(60)

SYSTEM = "law_enforcement"
USER, PASSWORD = "wgzx", "zf-demo-pass"
SHANGHAI = timezone(timedelta(hours=8))
MAPPING = load_default(SYSTEM)
WGS84 = {"lng": 121.4410, "lat": 31.1860}  # 斜土路, inside the sandbox district
PHOTOS = ["https://img.example.cn/a.jpg", "https://img.example.cn/b.jpg"]


class PlatformClock:
    """The platform's clock and the connector's, in the test's hands (never 01:00–02:00 unless set)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> PlatformClock:
    return PlatformClock()


@pytest.fixture
def zf(sandbox: Any, clock: PlatformClock) -> Iterator[Any]:
    sim = sandbox.sim(SYSTEM)
    sim.clock = clock
    sim.rate_limit_per_s = 0
    yield sandbox
    put_faults(sandbox, SYSTEM)


# ----- the 综合执法 side ---------------------------------------------------------------------------


def cases(cluster: Any) -> dict[str, dict[str, Any]]:
    """Every case of the platform by ClueNo, with its reporter, report time, attachments, remarks."""
    return {c["ClueNo"]: c for c in cluster.sim(SYSTEM).state()["cases"]}


def writes(cluster: Any) -> list[dict[str, Any]]:
    return list(cluster.sim(SYSTEM).state()["writes"])


def file_case(cluster: Any, **fields: str) -> str:
    """A case of the platform's own (patrol), filed through the simulator."""
    return str(cluster.sim(SYSTEM).file_case({"Category": "CG-0101", "Content": "楼顶违章搭建彩钢板房", **fields})
               ["ClueNo"])


# ----- the hub side -------------------------------------------------------------------------------


def connector(cluster: Any, clock: PlatformClock, password: str = PASSWORD) -> LawEnforcementConnector:
    config = SystemConfig(key=SYSTEM, plugin=SYSTEM, name="综合执法", base_url=cluster.urls[SYSTEM],
                          credentials={"user": USER, "password": password}, settings={})
    return LawEnforcementConnector(config, clock=clock.epoch)


def effect(operation: str, payload: dict[str, Any], key: str | None = None, mapping: Any = MAPPING) -> OutboundEffect:
    return OutboundEffect(message_id=1, case_id=1, system_key=SYSTEM, operation=operation, payload=payload,
                          idempotency_key=key or f"case-1:{SYSTEM}:{operation}:{uuid.uuid4().hex[:8]}",
                          mapping=mapping)


def clue_payload(external_no: str | None = None, **changes: Any) -> dict[str, Any]:
    payload = {"case_number": "GH-20261123-000042", "changed_at": "2026-11-23T01:20:00Z",
               "source": "网格", "external_no": external_no or f"GH-20261123-{uuid.uuid4().hex[:6]}",
               "category": "street_vending", "description": "斜土路1200号门口流动摊贩占道经营，影响通行",
               "address": "徐汇区斜土路1200号", "location": dict(WGS84), "reported_at": "2026-11-23T01:15:02Z",
               "reporter": "张网格", "photos": list(PHOTOS)}
    payload.update(changes)
    return payload


def create(external_no: str | None = None, key: str | None = None, mapping: Any = MAPPING,
           **changes: Any) -> OutboundEffect:
    return effect("create", clue_payload(external_no, **changes), key, mapping)


def note(clue_no: str, text: str = "网格员复查：摊贩仍在原处经营。", photos: list[str] | None = None) -> OutboundEffect:
    return effect("note", {"case_number": "GH-20261123-000042", "changed_at": "2026-11-23T02:00:00Z",
                           "external_id": clue_no, "text": text, "photos": photos or []})


def refusal(conn: LawEnforcementConnector, eff: OutboundEffect) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        conn.deliver(eff)
    return caught.value


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Ground distance of two nearby (lng, lat) points (equirectangular is plenty below a km)."""
    mean_lat = math.radians((a[1] + b[1]) / 2)
    return 6_371_000 * math.hypot(math.radians(a[0] - b[0]) * math.cos(mean_lat), math.radians(a[1] - b[1]))


# ----- TransferClue -------------------------------------------------------------------------------


def test_transfer_clue_files_the_clue_in_gcj02_and_local_time(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    assert isinstance(conn, Deliverer)
    eff = create("GH-20261123-000042")

    result = conn.deliver(eff)

    assert result.ok and result.external_ref
    case = cases(zf)[result.external_ref]
    assert (case["ExternalNo"], case["Source"], case["Category"], case["Status"]) == (
        "GH-20261123-000042", "网格", "CG-0201", "XSDJ")
    assert (case["Content"], case["Address"]) == ("斜土路1200号门口流动摊贩占道经营，影响通行", "徐汇区斜土路1200号")
    assert (case["_Reporter"], case["_ReportTime"], case["_Attachments"]) == ("张网格", "20261123091502", PHOTOS)
    gcj = (float(case["Lng"]), float(case["Lat"]))
    wgs = (WGS84["lng"], WGS84["lat"])
    assert metres_between(gcj02_to_wgs84(*gcj), wgs) < 1.0
    assert metres_between(gcj, geo.wgs84_to_gcj02(*wgs)) < 1.0  # the simulator's own formula agrees
    assert metres_between(gcj, wgs) > 100  # really converted: GCJ-02 is hundreds of metres off here
    assert [(w["method"], w["requestId"], w["code"]) for w in writes(zf)] == [
        ("TransferClue", request_id(eff.idempotency_key), 0)]


def test_a_repeated_transfer_is_answered_2003_and_is_done_once(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    eff = create()
    first = conn.deliver(eff)
    clock.now += timedelta(minutes=5)

    again = conn.deliver(eff)  # a retry after a lost answer: same key, same ExternalNo
    other = conn.deliver(create(eff.payload["external_no"], category="illegal_construction"))

    assert again == DeliveryResult(ok=True, detail=f"already transferred as {first.external_ref} (2003)",
                                   external_ref=first.external_ref)
    assert other.external_ref == first.external_ref
    assert len(cases(zf)) == 1 and cases(zf)[str(first.external_ref)]["Category"] == "CG-0201"
    sent = writes(zf)
    assert [w["code"] for w in sent] == [0, 2003, 2003]
    assert sent[0]["requestId"] == sent[1]["requestId"] != sent[2]["requestId"]


def test_effects_the_platform_cannot_take_are_mapping_errors(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    for eff in (
        create(category="pothole"),  # a canonical category with no 执法事项: not the platform's matter
        create(category=""),
        create(mapping=None),  # no active mapping document
        create(source="巡查"),  # the platform's own source, not one the hub files under
        create(description="  "),  # Content is required
        create(external_no=" "),
        create(location={"lng": 2.35, "lat": 48.85}),  # outside China
        create(location={"lng": "east"}),
        create(reported_at="yesterday"),
        note(""),
        effect("status", {"external_id": "ZF-2026-004501", "status": "CLOSED"}),  # nobody may set a status
        effect("merge", {"external_id": "ZF-2026-004501", "master_external_id": ""}),
    ):
        error = refusal(conn, eff)
        assert error.kind == "mapping", eff.payload
    assert "pothole" in str(refusal(conn, create(category="pothole")))
    assert writes(zf) == []  # nothing was sent


def test_a_clue_without_location_or_photos_is_transferred_without_them(zf: Any, clock: PlatformClock) -> None:
    result = connector(zf, clock).deliver(create(source="12345", external_no="GD2026112300077", location=None,
                                                 photos=[], reporter="", reported_at=None))
    case = cases(zf)[str(result.external_ref)]
    assert (case["Source"], case["Lng"], case["Lat"], case["_Attachments"], case["_ReportTime"]) == (
        "12345", "", "", [], "")


def test_text_gbk_cannot_hold_arrives_as_a_clean_replacement(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    # 😡 (emoji) and 䶮 (CJK extension A, as in 刘䶮) are not in GBK; 堃 and 喆 are
    result = conn.deliver(create(description="烧烤摊浓烟😡扰民，摊主刘䶮称马上收摊", reporter="王堃喆",
                                 address="徐汇区斜土路𠀀号"))
    clue_no = str(result.external_ref)
    remark = conn.deliver(note(clue_no, "复查😡：刘䶮已收摊"))

    assert result.ok and remark.ok
    case = cases(zf)[clue_no]
    assert case["Content"] == "烧烤摊浓烟?扰民，摊主刘?称马上收摊"
    assert (case["Address"], case["_Reporter"]) == ("徐汇区斜土路?号", "王堃喆")
    assert case["_Remarks"][-1]["Text"] == "复查?：刘?已收摊"
    assert [w["code"] for w in writes(zf)] == [0, 0]  # no 1002


# ----- AddRemark ----------------------------------------------------------------------------------


def test_add_remark_on_an_open_clue(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    clue_no = str(conn.deliver(create()).external_ref)
    created = cases(zf)[clue_no]["Modified"]
    clock.now += timedelta(seconds=30)
    eff = note(clue_no, "网格员复查：摊贩仍在原处经营。", photos=PHOTOS[:1])

    result = conn.deliver(eff)

    assert (result.ok, result.external_ref) == (True, clue_no)
    case = cases(zf)[clue_no]
    assert case["_Remarks"] == [{"Time": "20261123100030",
                                 "Text": f"网格员复查：摊贩仍在原处经营。\n附件：\n{PHOTOS[0]}"}]
    assert case["Modified"] > created  # the platform bumps it: the hub reads the case back
    assert writes(zf)[-1]["requestId"] == request_id(eff.idempotency_key)


def test_add_remark_on_a_final_case_is_refused_for_good(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    closed = file_case(zf, Status="JA", Result="已拆除，罚款5000元")

    result = conn.deliver(note(closed))

    assert result.ok is False and "2002" in result.detail and "final" in result.detail
    assert cases(zf)[closed]["_Remarks"] == []
    error = refusal(conn, note("ZF-2026-999999"))  # 2001 记录不存在
    assert error.kind == "permanent" and "2001" in str(error)


# ----- failures, classified -----------------------------------------------------------------------


def test_nightly_maintenance_is_transient_until_two_oclock(zf: Any, clock: PlatformClock) -> None:
    conn = connector(zf, clock)
    clock.now = datetime(2026, 11, 24, 1, 30, 0, tzinfo=SHANGHAI)

    error = refusal(conn, create())
    assert error.kind == "transient" and "3001" in str(error)
    assert error.retry_after is not None and 1800 < error.retry_after <= 1800 + 120

    clock.now = datetime(2026, 11, 24, 1, 59, 50, tzinfo=SHANGHAI)
    error = refusal(conn, note(file_case(zf)))
    assert error.kind == "transient" and error.retry_after is not None and 10 < error.retry_after <= 130

    # maintenance out of the nightly window: its end unknown, a few minutes
    clock.now = datetime(2026, 11, 24, 10, 0, 0, tzinfo=SHANGHAI)
    put_faults(zf, SYSTEM, maintenance=True)
    error = refusal(conn, create())
    assert error.kind == "transient" and error.retry_after is not None and 60 <= error.retry_after <= 900
    assert writes(zf) == []


def test_rate_limit_is_transient_with_a_short_wait(zf: Any, clock: PlatformClock) -> None:
    sim = zf.sim(SYSTEM)
    sim.rate_limit_per_s = 1
    sim.admit(USER)  # this second's call is spent

    error = refusal(connector(zf, clock), create())

    assert error.kind == "transient" and "1003" in str(error)
    assert error.retry_after is not None and 0 < error.retry_after <= 10
    assert cases(zf) == {}


def test_refused_credentials_are_permanent_and_never_shown(zf: Any, clock: PlatformClock) -> None:
    wrong = "not-the-password-77"
    error = refusal(connector(zf, clock, password=wrong), create())
    assert error.kind == "permanent" and "1001" in str(error)
    assert wrong not in str(error) and PASSWORD not in str(error)


def test_gateway_trouble_is_transient(zf: Any, clock: PlatformClock) -> None:
    put_faults(zf, SYSTEM, down=True)
    error = refusal(connector(zf, clock), create())
    assert error.kind == "transient" and "503" in str(error)
    put_faults(zf, SYSTEM, down=False, error_5xx_rate=1.0)
    error = refusal(connector(zf, clock), note(file_case(zf)))
    assert error.kind == "transient" and "502" in str(error)


# ----- through the hub's outbox -------------------------------------------------------------------


def test_the_outbox_delivers_through_the_connector(hub_ctx: HubContext, zf: Any) -> None:
    configure_system(hub_ctx, zf, SYSTEM)
    open_clue, closed = file_case(zf), file_case(zf, Status="JA")
    with hub_ctx.db.session() as s:
        outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="create",
                       payload=clue_payload("GH-20261123-000077"), idempotency_key="k:create")
        outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="note",
                       payload=dict(note(open_clue).payload), idempotency_key="k:note")
        outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation="note",
                       payload=dict(note(closed).payload), idempotency_key="k:final")

    counts = outbox.deliver_due(hub_ctx)

    settled = (OutboundStatus.SENT, OutboundStatus.FAILED, OutboundStatus.DEAD)
    assert {status: counts[status] for status in settled} == {OutboundStatus.SENT: 2, OutboundStatus.FAILED: 0,
                                                              OutboundStatus.DEAD: 1}
    with hub_ctx.db.read_session() as s:
        rows = {m.idempotency_key: (m.status, m.error_kind) for m in s.scalars(select(OutboundMessage))}
        details = [log.detail for log in s.scalars(select(SyncLog).where(SyncLog.operation == "deliver"))]
    assert rows == {"k:create": (OutboundStatus.SENT, ""), "k:note": (OutboundStatus.SENT, ""),
                    "k:final": (OutboundStatus.DEAD, "permanent")}
    transferred = [c for c in cases(zf).values() if c["ExternalNo"] == "GH-20261123-000077"]
    assert len(transferred) == 1 and transferred[0]["Category"] == "CG-0201"
    assert any(f"transferred as {transferred[0]['ClueNo']}" in d for d in details)
    assert len(cases(zf)[open_clue]["_Remarks"]) == 1 and cases(zf)[closed]["_Remarks"] == []
    assert any("2002" in d for d in details)
