"""The sync planner: a case's status change reaches every other linked record once, in its own
words; never its own news (echo suppression); finished states only from the handling system."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.context import HubContext
from hub.models import Case, CaseEvent, OutboundMessage, OutboundStatus, SyncLink, Ticket, utcnow
from hub.services import outbox
from hub.services.inbox import Inbox
from hub.services.systems import connector_for, get_system
from hub.workers.outbox_worker import OutboxWorker, deliver_once
from tests.support.fake_system import FakeConnector, raw, record
from tests.unit.hub.conftest import add_fake_system, make_fake_ctx


@pytest.fixture
def two_ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    """``fake`` (system A) and ``fake2`` (system B, same plugin): a case can hold a record of each."""
    ctx = make_fake_ctx(hub_config)
    add_fake_system(ctx, "fake2", "测试二")
    yield ctx
    ctx.close()


_clock = itertools.count(1)


def snap(ext_id: str, v: int = 1, **fields: Any) -> dict[str, Any]:
    """A fake record changed later than every record before it (the newest change moves the case)."""
    minute = next(_clock)
    return record(ext_id, v, upd=f"2026-11-23 {10 + minute // 60:02d}:{minute % 60:02d}:00", **fields)


def put(ctx: HubContext, system_key: str, *records: dict[str, Any]) -> int:
    return Inbox(ctx, system_key).store_many([raw(r) for r in records])


def connector(ctx: HubContext, key: str) -> FakeConnector:
    with ctx.db.read_session() as s:
        return cast(FakeConnector, connector_for(ctx, get_system(s, key)))


def messages(ctx: HubContext) -> list[OutboundMessage]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))


def case_of(ctx: HubContext, system_key: str, ext_id: str) -> Case:
    with ctx.db.read_session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.system_key == system_key, Ticket.external_id == ext_id))
        assert ticket is not None and ticket.case_id is not None
        case = s.get(Case, ticket.case_id)
        assert case is not None
        return case


def ticket_id(ctx: HubContext, system_key: str, ext_id: str) -> int:
    with ctx.db.read_session() as s:
        tid = s.scalar(select(Ticket.id).where(Ticket.system_key == system_key, Ticket.external_id == ext_id))
        assert tid is not None
        return tid


def linked(ctx: HubContext) -> Case:
    """A1 in system A (the case's owner: it opened the case), B1 in system B on the same case."""
    put(ctx, "fake", snap("A1"))
    put(ctx, "fake2", snap("B1", ref="A1"))
    case = case_of(ctx, "fake", "A1")
    assert case_of(ctx, "fake2", "B1").id == case.id and case.owner_system == "fake"
    assert messages(ctx) == []  # linking at the same status tells nobody anything
    return case


def test_a_change_from_a_is_planned_once_for_b_and_never_for_a(two_ctx: HubContext) -> None:
    case = linked(two_ctx)
    moved = snap("A1", v=2, st="DOING", result="已派人前往")
    put(two_ctx, "fake", moved)
    assert case_of(two_ctx, "fake", "A1").status == "IN_PROGRESS"
    [m] = messages(two_ctx)
    b1 = ticket_id(two_ctx, "fake2", "B1")
    assert (m.system_key, m.operation, m.case_id, m.status) == ("fake2", "status", case.id, OutboundStatus.PENDING)
    changed_at = datetime.fromisoformat(m.payload.pop("changed_at"))
    assert abs((changed_at - utcnow()).total_seconds()) < 60
    assert m.payload == {"external_id": "B1", "status": "IN_PROGRESS", "action": {"action": "DOING", "args": {}},
                         "result_text": "已派人前往", "reason": "已派人前往", "master_external_id": "",
                         "case_number": case.number}
    assert m.idempotency_key == f"status:{case.id}:{b1}:IN_PROGRESS:1"
    with two_ctx.db.read_session() as s:
        events = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                        CaseEvent.kind == "sync_planned")))
        link = s.scalar(select(SyncLink).where(SyncLink.ticket_id == b1))
        assert link is not None and (link.last_written_status, link.last_message_id) == ("IN_PROGRESS", m.id)
    assert [e.summary for e in events] == ["通知 fake2 B1：DOING"]
    assert events[0].detail["message_id"] == m.id

    # the same snapshot again (a redelivery, a replayed poll page): nothing new
    put(two_ctx, "fake", moved)
    # a newer snapshot of A1 at the same status: no case change, nothing new
    put(two_ctx, "fake", snap("A1", v=3, st="DOING", result="已派人前往，正在处理"))
    assert len(messages(two_ctx)) == 1


def test_the_planned_effect_is_delivered_to_b(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
    counts = outbox.deliver_due(two_ctx)
    assert counts[OutboundStatus.SENT] == 1
    [effect] = connector(two_ctx, "fake2").delivered
    assert effect.payload["external_id"] == "B1" and effect.payload["action"] == {"action": "DOING", "args": {}}
    assert connector(two_ctx, "fake").calls == []
    assert [m.status for m in messages(two_ctx)] == [OutboundStatus.SENT]


def test_b_reporting_what_the_hub_wrote_to_it_does_not_bounce_back(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))  # → B1 told DOING
    put(two_ctx, "fake", snap("A1", v=3, st="HOLD"))  # SUSPENDED: B has no word for it
    assert case_of(two_ctx, "fake", "A1").status == "SUSPENDED"
    assert len(messages(two_ctx)) == 1
    # B1's next snapshot shows the DOING the hub wrote; the case may resume, but A is not told
    put(two_ctx, "fake2", snap("B1", v=2, st="DOING", ref="A1"))
    assert case_of(two_ctx, "fake", "A1").status == "IN_PROGRESS"
    assert [m.system_key for m in messages(two_ctx)] == ["fake2"]


def test_the_same_target_is_not_planned_twice_in_a_row(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
    put(two_ctx, "fake", snap("A1", v=3, st="HOLD"))
    put(two_ctx, "fake", snap("A1", v=4, st="DOING"))  # a second real move to IN_PROGRESS
    assert case_of(two_ctx, "fake", "A1").status == "IN_PROGRESS"
    assert len(messages(two_ctx)) == 1  # B1 holds DOING from the hub already


def test_a_finished_state_goes_out_only_from_the_handling_system(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake2", snap("B1", v=2, st="DONE", ref="A1", result="已处理"))  # B is not the owner
    assert case_of(two_ctx, "fake", "A1").status == "RESOLVED"
    assert messages(two_ctx) == []


def test_a_finished_state_from_the_owner_reaches_the_others_with_its_result(two_ctx: HubContext) -> None:
    case = linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DONE", result="摊贩已劝离"))
    [m] = messages(two_ctx)
    assert m.payload["action"] == {"action": "DONE", "args": {"result": "ok"}}
    assert m.payload["status"] == "RESOLVED" and m.payload["result_text"] == "摊贩已劝离"
    assert m.case_id == case.id and m.system_key == "fake2"


def test_a_refused_change_plans_nothing(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DONE"))
    assert len(messages(two_ctx)) == 1
    put(two_ctx, "fake2", snap("B1", v=2, st="NEW", ref="A1"))  # RESOLVED → REPORTED: backwards
    case = case_of(two_ctx, "fake", "A1")
    assert case.status == "RESOLVED"
    with two_ctx.db.read_session() as s:
        kinds = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
    assert "status_refused" in kinds
    assert len(messages(two_ctx)) == 1


def test_a_ticket_already_at_or_beyond_the_target_is_not_told(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake2", snap("B1", v=2, st="DOING", ref="A1"))  # B moves the case; A is told
    [m] = messages(two_ctx)
    assert m.system_key == "fake"
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))  # A's echo: same status, no change
    assert len(messages(two_ctx)) == 1


def test_a_second_record_of_the_same_system_is_told(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A2", ref="A1"))
    [merge] = messages(two_ctx)  # A2 joined A1's case: the system hears A2 duplicates A1
    assert (merge.operation, merge.payload["external_id"], merge.payload["master_external_id"]) == (
        "merge", "A2", "A1")
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
    assert sorted((m.system_key, m.payload["external_id"]) for m in messages(two_ctx)
                  if m.operation == "status") == [("fake", "A2"), ("fake2", "B1")]


def test_deliver_once_runs_one_pass_and_never_raises(two_ctx: HubContext, monkeypatch: pytest.MonkeyPatch) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
    assert deliver_once(two_ctx)[OutboundStatus.SENT] == 1
    assert len(connector(two_ctx, "fake2").delivered) == 1

    def broken(*_a: Any, **_k: Any) -> dict[str, int]:
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(outbox, "deliver_due", broken)
    assert deliver_once(two_ctx) == {}


class _Message:
    acked = False

    def ack(self) -> None:
        self.acked = True


def test_the_worker_delivers_on_a_nudge_and_on_its_sweep(two_ctx: HubContext) -> None:
    linked(two_ctx)
    put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
    worker = OutboxWorker(two_ctx, two_ctx.bus.connection(), sweep_every_s=3600)
    message = _Message()
    worker.on_message({"count": 1}, message)
    assert message.acked and worker.passes == 1
    assert len(connector(two_ctx, "fake2").delivered) == 1

    put(two_ctx, "fake", snap("A1", v=3, st="DONE"))
    worker.on_iteration()  # the sweep is not due yet
    assert len(connector(two_ctx, "fake2").delivered) == 1
    worker.sweep_every_s = 0
    worker.on_iteration()
    assert len(connector(two_ctx, "fake2").delivered) == 2
    worker.stop.set()
    worker.on_iteration()
    assert worker.should_stop
    worker.connection.release()


def test_an_ingestion_that_planned_effects_nudges_a_running_worker(two_ctx: HubContext) -> None:
    linked(two_ctx)
    stop = threading.Event()
    with two_ctx.bus.connection() as conn:
        worker = OutboxWorker(two_ctx, conn, stop, sweep_every_s=3600)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not worker.passes and time.monotonic() < deadline:  # the first sweep at start
                time.sleep(0.05)
            put(two_ctx, "fake", snap("A1", v=2, st="DOING"))
            while not connector(two_ctx, "fake2").delivered and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert len(connector(two_ctx, "fake2").delivered) == 1
    assert worker.passes >= 2  # the start-up sweep, then the nudge
