"""Routing a case to a department system, the grid worker's verification, the reference a
record the hub created carries back, link health and the reconciliation sweep (fake systems)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from sqlalchemy import select

from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext
from hub.facade import HUB_SYSTEM_TYPE
from hub.models import AuditEntry, Case, CaseEvent, CircuitBreaker, OutboundMessage, SyncLog, Ticket
from hub.services import circuit, dedup_ops, outbox, routing
from hub.services.cases import StoreFinder
from hub.services.inbox import Inbox
from hub.services.mapping_versions import create_version
from hub.services.reconcile import reconcile_flagged, reconcile_system
from hub.services.systems import connector_for, get_system
from tests.conftest import make_token
from tests.support.fake_system import MAPPING, FakeConnector, raw, record
from tests.unit.hub.conftest import add_fake_system, make_fake_ctx
from tests.unit.hub.test_outbox import T0


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    """``fake`` holds the reports; ``dept`` (same plugin) is a department system to route to."""
    c = make_fake_ctx(hub_config)
    add_fake_system(c, "dept", "部门系统")
    yield c
    c.close()


@pytest.fixture
def client(ctx: HubContext) -> Any:
    return create_app(context=ctx).test_client()


def auth(ctx: HubContext, role: str = "admin", scope: str = "") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(ctx, role, scope, name=f'{role}-1')}"}


def put(ctx: HubContext, system_key: str, rec: dict[str, Any]) -> None:
    Inbox(ctx, system_key).store_many([raw(rec)])


def the_case(ctx: HubContext, system_key: str = "fake", ext_id: str = "A1") -> Case:
    with ctx.db.read_session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.system_key == system_key, Ticket.external_id == ext_id))
        assert ticket is not None and ticket.case_id is not None
        case = s.get(Case, ticket.case_id)
        assert case is not None
        return case


def messages(ctx: HubContext, operation: str | None = None) -> list[OutboundMessage]:
    with ctx.db.read_session() as s:
        q = select(OutboundMessage).order_by(OutboundMessage.id)
        if operation:
            q = q.where(OutboundMessage.operation == operation)
        return list(s.scalars(q))


def events(ctx: HubContext, case_id: int, kind: str) -> list[CaseEvent]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)))


def fake(ctx: HubContext, key: str) -> FakeConnector:
    with ctx.db.read_session() as s:
        return cast(FakeConnector, connector_for(ctx, get_system(s, key)))


# ----- routing --------------------------------------------------------------------------------------


def test_routing_opens_a_record_filed_under_the_case_number_and_the_record_joins_the_case(
        ctx: HubContext, client: Any) -> None:
    put(ctx, "fake", record("A1"))
    case = the_case(ctx)
    resp = client.post(f"/api/v1/cases/{case.id}/route", json={"system_key": "dept", "reason": "占道经营归城管"},
                            headers=auth(ctx, "operator"))
    assert resp.status_code == 200, resp.json
    assert resp.json["owner_system"] == "dept" and resp.json["external_no"] == case.number
    [create] = messages(ctx, "create")
    assert create.system_key == "dept" and create.idempotency_key == f"create:{case.id}:dept:1"
    p = create.payload
    assert (p["source"], p["external_no"], p["category"], p["reporter"], p["case_number"]) == (
        "07", case.number, "street_vending", "", case.number)
    assert p["location"] == {"lng": case.lng, "lat": case.lat}
    assert the_case(ctx).owner_system == "dept"
    [line] = events(ctx, case.id, "routed")
    assert line.actor == "operator-1" and "占道经营归城管" in line.summary
    [audited] = audit_lines(ctx, "case.route")  # the same audit line as the console's
    assert (audited.actor, audited.target_id, audited.before, audited.after["owner_system"]) == (
        "operator-1", case.number, {"owner_system": "fake"}, "dept")
    # delivered: the record the department made is on the row and the timeline
    assert outbox.deliver_due(ctx, now=T0)["sent"] == 1
    with ctx.db.read_session() as s:
        sent = s.get(OutboundMessage, create.id)
        assert sent is not None and sent.external_ref == f"F{create.id}"
    assert len(events(ctx, case.id, "routed_created")) == 1
    # the department's record names the case number: the finder resolves it to the case
    with ctx.db.session() as s:
        assert StoreFinder(s).case_of_external(HUB_SYSTEM_TYPE, case.number) == case.id
        assert StoreFinder(s).case_of_external(HUB_SYSTEM_TYPE, "GH-nope") is None


def test_routing_refusals_are_clear_and_change_nothing(ctx: HubContext, client: Any) -> None:
    put(ctx, "fake", record("A1"))
    put(ctx, "fake", record("G1", cat="B"))  # garbage: the department's mapping has no code for it
    case, garbage = the_case(ctx), the_case(ctx, ext_id="G1")
    headers = auth(ctx, "operator")
    bad = client.post(f"/api/v1/cases/{garbage.id}/route", json={"system_key": "dept"}, headers=headers)
    assert bad.status_code == 409 and "garbage_exposed" in bad.json["message"]
    unknown = client.post(f"/api/v1/cases/{case.id}/route", json={"system_key": "nope"}, headers=headers)
    assert unknown.status_code == 404 and "nope" in unknown.json["message"]
    assert client.post(f"/api/v1/cases/{case.id}/route", json={"system_key": "dept"},
                            headers=auth(ctx, "grid_worker")).status_code == 403
    other_street = auth(ctx, "operator", scope="310105")
    assert client.post(f"/api/v1/cases/{case.id}/route", json={"system_key": "dept"},
                            headers=other_street).status_code == 404
    assert messages(ctx) == [] and the_case(ctx).owner_system == "fake"
    # a caller that goes on after a refusal (a police handover inside an ingestion) commits nothing of it
    with ctx.db.session() as s, pytest.raises(routing.RoutingError):
        routing.route_case(ctx, s, s.get(Case, garbage.id), "dept", actor="t")  # type: ignore[arg-type]
    assert the_case(ctx, ext_id="G1").owner_system == "fake" and messages(ctx) == []


def test_routing_to_a_system_that_holds_a_record_already_only_moves_ownership(ctx: HubContext) -> None:
    put(ctx, "fake", record("A1"))
    put(ctx, "dept", record("D1", ref="A1"))
    case = the_case(ctx)
    with ctx.db.session() as s:
        routed = routing.route_case(ctx, s, s.get(Case, case.id), "dept", actor="t")  # type: ignore[arg-type]
    assert routed.message_id is None and routed.external_no == "D1"
    assert messages(ctx, "create") == [] and the_case(ctx).owner_system == "dept"


def test_same_system_duplicates_are_told_once_against_the_earliest(ctx: HubContext) -> None:
    put(ctx, "fake", record("A1", at="2026-11-23 09:00:00"))
    put(ctx, "fake", record("A2", ref="A1", at="2026-11-23 09:05:00"))
    put(ctx, "fake", record("A3", ref="A1", at="2026-11-23 09:07:00"))
    put(ctx, "fake", record("A3", v=2, ref="A1", at="2026-11-23 09:07:00", text="又来电"))  # an update: no repeat
    merges = messages(ctx, "merge")
    assert [(m.payload["external_id"], m.payload["master_external_id"]) for m in merges] == [
        ("A2", "A1"), ("A3", "A1")]
    assert len(events(ctx, the_case(ctx).id, "duplicate_planned")) == 2
    # A3 was not the same incident after all: split out, its system hears it is on its own again
    dedup_ops.split_ticket(ctx, "fake", "A3", "operator-1", "不是同一摊位")
    [note] = messages(ctx, "note")
    new_case = the_case(ctx, ext_id="A3")
    assert note.payload["external_id"] == "A3" and new_case.number in note.payload["text"]
    assert note.case_id == new_case.id and len(events(ctx, new_case.id, "split_planned")) == 1
    dedup_ops.split_ticket(ctx, "fake", "A1", "operator-1", "主件也拆出")  # the master was never marked
    assert len(messages(ctx, "note")) == 1


# ----- verification -----------------------------------------------------------------------------------


def test_only_a_resolved_case_is_verified_and_every_linked_record_hears_it(ctx: HubContext,
                                                                          client: Any) -> None:
    put(ctx, "fake", record("A1", st="DOING"))
    case = the_case(ctx)
    url = f"/api/v1/cases/{case.id}/verify"
    body = {"result": "pass", "text": "现场已清理干净"}
    early = client.post(url, json=body, headers=auth(ctx, "grid_worker"))
    assert early.status_code == 409 and "IN_PROGRESS" in early.json["message"]
    bad_photo = {**body, "photos": [{"data": "not base64!"}]}
    # the state is asked before any photo is decoded: the refusal is the case's, not the photo's
    assert client.post(url, json=bad_photo, headers=auth(ctx, "grid_worker")).status_code == 409
    put(ctx, "fake", record("A1", v=2, st="DONE", result="已劝离摊贩"))
    refused = client.post(url, json=bad_photo, headers=auth(ctx, "grid_worker"))
    assert refused.status_code == 400 and "base64" in refused.json["message"]
    assert client.post(url, json={"result": "maybe", "text": "x"}, headers=auth(ctx)).status_code == 422
    assert client.post(url, json=body, headers=auth(ctx, "auditor")).status_code == 403
    ok = client.post(url, json=body, headers=auth(ctx, "grid_worker"))
    assert ok.status_code == 200 and ok.json["status"] == "VERIFIED"
    changed = events(ctx, case.id, "status_changed")[-1]
    assert (changed.actor, changed.detail["to"], changed.detail["reason"]) == ("grid_worker-1", "VERIFIED",
                                                                                "现场已清理干净")
    assert client.post(url, json=body, headers=auth(ctx, "grid_worker")).status_code == 409  # once
    [audited] = audit_lines(ctx, "case.verify")
    assert (audited.actor, audited.target_id, audited.after["result"], audited.after["status"]) == (
        "grid_worker-1", case.number, "pass", "VERIFIED")


def audit_lines(ctx: HubContext, action: str) -> list[AuditEntry]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# ----- health and the breaker ---------------------------------------------------------------------------


def test_health_shows_backlog_dead_letters_and_the_circuit(ctx: HubContext, client: Any) -> None:
    put(ctx, "fake", record("A1"))
    headers = auth(ctx, "auditor")
    fresh = client.get("/api/v1/systems/fake/health", headers=headers)
    assert fresh.status_code == 200
    assert fresh.json["status"] == "ok" and fresh.json["circuit"]["state"] == "closed"
    assert fresh.json["inbound"]["last_success_at"] is not None
    case = the_case(ctx)
    with ctx.db.session() as s:
        for i in range(7):
            outbox.enqueue(s, case_id=case.id if i == 0 else None, system_key="fake", operation="status",
                           payload={"n": i}, idempotency_key=f"h{i}")
    conn = fake(ctx, "fake")
    conn.fail_permanent()
    conn.fail_transient(circuit.FAILURE_THRESHOLD)
    outbox.deliver_due(ctx, now=T0)
    h = client.get("/api/v1/systems/fake/health", headers=headers).json
    assert h["status"] == "down" and h["circuit"]["state"] == "open" and h["circuit"]["failures"] == 5
    assert (h["outbound"]["dead"], h["outbound"]["backlog"]) == (1, 6)
    assert h["delivery"]["attempts"] == 6 and h["delivery"]["failures"] == 6
    assert h["delivery"]["last_error"]["kind"] == "transient"
    assert [x["key"] for x in client.get("/api/v1/systems/health", headers=headers).json] == ["dept", "fake"]
    assert client.get("/api/v1/systems/nope/health", headers=headers).status_code == 404
    # an admin closes the breaker by hand; the system's records are then re-read
    assert client.post("/api/v1/systems/fake/circuit/reset", headers=headers).status_code == 403
    reset = client.post("/api/v1/systems/fake/circuit/reset", headers=auth(ctx))
    assert reset.status_code == 200 and reset.json["circuit"]["state"] == "closed"
    assert reset.json["status"] == "degraded"  # the dead letter is still there
    with ctx.db.read_session() as s:
        row = s.get(CircuitBreaker, "fake")
        assert row is not None and row.needs_reconcile


# ----- reconciliation ------------------------------------------------------------------------------------


def test_reconciliation_reads_missed_changes_through_the_normal_path(ctx: HubContext, client: Any) -> None:
    put(ctx, "fake", record("A1"))
    put(ctx, "fake", record("A9"))
    case = the_case(ctx)
    conn = fake(ctx, "fake")
    conn.current["A1"] = record("A1", v=3, st="DOING")  # a change the hub never heard of
    report = reconcile_system(ctx, "fake")
    assert (report.checked, report.stored, report.missing, report.ok) == (2, 1, ["A9"], True)
    assert the_case(ctx).status == "IN_PROGRESS" and the_case(ctx).id == case.id
    again = reconcile_system(ctx, "fake")  # the same snapshot again changes nothing
    assert again.stored == 0
    with ctx.db.read_session() as s:
        logs = list(s.scalars(select(SyncLog).where(SyncLog.operation == "reconcile")))
        assert len(logs) == 2 and "missing 1" in logs[0].detail
    # flagged after an outage: the worker's sweep runs it once and clears the flag
    with ctx.db.session() as s:
        circuit.record(s, "fake", transient_failure=True)
        s.get(CircuitBreaker, "fake").state = "open"  # type: ignore[union-attr]
        circuit.record(s, "fake", transient_failure=False)
    assert [r.system_key for r in reconcile_flagged(ctx)] == ["fake"]
    assert reconcile_flagged(ctx) == []
    api = client.post("/api/v1/systems/fake/reconcile?limit=1", headers=auth(ctx))
    assert api.status_code == 200 and api.json["checked"] == 1
    assert client.post("/api/v1/systems/fake/reconcile", headers=auth(ctx, "operator")).status_code == 403


def test_a_system_waiting_for_the_hubs_check_is_not_told_verified_by_another_system(ctx: HubContext) -> None:
    """dept verifies on site through the hub (its mapping has an action for VERIFIED); fake reporting
    VERIFIED (e.g. police closing a 警情) is no on-site check, so dept hears nothing of it."""
    text = MAPPING.read_text(encoding="utf-8")
    reporter = text.replace('"DONE": RESOLVED}', '"DONE": RESOLVED, "OK": VERIFIED}').replace(
        "statuses: [NEW, DOING, HOLD, DONE]", "statuses: [NEW, DOING, HOLD, DONE, OK]")
    checked = text.replace("    RESOLVED: {action: DONE, args: {result: ok}}\n",
                           "    RESOLVED: {action: DONE, args: {result: ok}}\n"
                           "    VERIFIED: {action: DOING, args: {verify: pass}}\n")
    assert reporter != text and checked != text
    with ctx.db.session() as s:
        create_version(s, "fake", reporter, activate=True)
        create_version(s, "dept", checked, activate=True)
    put(ctx, "fake", record("A1", upd="2026-11-23 10:00:00"))
    put(ctx, "dept", record("D1", ref="A1", upd="2026-11-23 10:01:00"))
    put(ctx, "fake", record("A1", v=2, st="OK", upd="2026-11-23 10:05:00"))
    assert the_case(ctx).status == "VERIFIED"
    assert [m.payload["status"] for m in messages(ctx, "status") if m.system_key == "dept"] == []
