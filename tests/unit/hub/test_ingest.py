"""Inbox → ticket → case: idempotent, order-tolerant, nothing dropped."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hub.config import HubConfig
from hub.context import HubContext
from hub.facade import MatchDecision, TicketView, hookimpl
from hub.models import Case, CaseEvent, InboundEvent, Ticket
from hub.services.ingest import replay_quarantined
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest, make_fake_ctx


def _tickets(ctx: HubContext) -> list[Ticket]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(Ticket).order_by(Ticket.id)))


def _count(ctx: HubContext, model: Any) -> int:
    with ctx.db.read_session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_new_ticket_opens_a_case_with_mapped_fields(fake_ctx: HubContext) -> None:
    assert ingest(fake_ctx, record("F1", lat=31.1921, lng=121.4532)) == 1
    (ticket,) = _tickets(fake_ctx)
    assert (ticket.category, ticket.status, ticket.status_code, ticket.seq) == ("street_vending", "REPORTED", "NEW", 1)
    assert ticket.reported_at.isoformat() == "2026-11-23T01:00:00+00:00"  # 09:00 Shanghai → UTC
    assert abs(ticket.lat - 31.1921) < 1e-9 and ticket.case_id is not None
    with fake_ctx.db.read_session() as s:
        case = s.get(Case, ticket.case_id)
        assert case is not None and case.number.startswith("GH20261123") and case.status == "REPORTED"
        assert [e.kind for e in case.events] == ["case_opened", "task_list"]


def test_redelivery_is_a_no_op(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1"))
    assert ingest(fake_ctx, record("F1")) == 0
    assert _count(fake_ctx, InboundEvent) == 1 and _count(fake_ctx, Ticket) == 1


def test_newest_version_wins_whatever_the_order(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1", v=3, st="DONE"), record("F1", v=1), record("F1", v=2, st="DOING"))
    (ticket,) = _tickets(fake_ctx)
    assert (ticket.seq, ticket.status) == (3, "RESOLVED")
    with fake_ctx.db.read_session() as s:
        statuses = sorted(s.scalars(select(InboundEvent.status)))
    assert statuses == ["processed", "stale", "stale"]
    assert _count(fake_ctx, Case) == 1


def test_status_change_moves_the_case_and_lands_on_the_timeline(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1"), record("F1", v=2, st="DOING"))
    with fake_ctx.db.read_session() as s:
        case = s.scalars(select(Case)).one()
        assert case.status == "IN_PROGRESS"
        kinds = [e.kind for e in case.events]
    assert kinds == ["case_opened", "task_list", "ticket_status", "status_changed"]


def _refusals(ctx: HubContext, case_id: int) -> list[CaseEvent]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == "status_refused")
                              .order_by(CaseEvent.id)))


def test_a_newer_snapshot_reporting_an_earlier_status_never_moves_the_case_back(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1"), record("F1", v=2, st="DONE"))
    with fake_ctx.db.read_session() as s:
        case = s.scalars(select(Case)).one()
        assert case.status == "RESOLVED" and case.closed_at is not None
        case_id, closed_at = case.id, case.closed_at
    # the system's next version says 新建 again (reset on its side, reported earlier than it was)
    ingest(fake_ctx, record("F1", v=3, st="NEW", at="2026-11-23 08:00:00"))
    ingest(fake_ctx, record("F1", v=4, st="NEW", text="门口有人摆摊，已第二次反映"))  # same status again
    (ticket,) = _tickets(fake_ctx)
    assert (ticket.seq, ticket.status, ticket.status_code) == (4, "REPORTED", "NEW")  # the ticket mirrors its system
    with fake_ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None and (case.status, case.closed_at) == ("RESOLVED", closed_at)
        kinds = [e.kind for e in case.events]
    assert kinds == ["case_opened", "task_list", "ticket_status", "status_changed", "ticket_status", "status_refused"]
    (refused,) = _refusals(fake_ctx, case_id)
    assert refused.detail == {"from": "RESOLVED", "to": "REPORTED", "ticket_id": ticket.id, "system_status": "NEW",
                              "reason": refused.detail["reason"]}
    assert "backwards" in refused.detail["reason"]
    assert refused.summary == "fake F1 报告 REPORTED，不能从 RESOLVED 转入，已忽略"
    # a different illegal status is news: one more line; then a legal one moves the case again
    ingest(fake_ctx, record("F1", v=5, st="DOING"), record("F1", v=6, st="DOING", title="再次"))
    assert [e.detail["to"] for e in _refusals(fake_ctx, case_id)] == ["REPORTED", "IN_PROGRESS"]
    ingest(fake_ctx, record("F1", v=7, st="DONE"))
    with fake_ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None and (case.status, case.closed_at) == ("RESOLVED", closed_at)


def test_forward_moves_skip_steps_the_hub_never_saw(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1"), record("F1", v=5, st="DONE"))  # 新建 → 完成, 处理中 never polled
    with fake_ctx.db.read_session() as s:
        case = s.scalars(select(Case)).one()
        assert case.status == "RESOLVED" and case.closed_at is not None
        assert [e.kind for e in case.events] == ["case_opened", "task_list", "ticket_status", "status_changed"]


def test_a_cancelled_case_is_not_revived_by_a_later_report(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1"))
    with fake_ctx.db.session() as s:  # cancelled in its department's system (fakesys has no such code)
        case = s.scalars(select(Case)).one()
        case.status, case_id = "CANCELLED", case.id
    ingest(fake_ctx, record("F1", v=2, st="DOING"), record("F1", v=3, st="DOING", title="again"))
    with fake_ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.status == "CANCELLED" and case.closed_at is None
    (refused,) = _refusals(fake_ctx, case_id)
    assert (refused.detail["from"], refused.detail["to"]) == ("CANCELLED", "IN_PROGRESS")
    assert "final" in refused.detail["reason"]


def test_unmappable_payload_is_quarantined_then_replayed_after_fix(fake_ctx: HubContext) -> None:
    from hub.services.mapping_versions import create_version
    from tests.support.fake_system import MAPPING

    ingest(fake_ctx, record("F9", cat="Z"))
    assert _count(fake_ctx, Ticket) == 0
    with fake_ctx.db.read_session() as s:
        ev = s.scalars(select(InboundEvent)).one()
        assert ev.status == "quarantined" and ev.error_kind == "mapping"
        assert "category" in ev.error_reason and "Z" in ev.error_reason
        assert '"cat": "Z"' in ev.payload  # kept verbatim
    assert replay_quarantined(fake_ctx) == {"quarantined": 1}  # still broken: still kept
    fixed = MAPPING.read_text(encoding="utf-8").replace('"B": garbage_exposed}',
                                                        '"B": garbage_exposed, "Z": other}')
    fixed = fixed.replace("category: [A, B]", "category: [A, B, Z]")
    with fake_ctx.db.session() as s:
        version = create_version(s, "fake", fixed, comment="Z", activate=True)
    assert replay_quarantined(fake_ctx, system_key="fake") == {"processed": 1}
    (ticket,) = _tickets(fake_ctx)
    assert ticket.category == "other" and ticket.mapping_version_id == version.id


def test_undecodable_record_is_kept(fake_ctx: HubContext) -> None:
    from hub.facade import RawRecord
    from hub.services.inbox import Inbox

    Inbox(fake_ctx, "fake").store(RawRecord(event_id="x@1", external_id="x", raw="{not json"))
    with fake_ctx.db.read_session() as s:
        ev = s.scalars(select(InboundEvent)).one()
    assert ev.status == "quarantined" and ev.error_kind == "schema"


def test_reporter_identity_is_encrypted_and_masked(fake_ctx: HubContext, fake_client: Any,
                                                   fake_headers: dict[str, str]) -> None:
    ingest(fake_ctx, record("F1", name="王小明", phone="13812345678", text="请联系13812345678王小明"))
    (ticket,) = _tickets(fake_ctx)
    assert "13812345678" not in str(ticket.fields) and ticket.reporter_encrypted
    assert b"13812345678" not in ticket.reporter_encrypted and len(ticket.reporter_phone_hash) == 64
    body = fake_client.get(f"/api/v1/cases/{ticket.case_id}", headers=fake_headers).get_data(as_text=True)
    assert "王小明" not in body.split('"description"')[0]
    with fake_ctx.db.read_session() as s:
        ev_id = s.scalar(select(InboundEvent.id))
    shown = fake_client.get(f"/api/v1/inbound-events/{ev_id}", headers=fake_headers).json["payload"]
    assert "13812345678" not in shown and "王小明" not in shown and "***" in shown


def test_cross_reference_links_in_either_order(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("R1", ref="M1"))  # referenced first
    ingest(fake_ctx, record("R2", ref="M2"), record("M2"))  # referencing first
    by_id = {t.external_id: t.case_id for t in _tickets(fake_ctx)}
    assert by_id["M1"] == by_id["R1"] and by_id["M2"] == by_id["R2"] and by_id["M1"] != by_id["M2"]
    assert _count(fake_ctx, Case) == 2


def test_reference_gained_later_moves_the_ticket_and_merges_the_empty_case(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("D1"))
    ingest(fake_ctx, record("D1", v=2, ref="M1"))  # D1 now names M1 (e.g. 12345 marks it 重复件)
    by_id = {t.external_id: t.case_id for t in _tickets(fake_ctx)}
    assert by_id["D1"] == by_id["M1"]
    with fake_ctx.db.read_session() as s:
        cases = {c.id: c for c in s.scalars(select(Case))}
        emptied = next(c for c in cases.values() if c.id != by_id["M1"])
        assert emptied.status == "CANCELLED"
        assert [e.kind for e in emptied.events][-2:] == ["ticket_moved", "case_merged"]
        assert "ticket_linked" in [e.kind for e in cases[by_id["M1"]].events]


def test_same_version_read_earlier_never_overwrites_a_later_read(fake_ctx: HubContext) -> None:
    from dataclasses import replace

    from hub.services.inbox import Inbox
    from hub.services.ingest import process_event
    from tests.support.fake_system import raw

    ingest(fake_ctx, record("S1", v=5))
    # two different snapshots sharing version 6 (versions of one-second precision), read in this
    # order, then processed in the opposite order (two workers)
    fake_ctx.config = replace(fake_ctx.config, ingest_mode="queue")  # store only
    Inbox(fake_ctx, "fake").store_many([
        replace(raw(record("S1", v=6, st="DOING")), event_id="S1@6a"),
        replace(raw(record("S1", v=6, st="DONE")), event_id="S1@6b"),
    ])
    with fake_ctx.db.read_session() as s:
        first, second = s.scalars(select(InboundEvent.id).where(InboundEvent.status == "pending")
                                  .order_by(InboundEvent.id))
    assert process_event(fake_ctx, second).status == "processed"
    assert process_event(fake_ctx, first).status == "stale"
    (ticket,) = _tickets(fake_ctx)
    assert (ticket.seq, ticket.status_code) == (6, "DONE")


def test_a_value_the_store_cannot_hold_is_quarantined_not_retried_forever(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("N1", addr="斜土路\x00号"))
    with fake_ctx.db.read_session() as s:
        ev = s.scalars(select(InboundEvent)).one()
    if fake_ctx.db.is_sqlite:  # SQLite stores NUL; PostgreSQL refuses it
        assert ev.status == "processed"
    else:
        assert ev.status == "quarantined" and "NUL" in ev.error_reason


def test_a_case_opened_from_a_finished_ticket_is_closed_from_the_start(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("F1", st="DONE"))
    with fake_ctx.db.read_session() as s:
        case = s.scalars(select(Case)).one()
        # closed_at set: the recurrence look-up finds it like any other closed case
        assert case.status == "RESOLVED" and case.closed_at is not None


class _LinkTo:
    """A matcher that links every ticket to one case (as a decision taken just before a person
    merged that case away would)."""

    def __init__(self) -> None:
        self.case_id: int | None = None

    @hookimpl(tryfirst=True)
    def hub_match_case(self, ticket: TicketView, references: Any, finder: Any) -> MatchDecision | None:
        if self.case_id is None:
            return None
        return MatchDecision(case_id=self.case_id, matcher="test", score=1.0, reason="test link")


def test_a_link_to_a_case_merged_away_lands_in_the_case_that_absorbed_it(hub_config: HubConfig) -> None:
    matcher = _LinkTo()
    ctx = make_fake_ctx(hub_config, matcher)
    try:
        ingest(ctx, record("F1"), record("F2"))
        with ctx.db.session() as s:
            first, second = (t.case_id for t in s.scalars(select(Ticket).order_by(Ticket.id)))
            gone = s.get(Case, second)
            assert gone is not None
            gone.status, gone.merged_into_id = "CANCELLED", first
        matcher.case_id = second
        ingest(ctx, record("F3"))
        with ctx.db.read_session() as s:
            assert s.scalar(select(Ticket.case_id).where(Ticket.external_id == "F3")) == first
    finally:
        ctx.close()


def test_one_page_creates_then_updates_a_ticket_and_records_every_event(fake_ctx: HubContext,
                                                                        caplog: Any) -> None:
    """A page preloads the tickets its events name and knows which are new; the second event of
    a ticket created earlier in the same page must still find it, and every event row gets its
    outcome, attempt count, mapping version and ticket."""
    from dataclasses import replace

    from hub.services.inbox import Inbox
    from tests.support.fake_system import raw

    older = replace(raw(record("P1", v=1, title="旧")), event_id="P1@1-late")  # read late, older
    ingest(fake_ctx, record("P0"))  # the first case seeds the task list (which empties the page's cache)
    caplog.set_level("INFO", logger="hub.services.ingest")
    Inbox(fake_ctx, "fake").store_many([raw(record("P1")), raw(record("P2")),
                                        raw(record("P1", v=2, st="DOING")), older])
    tickets = {t.external_id: t for t in _tickets(fake_ctx)}
    assert sorted(tickets) == ["P0", "P1", "P2"]
    assert (tickets["P1"].seq, tickets["P1"].status_code) == (2, "DOING")
    with fake_ctx.db.read_session() as s:
        events = list(s.scalars(select(InboundEvent).where(InboundEvent.external_id != "P0")
                                .order_by(InboundEvent.id)))
        case_ids = set(s.scalars(select(Ticket.case_id).where(Ticket.external_id != "P0")))
    assert [e.status for e in events] == ["processed", "processed", "processed", "stale"]
    assert all(e.attempts == 1 and e.processed_at is not None and e.mapping_version_id for e in events)
    assert [e.ticket_id for e in events] == [tickets["P1"].id, tickets["P2"].id, tickets["P1"].id, tickets["P1"].id]
    assert None not in case_ids and len(case_ids) == 2
    assert "left the batch" not in caplog.text  # all four applied in the page's transaction


class _Fail:
    """A matcher that fails the first ``times`` times it sees ``external_id``, after its ticket was
    written and before its case (a store error in the middle of a record)."""

    def __init__(self, external_id: str, times: int) -> None:
        self.external_id = external_id
        self.times = times

    @hookimpl(tryfirst=True)
    def hub_match_case(self, ticket: TicketView, references: Any, finder: Any) -> MatchDecision | None:
        if ticket.external_id == self.external_id and self.times > 0:
            from sqlalchemy.exc import IntegrityError

            self.times -= 1
            raise IntegrityError("INSERT …", {}, Exception("simulated"))
        return None


@pytest.mark.parametrize("times", [1, 2])
def test_a_record_that_fails_mid_page_is_retried_alone_and_the_rest_of_the_page_applies(
        hub_config: HubConfig, caplog: Any, times: int) -> None:
    """Failing once, the page is applied again with a savepoint per record; failing twice, the
    record's savepoint takes its ticket back and the store hands its id to the next ticket: the
    page's session must not keep the taken-back object under that id."""
    ctx = make_fake_ctx(hub_config, _Fail("M2", times=times))
    try:
        ingest(ctx, record("M0"))  # seeds the task list
        caplog.set_level("INFO", logger="hub.services.ingest")
        ingest(ctx, record("M1"), record("M2"), record("M3"), record("M4"))
        assert "a savepoint per record" in caplog.text
        assert ("left the batch" in caplog.text) is (times == 2)
        with ctx.db.read_session() as s:
            tickets = {t.external_id: t for t in s.scalars(select(Ticket))}
            statuses = set(s.scalars(select(InboundEvent.status)))
            cases = s.scalar(select(func.count(Case.id)))
        assert sorted(tickets) == ["M0", "M1", "M2", "M3", "M4"]
        assert all(t.case_id is not None for t in tickets.values()) and cases == 5
        assert statuses == {"processed"}
    finally:
        ctx.close()
