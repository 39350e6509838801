"""Contract of the 数字城管 plugin's outbound delivery: effects against the 数字城管 simulator.

Creating a case is applied once (the platform's 409 ``DUPLICATE_EXTERNAL_NO`` answers a repeat
and the hotline's own transfer of the same ``gdbh`` with the existing case); the location lands
as EPSG:4549 metres, x = northing. ``VERIFY``/``CANCEL``/``SUPPLEMENT`` are sent only where the
spec allows them, decided from the case as just read: what already holds needs no call, what
cannot be done yet is transient, what can never be done is permanent or refused. Tokens the
platform revoked or let expire are renewed; gateway errors come back transient.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from pyproj import Transformer
from sqlalchemy import select

from adapters.http import HttpTransport
from hub.context import HubContext
from hub.facade import (
    OP_CREATE,
    OP_MERGE,
    OP_NOTE,
    OP_STATUS,
    Deliverer,
    DeliveryError,
    DeliveryResult,
    OutboundEffect,
    SystemConfig,
)
from hub.models import OutboundMessage, OutboundStatus
from hub.services import outbox
from mappings.datum import epsg4549_to_wgs84
from mappings.documents import load_default
from plugins.city_management.connector import CityManagementConnector
from tests.support.contract import configure_system, put_faults

pytestmark = pytest.mark.timeout(60)

SYSTEM = "city_management"
CLIENT_ID, CLIENT_SECRET = "gridhub", "dcm-demo-secret"
SHANGHAI = timezone(timedelta(hours=8))
SITE = {"lng": 121.4365, "lat": 31.1880}  # 徐汇区 斜土路, WGS-84
MAPPING = load_default(SYSTEM)
METRES_PER_DEGREE = 111_320.0
NEXT = {"01": "02", "02": "03", "03": "04", "04": "05"}


class FakeClock:
    """The simulator's clock: the tests decide when a 06 case closes and when tokens expire."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingTransport(HttpTransport):
    """Remembers (method, path, HTTP status) of every request the connector sends."""

    def __init__(self) -> None:
        super().__init__(timeout=5.0)
        self.sent: list[tuple[str, str, int]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        resp = super().request(method, url, **kwargs)
        self.sent.append((method, url.split("://", 1)[1].split("/", 1)[1], resp.status_code))
        return resp


# ----- the 数字城管 side --------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dcm(sandbox: Any, clock: FakeClock) -> Iterator[Any]:
    sandbox.sim(SYSTEM).clock = clock
    yield sandbox
    put_faults(sandbox, SYSTEM)


def case(cluster: Any, case_id: str) -> dict[str, Any]:
    return dict(cluster.sim(SYSTEM).get_case(case_id))


def ops(cluster: Any, case_id: str) -> list[tuple[str, int]]:
    """(op, HTTP status) of every operation POSTed for the case (401s before a renewal left out)."""
    path = f"/dcm/api/cases/{case_id}/operations"
    return [(w["body"]["op"], w["status"]) for w in cluster.sim(SYSTEM).state()["writes"]
            if w["path"] == path and w["status"] != 401]


def notes(cluster: Any, case_id: str) -> list[tuple[str, str]]:
    """(op, text) of the case's 办理记录 as the platform keeps it."""
    held = next(c for c in cluster.sim(SYSTEM).state()["cases"] if c["caseId"] == case_id)
    return [(n["op"], n["text"]) for n in held["_notes"]]


def write_count(cluster: Any) -> int:
    return len(cluster.sim(SYSTEM).state()["writes"])


def filed(cluster: Any, status: str = "01", **fields: Any) -> str:
    """A case the platform's inspector filed (not ours: CANCEL is refused as NOT_CREATOR)."""
    body = {"source": "01", "bigClass": "05", "smallClass": "0504", "description": "店外经营占用人行道",
            "status": status, **fields}
    return str(cluster.sim(SYSTEM).file_case(body)["caseId"])


def move(cluster: Any, case_id: str, *statuses: str) -> None:
    for status in statuses:
        cluster.sim(SYSTEM).advance(case_id, status)


def walk_to(cluster: Any, case_id: str, status: str) -> None:
    while (current := case(cluster, case_id)["status"]) != status:
        move(cluster, case_id, NEXT[current])


# ----- the hub side -------------------------------------------------------------------------------


def connector(cluster: Any, secret: str = CLIENT_SECRET, transport: HttpTransport | None = None
              ) -> CityManagementConnector:
    config = SystemConfig(key=SYSTEM, plugin=SYSTEM, name="数字城管", base_url=cluster.urls[SYSTEM],
                          credentials={"client_id": CLIENT_ID, "client_secret": secret}, settings={})
    return CityManagementConnector(config, transport=transport)


def effect(operation: str, payload: dict[str, Any], mapping: Any = MAPPING) -> OutboundEffect:
    return OutboundEffect(message_id=1, case_id=1, system_key=SYSTEM, operation=operation,
                          payload={"case_number": "GH-20261123-000042", "changed_at": "2026-11-23T02:00:00+00:00",
                                   **payload},
                          idempotency_key=f"{operation}:{uuid.uuid4().hex[:12]}", mapping=mapping)


def create(external_no: str | None = None, **fields: Any) -> OutboundEffect:
    payload = {"source": "07", "external_no": external_no or f"GH-20261123-{uuid.uuid4().int % 10**6:06d}",
               "category": "illegal_parking_motor", "description": "人行道上机动车乱停放，影响通行。",
               "address": "徐汇区斜土路1200号", "location": dict(SITE), "reported_at": "2026-11-23T01:30:00+00:00",
               "reporter": "网格员张三", "photos": ["https://img.example.cn/p/1.jpg"], **fields}
    return effect(OP_CREATE, payload)


def status(case_id: str, canonical: str, action: str | None, args: dict[str, Any] | None = None,
           **fields: Any) -> OutboundEffect:
    payload = {"external_id": case_id, "status": canonical,
               "action": None if action is None else {"action": action, "args": args or {}},
               "result_text": "", "reason": "", "master_external_id": "", **fields}
    return effect(OP_STATUS, payload)


def verify(case_id: str, result: str = "PASS", **fields: Any) -> OutboundEffect:
    return status(case_id, "VERIFIED" if result == "PASS" else "REOPENED", "VERIFY", {"result": result}, **fields)


def cancel(case_id: str, reason: str = "非城市管理问题，市民已自行处理。") -> OutboundEffect:
    return status(case_id, "CANCELLED", "CANCEL", reason=reason)


def note(case_id: str, text: str, photos: list[str] | None = None) -> OutboundEffect:
    return effect(OP_NOTE, {"external_id": case_id, "text": text, "photos": photos or []})


def merge(case_id: str, text: str = "与 GH-20261123-000007 为同一事件，请并案处理。") -> OutboundEffect:
    return effect(OP_MERGE, {"external_id": case_id, "master_external_id": "", "master_case_number":
                             "GH-20261123-000007", "text": text})


def refusal(conn: CityManagementConnector, eff: OutboundEffect) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        conn.deliver(eff)
    return caught.value


def ours(cluster: Any, conn: CityManagementConnector, at: str = "01") -> str:
    """A case the hub created (07), walked by the department to ``at``."""
    result = conn.deliver(create())
    assert result.ok and result.external_ref
    walk_to(cluster, result.external_ref, at)
    return result.external_ref


def metres_apart(a: tuple[float, float], b: tuple[float, float]) -> float:
    dx = (a[0] - b[0]) * METRES_PER_DEGREE * math.cos(math.radians(a[1]))
    dy = (a[1] - b[1]) * METRES_PER_DEGREE
    return math.hypot(dx, dy)


# ----- creating cases -----------------------------------------------------------------------------


def test_a_grid_report_becomes_a_case_in_epsg4549_once(dcm: Any) -> None:
    conn = connector(dcm)
    assert isinstance(conn, Deliverer)
    eff = create()

    result = conn.deliver(eff)

    assert result.ok and result.detail == f"created {result.external_ref}"
    held = case(dcm, str(result.external_ref))
    assert (held["source"], held["externalNo"], held["status"]) == ("07", eff.payload["external_no"], "01")
    assert (held["eventType"], held["bigClass"], held["smallClass"]) == ("2", "05", "0505")
    assert (held["address"], held["reportTime"]) == ("徐汇区斜土路1200号", "2026-11-23T09:30:00")  # local time
    assert held["photos"] == ["https://img.example.cn/p/1.jpg"] and held["gridCode"].startswith("310104")
    # x is the northing, y the easting (500 000 m false easting), as an independent pyproj says
    easting, northing = Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True).transform(
        SITE["lng"], SITE["lat"])
    assert 3_400_000 < held["x"] < 3_500_000 and 600_000 < held["y"] < 660_000
    assert abs(held["x"] - northing) < 0.01 and abs(held["y"] - easting) < 0.01
    assert metres_apart(epsg4549_to_wgs84(held["x"], held["y"]), (SITE["lng"], SITE["lat"])) < 1.0
    state = dcm.sim(SYSTEM).state()
    assert next(c for c in state["cases"] if c["caseId"] == result.external_ref)["_reporter"] == "网格员张三"

    again = conn.deliver(eff)  # the answer was lost, say: the platform answers 409 with the case

    assert (again.ok, again.external_ref) == (True, result.external_ref)
    assert again.detail == f"already existed as {result.external_ref} (DUPLICATE_EXTERNAL_NO)"
    assert [w["status"] for w in dcm.sim(SYSTEM).state()["writes"]] == [201, 409]
    assert len(dcm.sim(SYSTEM).state()["cases"]) == 1


def test_a_component_without_location_and_optional_fields(dcm: Any) -> None:
    result = connector(dcm).deliver(create(category="manhole_cover", location=None, address="", reporter="",
                                           photos=[], reported_at=None))
    held = case(dcm, str(result.external_ref))
    assert (held["eventType"], held["bigClass"], held["smallClass"]) == ("1", "11", "1101")  # 部件
    assert (held["x"], held["y"], held["gridCode"], held["reportTime"]) == (None, None, "", "2026-11-23T10:00:00")
    sent = dcm.sim(SYSTEM).state()["writes"][0]["body"]
    assert not {"x", "y", "address", "reporter", "photos", "reportTime"} & set(sent)


def test_the_hotlines_own_transfer_came_first(dcm: Any) -> None:
    """12345 transferred its work order itself (source 03, externalNo = gdbh); the hub, routing
    the same order, is second and gets the existing case."""
    gdbh = "GD20261123000123"
    theirs = filed(dcm, source="03", externalNo=gdbh)

    result = connector(dcm).deliver(create(gdbh, source="03"))

    assert (result.ok, result.external_ref) == (True, theirs) and "already existed" in result.detail
    assert len(dcm.sim(SYSTEM).state()["cases"]) == 1
    # the same number under 07 is another record: the platform de-duplicates per source
    assert connector(dcm).deliver(create(gdbh)).external_ref != theirs


def test_what_the_platform_cannot_take_is_a_mapping_error_before_any_call(dcm: Any) -> None:
    conn = connector(dcm)
    cases = [
        create(category="noise_neighbour"),  # not a city-management matter: no smallClass
        create(source="01"),  # the platform's own sources are not ours to file under
        create(external_no=" "),
        create(description=""),
        create(location={"lng": 116.397, "lat": 39.909}),  # Beijing: outside the 120°E zone
        create(location={"lng": "east", "lat": 31.2}),
        create(reported_at="yesterday"),
        dataclasses.replace(create(), mapping=None),  # no active mapping
    ]
    for eff in cases:
        error = refusal(conn, eff)
        assert error.kind == "mapping", eff.payload
    assert "noise_neighbour" in str(refusal(conn, cases[0])) and "outside" in str(refusal(conn, cases[4]))
    assert write_count(dcm) == 0


def test_a_field_the_platform_refuses_is_permanent_and_named(dcm: Any) -> None:
    codes = {**MAPPING.outbound_codes, "category": {"illegal_parking_motor": "0599"}}  # no such smallClass
    eff = dataclasses.replace(create(), mapping=dataclasses.replace(MAPPING, outbound_codes=codes))
    error = refusal(connector(dcm), eff)
    assert error.kind == "permanent" and "smallClass" in str(error) and "422" in str(error)


# ----- VERIFY -------------------------------------------------------------------------------------


def test_verify_pass_at_05_closes_the_case_and_a_repeat_sends_nothing(dcm: Any, clock: FakeClock) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn, "05")
    eff = verify(case_id, result_text="网格员复核：车辆已驶离，通行恢复。")

    assert conn.deliver(eff) == DeliveryResult(ok=True, detail="VERIFY PASS", external_ref=case_id)
    assert (case(dcm, case_id)["status"], case(dcm, case_id)["verifyResult"]) == ("06", "PASS")
    assert notes(dcm, case_id)[-1] == ("VERIFY", "网格员复核：车辆已驶离，通行恢复。")

    assert conn.deliver(eff).detail == "nothing sent: already 06 (核查通过)"
    clock.tick(60)  # the platform closes 06 to 07 within a minute
    assert conn.deliver(eff).detail == "nothing sent: already 07 (已结案)"
    assert ops(dcm, case_id) == [("VERIFY", 200)]


def test_verify_fail_sends_the_case_back_and_a_repeat_sends_nothing(dcm: Any) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn, "05")
    eff = verify(case_id, "FAIL")

    assert conn.deliver(eff).detail == "VERIFY FAIL"
    assert case(dcm, case_id)["status"] == "09"
    assert notes(dcm, case_id)[-1] == ("VERIFY", "网格员现场核查：问题未处置到位，请返工。")  # the default words
    move(dcm, case_id, "03")  # the centre sends it back for rework
    assert conn.deliver(eff).detail == "nothing sent: already 03 (已派遣)"
    assert ops(dcm, case_id) == [("VERIFY", 200)]


def test_verify_before_05_waits_for_the_department(dcm: Any) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn, "04")
    error = refusal(conn, verify(case_id))
    assert error.kind == "transient" and "04 (处置中)" in str(error)
    assert ops(dcm, case_id) == []
    move(dcm, case_id, "05")
    assert conn.deliver(verify(case_id)).detail == "VERIFY PASS"  # the retry, once the work is done


def test_verify_where_the_spec_never_allows_it_is_permanent(dcm: Any) -> None:
    conn = connector(dcm)
    voided, passed = filed(dcm, status="08"), ours(dcm, conn, "05")
    conn.deliver(verify(passed))
    for eff, shown in ((verify(voided), "08 (已作废)"), (verify(passed, "FAIL"), "06 (核查通过)")):
        error = refusal(conn, eff)
        assert error.kind == "permanent" and shown in str(error)
    assert ops(dcm, voided) == [] and ops(dcm, passed) == [("VERIFY", 200)]


# ----- CANCEL, SUPPLEMENT, merge ------------------------------------------------------------------


def test_cancel_in_01_voids_our_case(dcm: Any) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn)
    eff = cancel(case_id)

    assert conn.deliver(eff).detail == "CANCEL"
    assert case(dcm, case_id)["status"] == "08"
    assert notes(dcm, case_id) == [("CANCEL", "非城市管理问题，市民已自行处理。")]
    assert conn.deliver(eff).detail == "nothing sent: already 08 (已作废)"
    assert ops(dcm, case_id) == [("CANCEL", 200)]


def test_cancel_past_01_or_of_anothers_case_supplements_the_reason(dcm: Any) -> None:
    conn = connector(dcm)
    dispatched, theirs = ours(dcm, conn, "03"), filed(dcm)

    assert conn.deliver(cancel(dispatched)).detail == "SUPPLEMENT (cannot cancel: past 01 at 03 (已派遣))"
    assert conn.deliver(cancel(theirs)).detail == "SUPPLEMENT (cannot cancel: not the creating client)"

    expected = ("SUPPLEMENT", "网格中心已撤销该事项，请核实后作废：非城市管理问题，市民已自行处理。")
    assert case(dcm, dispatched)["status"] == "03" and notes(dcm, dispatched) == [expected]
    assert case(dcm, theirs)["status"] == "01" and notes(dcm, theirs) == [expected]
    assert ops(dcm, dispatched) == [("SUPPLEMENT", 200)]
    assert ops(dcm, theirs) == [("CANCEL", 403), ("SUPPLEMENT", 200)]


def test_a_note_is_supplemented_but_a_closed_case_refuses_it(dcm: Any, clock: FakeClock) -> None:
    conn = connector(dcm)
    working, closed = ours(dcm, conn, "04"), ours(dcm, conn, "05")
    conn.deliver(verify(closed))
    clock.tick(60)
    assert case(dcm, closed)["status"] == "07"

    result = conn.deliver(note(working, "物业已到场协调。", ["https://img.example.cn/p/2.jpg"]))
    refused = conn.deliver(note(closed, "物业已到场协调。"))

    assert (result.ok, result.detail) == (True, "SUPPLEMENT")
    assert notes(dcm, working) == [("SUPPLEMENT", "物业已到场协调。")]
    assert case(dcm, working)["photos"][-1] == "https://img.example.cn/p/2.jpg"
    assert refused.ok is False and "07 (已结案)" in refused.detail
    assert ops(dcm, closed) == [("VERIFY", 200)]


def test_merge_voids_our_case_in_01_and_supplements_later_ones(dcm: Any, clock: FakeClock) -> None:
    conn = connector(dcm)
    fresh, working, closed = ours(dcm, conn), ours(dcm, conn, "03"), ours(dcm, conn, "05")
    conn.deliver(verify(closed))
    clock.tick(60)

    assert conn.deliver(merge(fresh)).detail == "CANCEL"
    assert conn.deliver(merge(working)).detail.startswith("SUPPLEMENT")
    assert conn.deliver(merge(closed)).detail == "nothing sent: already 07 (已结案)"

    assert case(dcm, fresh)["status"] == "08" and case(dcm, working)["status"] == "03"
    assert notes(dcm, fresh) == [("CANCEL", "与 GH-20261123-000007 为同一事件，请并案处理。")]
    assert notes(dcm, working) == [("SUPPLEMENT", "与 GH-20261123-000007 为同一事件，请并案处理。")]
    assert ops(dcm, closed) == [("VERIFY", 200)]


def test_a_case_that_moved_between_read_and_write_is_read_again(dcm: Any) -> None:
    """The centre files our case (01 → 02) right after the hub read it: CANCEL is answered 409
    INVALID_STATE, the re-read shows 02, and the reason goes in as a supplement."""
    case_id = ours(dcm, connector(dcm))

    class RacingTransport(HttpTransport):
        raced = False

        def request(self, method: str, url: str, **kwargs: Any) -> Any:
            if method == "POST" and url.endswith("/operations") and not self.raced:
                self.raced = True
                move(dcm, case_id, "02")
            return super().request(method, url, **kwargs)

    result = connector(dcm, transport=RacingTransport()).deliver(merge(case_id))

    assert result.detail == "SUPPLEMENT (cannot cancel: past 01 at 02 (已立案))"
    assert ops(dcm, case_id) == [("CANCEL", 409), ("SUPPLEMENT", 200)]


def test_effects_the_platform_cannot_express_are_mapping_errors(dcm: Any) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn, "05")
    cases = [
        status(case_id, "CLOSED", None),  # the mapping has no action for the status
        status(case_id, "VERIFIED", "VERIFY"),  # no args.result
        status(case_id, "VERIFIED", "APPROVE"),  # not an operation of 数字城管
        status("", "VERIFIED", "VERIFY", {"result": "PASS"}),
        note(case_id, ""),
        effect("escalate", {"external_id": case_id}),
    ]
    for eff in cases:
        assert refusal(conn, eff).kind == "mapping", eff.payload
    assert ops(dcm, case_id) == []


# ----- auth and transport -------------------------------------------------------------------------


def test_a_revoked_or_expired_token_is_renewed_once(dcm: Any, clock: FakeClock) -> None:
    transport = RecordingTransport()
    conn = connector(dcm, transport=transport)
    first, second = ours(dcm, conn, "05"), ours(dcm, conn, "05")
    transport.sent.clear()

    put_faults(dcm, SYSTEM, revoke_tokens=True)  # the platform restarted: every token is gone
    assert conn.deliver(verify(first)).detail == "VERIFY PASS"
    clock.tick(7200)  # the renewed token has lived its 7200 s on the platform's clock
    assert conn.deliver(verify(second)).detail == "VERIFY PASS"

    get_first, get_second = f"dcm/api/cases/{first}", f"dcm/api/cases/{second}"
    assert transport.sent == [
        ("GET", get_first, 401), ("POST", "oauth/token", 200), ("GET", get_first, 200),
        ("POST", f"{get_first}/operations", 200),
        ("GET", get_second, 401), ("POST", "oauth/token", 200), ("GET", get_second, 200),
        ("POST", f"{get_second}/operations", 200),
    ]


def test_a_refused_client_secret_is_permanent_and_never_shown(dcm: Any) -> None:
    wrong = "not-the-dcm-secret"
    for eff in (create(), note("c0000188-00000000", "物业已到场协调。")):
        error = refusal(connector(dcm, secret=wrong), eff)
        assert error.kind == "permanent" and "invalid_client" in str(error)
        assert wrong not in str(error) and CLIENT_SECRET not in str(error)
    assert write_count(dcm) == 0


def test_gateway_errors_and_rate_limits_are_transient(dcm: Any) -> None:
    conn = connector(dcm)
    case_id = ours(dcm, conn, "05")
    put_faults(dcm, SYSTEM, error_5xx_rate=1.0)
    error = refusal(conn, verify(case_id))
    assert error.kind == "transient" and "502" in str(error)
    error = refusal(conn, create())
    assert error.kind == "transient" and "502" in str(error)
    put_faults(dcm, SYSTEM, error_5xx_rate=0.0, rate_limit_per_s=0.5, retry_after_s=7)
    requests.get(f"{dcm.urls[SYSTEM]}/dcm/api/cases", timeout=5)  # spends this second's budget
    error = refusal(conn, verify(case_id))
    assert (error.kind, error.retry_after) == ("transient", 7.0) and "429" in str(error)
    put_faults(dcm, SYSTEM)
    assert case(dcm, case_id)["status"] == "05"
    assert conn.deliver(verify(case_id)).detail == "VERIFY PASS"


def test_an_unknown_case_is_permanent(dcm: Any) -> None:
    error = refusal(connector(dcm), verify("c0999999-deadbeef"))
    assert error.kind == "permanent" and "404" in str(error)


# ----- through the hub's outbox -------------------------------------------------------------------


def test_the_outbox_delivers_through_the_connector_with_the_active_mapping(hub_ctx: HubContext, dcm: Any) -> None:
    configure_system(hub_ctx, dcm, SYSTEM)
    waiting = filed(dcm, status="05", source="03", externalNo="GD20261123000321")
    new, unknown = create(), create(category="noise_neighbour")
    with hub_ctx.db.session() as s:
        for key, eff in (("k:new", new), ("k:unknown", unknown), ("k:verify", verify(waiting))):
            outbox.enqueue(s, case_id=None, system_key=SYSTEM, operation=eff.operation, payload=dict(eff.payload),
                           idempotency_key=key)

    counts = outbox.deliver_due(hub_ctx)

    assert counts == {OutboundStatus.SENT: 2, OutboundStatus.FAILED: 0, OutboundStatus.DEAD: 1, outbox.DEFERRED: 0}
    with hub_ctx.db.read_session() as s:
        rows = {m.idempotency_key: (m.status, m.error_kind, m.external_ref) for m in s.scalars(select(OutboundMessage))}
    created_id = next(c["caseId"] for c in dcm.sim(SYSTEM).state()["cases"]
                      if c["externalNo"] == new.payload["external_no"])
    assert rows == {"k:new": (OutboundStatus.SENT, "", created_id),
                    "k:unknown": (OutboundStatus.DEAD, "mapping", ""),
                    "k:verify": (OutboundStatus.SENT, "", waiting)}
    assert case(dcm, waiting)["status"] == "06"
