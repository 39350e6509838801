"""Merge, split, review decisions and undo (hub.services.dedup_ops), on cases built by ingesting
tickets through the real pipeline: each operation moves tickets, leaves an audited, undoable
record and timeline lines, and undo puts every case back exactly."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.facade import MatchDecision
from hub.models import Case, CaseEvent, CaseOperation, MatchRecord, ReviewStatus, Ticket
from hub.services import dedup_ops
from hub.services.dedup_ops import OperationError
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest

CaseState = tuple[str, int | None, datetime | None, datetime]


def _state(ctx: HubContext) -> tuple[dict[int, CaseState], dict[str, int | None]]:
    """Every case's status, merged_into, closed_at, reported_at; every ticket's case."""
    with ctx.db.read_session() as s:
        cases = {c.id: (c.status, c.merged_into_id, c.closed_at, c.reported_at) for c in s.scalars(select(Case))}
        tickets = {t.external_id: t.case_id for t in s.scalars(select(Ticket))}
    return cases, tickets


def _case_of(ctx: HubContext, external_id: str) -> int:
    with ctx.db.read_session() as s:
        case_id = s.scalar(select(Ticket.case_id).where(Ticket.external_id == external_id))
    assert case_id is not None
    return case_id


def _case(ctx: HubContext, case_id: int) -> Case:
    with ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def _events(ctx: HubContext, case_id: int) -> list[CaseEvent]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)))


def _refused(code: int, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(OperationError) as info:
        call(*args, **kwargs)
    assert info.value.status == code, info.value.message
    return info.value.message


def _two_cases(ctx: HubContext) -> tuple[int, int]:
    """Case B = {B1 (in progress)}, case A = {A1, A2 (resolved)}, A2 linked by its reference."""
    ingest(ctx, record("B1", st="DOING"), record("A1", st="DONE"), record("A2", st="DONE", ref="A1"))
    a, b = _case_of(ctx, "A1"), _case_of(ctx, "B1")
    assert a != b and _case_of(ctx, "A2") == a
    return a, b


def _propose(ctx: HubContext, external_id: str, candidate_external_id: str, probability: float = 0.9) -> int:
    """A ``review`` decision as the dedup engine stores it: the ticket got its own case, the
    candidate is the case of ``candidate_external_id``."""
    with ctx.db.session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.external_id == external_id))
        member = s.scalar(select(Ticket).where(Ticket.external_id == candidate_external_id))
        assert ticket is not None and member is not None and ticket.case_id is not None
        case = s.get(Case, ticket.case_id)
        assert case is not None
        contributions = [{"feature": "distance", "level": "lt50", "weight": 2.1},
                         {"feature": "text", "level": "low", "weight": -0.8}]
        best = {"case_id": member.case_id, "member_ticket_id": member.id, "score": 1.3,
                "probability": probability, "contributions": contributions}
        decision = MatchDecision(case_id=0, reason="match probability between review and auto", score=probability,
                                 matcher="dedup", action="review", candidate_case_id=member.case_id,
                                 detail={"best": best, "candidates": [best], "model_version": "test",
                                         "thresholds": {"auto": 0.91, "review": 0.88}})
        if ctx.dedup is not None:
            row = s.get(MatchRecord, ctx.dedup.record(s, ticket, case, decision))
            assert row is not None
        else:  # the dedup plugin blocked (GRIDHUB_BLOCKED_PLUGINS): store what it would have
            row = MatchRecord(ticket_id=ticket.id, case_id=case.id, candidate_case_id=member.case_id, action="review",
                              matcher="dedup", score=1.3, probability=probability, member_ticket_id=member.id,
                              contributions=contributions, candidates=[best], thresholds=decision.detail["thresholds"],
                              reason=decision.reason, review_status=ReviewStatus.PENDING)
            s.add(row)
        s.flush()
        assert row.review_status == ReviewStatus.PENDING
        return row.id


def _review(ctx: HubContext, review_id: int) -> MatchRecord:
    with ctx.db.read_session() as s:
        row = s.get(MatchRecord, review_id)
        assert row is not None
        return row


# --- merge -------------------------------------------------------------------------------------


def test_merge_moves_every_ticket_and_undo_restores_exactly(fake_ctx: HubContext) -> None:
    a, b = _two_cases(fake_ctx)
    before = _state(fake_ctx)
    assert before[0][a][0] == "RESOLVED" and before[0][a][2] is not None and before[0][b][0] == "IN_PROGRESS"

    op = dedup_ops.merge_cases(fake_ctx, a, b, "张三", "同一摊位")
    cases, tickets = _state(fake_ctx)
    assert tickets == {"A1": b, "A2": b, "B1": b}
    assert cases[a][:2] == ("CANCELLED", b)
    assert cases[b][0] == "RESOLVED"  # derived from its tickets: A2 is the newest report now
    assert op["kind"] == "merge" and op["case_id"] == a and op["actor"] == "张三" and op["reason"] == "同一摊位"
    assert op["detail"]["moves"] == [{"ticket_id": t, "from_case": a, "to_case": b}
                                     for t in sorted(_ticket_ids(fake_ctx, "A1", "A2"))]
    assert op["detail"]["statuses"] == {str(a): "RESOLVED", str(b): "IN_PROGRESS"}
    merge_lines = [e for e in _events(fake_ctx, b) if e.kind == "case_merge"]
    assert len(merge_lines) == 1 and "并入本案" in merge_lines[0].summary and merge_lines[0].actor == "张三"
    assert merge_lines[0].detail["operation_id"] == op["id"]
    moved = [e for e in _events(fake_ctx, a) if e.kind in ("ticket_moved", "case_merged", "case_merge")]
    assert {e.actor for e in moved} == {"张三"} and [e.kind for e in moved][-2:] == ["case_merged", "case_merge"]

    undo = dedup_ops.undo_operation(fake_ctx, op["id"], "李四", "合并错了")
    assert _state(fake_ctx) == before
    assert undo["kind"] == "undo" and undo["undo_of"] == op["id"] and undo["actor"] == "李四"
    assert {m["to_case"] for m in undo["detail"]["moves"]} == {a}
    with fake_ctx.db.read_session() as s:
        original = s.get(CaseOperation, op["id"])
        assert original is not None and original.undone_by == "李四" and original.undone_at is not None
    for case_id in (a, b):
        last = _events(fake_ctx, case_id)[-1]
        assert last.kind == "operation_undone" and last.actor == "李四" and f"#{op['id']}" in last.summary
    assert [o["id"] for o in dedup_ops.case_operations(fake_ctx, a)] == [undo["id"], op["id"]]
    assert [o["id"] for o in dedup_ops.case_operations(fake_ctx, b)] == [undo["id"], op["id"]]


def test_undo_gives_a_reopened_case_back_its_closing_time(fake_ctx: HubContext) -> None:
    """A resolved case that a newer, open report was merged into is open again; undo must not
    close it "now" but at the time it was closed."""
    ingest(fake_ctx, record("R1", st="DONE"), record("R2", st="DONE", ref="R1"),
           record("L1", st="DOING", at="2026-11-23 11:00:00"))
    resolved, later = _case_of(fake_ctx, "R1"), _case_of(fake_ctx, "L1")
    before = _state(fake_ctx)
    assert before[0][resolved][0] == "RESOLVED" and before[0][resolved][2] is not None
    op = dedup_ops.merge_cases(fake_ctx, later, resolved, "u", "r")
    assert _state(fake_ctx)[0][resolved][:3] == ("IN_PROGRESS", None, None)
    dedup_ops.undo_operation(fake_ctx, op["id"], "u")
    assert _state(fake_ctx) == before


def _ticket_ids(ctx: HubContext, *external_ids: str) -> list[int]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(Ticket.id).where(Ticket.external_id.in_(external_ids))))


def test_merge_refusals(fake_ctx: HubContext) -> None:
    a, b = _two_cases(fake_ctx)
    ingest(fake_ctx, record("C1"), record("X1", grid="320500000000"))
    c, x = _case_of(fake_ctx, "C1"), _case_of(fake_ctx, "X1")
    assert "itself" in _refused(409, dedup_ops.merge_cases, fake_ctx, a, a, "u", "r")
    _refused(404, dedup_ops.merge_cases, fake_ctx, a, 999_999, "u", "r")
    _refused(404, dedup_ops.merge_cases, fake_ctx, 999_999, a, "u", "r")
    _refused(404, dedup_ops.merge_cases, fake_ctx, a, x, "u", "r", scope="310104")  # outside the jurisdiction
    _refused(404, dedup_ops.merge_cases, fake_ctx, x, a, "u", "r", scope="310104")
    dedup_ops.merge_cases(fake_ctx, c, b, "u", "r", scope="310104")
    assert "merged into" in _refused(409, dedup_ops.merge_cases, fake_ctx, a, c, "u", "r")  # into a merged case
    assert "merged into" in _refused(409, dedup_ops.merge_cases, fake_ctx, c, a, "u", "r")  # a merged source
    with fake_ctx.db.session() as s:  # a case its department cancelled (not merged)
        dead = s.get(Case, x)
        assert dead is not None
        dead.status = "CANCELLED"
    assert "cancelled" in _refused(409, dedup_ops.merge_cases, fake_ctx, x, a, "u", "r")
    assert "cancelled" in _refused(409, dedup_ops.merge_cases, fake_ctx, a, x, "u", "r")
    with fake_ctx.db.read_session() as s:  # nothing refused left a trace
        assert len(list(s.scalars(select(CaseOperation)))) == 1


# --- split, link elsewhere ---------------------------------------------------------------------


def test_split_into_a_new_case_and_undo(fake_ctx: HubContext) -> None:
    a, _b = _two_cases(fake_ctx)
    before = _state(fake_ctx)
    op = dedup_ops.split_ticket(fake_ctx, "fake", "A2", "张三", "不是同一处")
    new = op["detail"]["created_case"]
    cases, tickets = _state(fake_ctx)
    assert op["kind"] == "split" and op["case_id"] == a
    assert tickets["A2"] == new and tickets["A1"] == a and new not in before[0]
    assert cases[new][:2] == ("RESOLVED", None) and cases[a][0] == "RESOLVED"
    assert any(e.kind == "ticket_split" and e.actor == "张三" for e in _events(fake_ctx, a))
    assert [e.kind for e in _events(fake_ctx, new)][:2] == ["case_opened", "ticket_split"]

    dedup_ops.undo_operation(fake_ctx, op["id"], "李四")
    cases, tickets = _state(fake_ctx)
    assert tickets == before[1]
    assert {k: v for k, v in cases.items() if k != new} == before[0]
    assert cases[new][:2] == ("CANCELLED", a)  # the case the split made is merged back


def test_split_refusals(fake_ctx: HubContext) -> None:
    a, b = _two_cases(fake_ctx)
    assert "nothing to split" in _refused(409, dedup_ops.split_ticket, fake_ctx, "fake", "B1", "u", "r")
    _refused(404, dedup_ops.split_ticket, fake_ctx, "fake", "NOPE", "u", "r")
    _refused(404, dedup_ops.split_ticket, fake_ctx, "other", "A1", "u", "r")
    _refused(404, dedup_ops.split_ticket, fake_ctx, "fake", "A1", "u", "r", target_case_id=999_999)
    _refused(404, dedup_ops.split_ticket, fake_ctx, "fake", "A1", "u", "r", scope="320500")
    assert "already belongs" in _refused(409, dedup_ops.split_ticket, fake_ctx, "fake", "A1", "u", "r",
                                         target_case_id=a)
    dedup_ops.merge_cases(fake_ctx, b, a, "u", "r")
    assert "merged into" in _refused(409, dedup_ops.split_ticket, fake_ctx, "fake", "A1", "u", "r",
                                     target_case_id=b)


def test_link_elsewhere_of_the_only_ticket_merges_its_case_and_undo_restores(fake_ctx: HubContext) -> None:
    a, b = _two_cases(fake_ctx)
    before = _state(fake_ctx)
    op = dedup_ops.split_ticket(fake_ctx, "fake", "B1", "张三", "其实是同一处", target_case_id=a)
    cases, tickets = _state(fake_ctx)
    assert op["kind"] == "link" and tickets["B1"] == a and cases[b][:2] == ("CANCELLED", a)
    assert any(e.kind == "ticket_relinked" and "改关联至本案" in e.summary for e in _events(fake_ctx, a))
    dedup_ops.undo_operation(fake_ctx, op["id"], "李四")
    assert _state(fake_ctx) == before


# --- undo refusals -----------------------------------------------------------------------------


def test_undo_is_refused_once_done_for_an_undo_and_after_a_later_move(fake_ctx: HubContext) -> None:
    a, b = _two_cases(fake_ctx)
    _refused(404, dedup_ops.undo_operation, fake_ctx, 999_999, "u")
    merge = dedup_ops.merge_cases(fake_ctx, a, b, "u", "r")
    split = dedup_ops.split_ticket(fake_ctx, "fake", "A1", "u", "r")  # A1 leaves b since the merge
    state = _state(fake_ctx)
    message = _refused(409, dedup_ops.undo_operation, fake_ctx, merge["id"], "u")
    assert "A1 has moved since" in message
    assert _state(fake_ctx) == state  # refused: nothing changed
    _refused(404, dedup_ops.undo_operation, fake_ctx, split["id"], "u", scope="320500")
    undo = dedup_ops.undo_operation(fake_ctx, split["id"], "u")
    assert "already undone" in _refused(409, dedup_ops.undo_operation, fake_ctx, split["id"], "u")
    assert "is an undo" in _refused(409, dedup_ops.undo_operation, fake_ctx, undo["id"], "u")
    dedup_ops.undo_operation(fake_ctx, merge["id"], "u")  # A1 is back where the merge put it
    assert _state(fake_ctx)[1] == {"A1": a, "A2": a, "B1": b}


# --- review queue ------------------------------------------------------------------------------


def test_accept_moves_the_ticket_merges_its_provisional_case_and_undo_brings_it_back(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"))
    home, provisional = _case_of(fake_ctx, "M1"), _case_of(fake_ctx, "N1")
    review_id = _propose(fake_ctx, "N1", "M1")
    before = _state(fake_ctx)

    page = dedup_ops.list_reviews(fake_ctx)
    assert page["total"] == 1
    (item,) = page["items"]
    assert item["id"] == review_id and item["probability"] == pytest.approx(0.9)
    assert (item["ticket"]["external_id"], item["case"]["id"], item["candidate_case"]["id"]) == ("N1", provisional,
                                                                                                  home)
    assert item["candidate_case"]["tickets"][0]["external_id"] == "M1" and not item["ticket_moved"]
    assert [c["feature"] for c in item["contributions"]] == ["distance", "text"]
    for side in (item["ticket"], item["candidate_case"]["tickets"][0]):
        assert {"system", "external_id", "title", "category", "address", "reported_at"} <= set(side)

    result = dedup_ops.accept_review(fake_ctx, review_id, "张三", "同一摊位")
    cases, tickets = _state(fake_ctx)
    assert tickets["N1"] == home and cases[provisional][:2] == ("CANCELLED", home)
    assert result["review"]["review_status"] == "accepted" and result["review"]["reviewed_by"] == "张三"
    assert result["operation"]["kind"] == "review_accept" and result["operation"]["detail"]["review_id"] == review_id
    assert dedup_ops.list_reviews(fake_ctx)["total"] == 0
    assert dedup_ops.list_reviews(fake_ctx, status="accepted")["items"][0]["id"] == review_id
    assert "already accepted" in _refused(409, dedup_ops.reject_review, fake_ctx, review_id, "李四")
    assert any(e.kind == "review_accepted" and e.actor == "张三" for e in _events(fake_ctx, home))

    dedup_ops.undo_operation(fake_ctx, result["operation"]["id"], "李四")
    assert _state(fake_ctx) == before
    row = _review(fake_ctx, review_id)
    assert (row.review_status, row.reviewed_by, row.reviewed_at) == ("pending", "", None)


def test_reject_keeps_the_ticket_apart_and_the_record(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"))
    home, provisional = _case_of(fake_ctx, "M1"), _case_of(fake_ctx, "N1")
    review_id = _propose(fake_ctx, "N1", "M1")
    before = _state(fake_ctx)
    result = dedup_ops.reject_review(fake_ctx, review_id, "张三", "两处不同摊位")
    assert result["operation"] is None and _state(fake_ctx) == before
    row = _review(fake_ctx, review_id)
    assert (row.review_status, row.reviewed_by, row.review_note) == ("rejected", "张三", "两处不同摊位")
    assert row.reviewed_at is not None and row.candidate_case_id == home
    assert any(e.kind == "review_rejected" and e.actor == "张三" for e in _events(fake_ctx, provisional))
    assert any(e.kind == "review_rejected" for e in _events(fake_ctx, home))
    assert "already rejected" in _refused(409, dedup_ops.accept_review, fake_ctx, review_id, "李四")
    _refused(404, dedup_ops.accept_review, fake_ctx, 999_999, "u")


def test_link_elsewhere_moves_the_ticket_to_a_third_case_and_undo(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"), record("O1"))
    home, provisional, other = (_case_of(fake_ctx, x) for x in ("M1", "N1", "O1"))
    review_id = _propose(fake_ctx, "N1", "M1")
    before = _state(fake_ctx)
    assert "already belongs" in _refused(409, dedup_ops.link_review_elsewhere, fake_ctx, review_id, provisional, "u")
    _refused(404, dedup_ops.link_review_elsewhere, fake_ctx, review_id, 999_999, "u")
    result = dedup_ops.link_review_elsewhere(fake_ctx, review_id, other, "张三", "是 O1 那件")
    _cases, tickets = _state(fake_ctx)
    assert tickets == {"M1": home, "N1": other, "O1": other}
    assert result["review"]["review_status"] == "linked_elsewhere" and result["operation"]["kind"] == "review_link"
    assert any(e.kind == "review_rejected" for e in _events(fake_ctx, home))  # the proposal was wrong
    dedup_ops.undo_operation(fake_ctx, result["operation"]["id"], "李四")
    assert _state(fake_ctx) == before and _review(fake_ctx, review_id).review_status == "pending"


def test_a_ticket_moved_meanwhile_supersedes_its_review(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"), record("O1"))
    review_id = _propose(fake_ctx, "N1", "M1")
    dedup_ops.merge_cases(fake_ctx, _case_of(fake_ctx, "N1"), _case_of(fake_ctx, "O1"), "u", "r")
    assert dedup_ops.list_reviews(fake_ctx)["items"][0]["ticket_moved"]
    assert "superseded" in _refused(409, dedup_ops.accept_review, fake_ctx, review_id, "张三")
    row = _review(fake_ctx, review_id)  # the refusal is remembered: the item leaves the queue
    assert row.review_status == "superseded" and row.reviewed_by == "张三"
    assert dedup_ops.list_reviews(fake_ctx)["total"] == 0


def test_accept_follows_a_candidate_merged_away_to_the_case_that_absorbed_it(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"), record("O1"))
    review_id = _propose(fake_ctx, "N1", "M1")
    absorber = _case_of(fake_ctx, "O1")
    dedup_ops.merge_cases(fake_ctx, _case_of(fake_ctx, "M1"), absorber, "u", "r")
    result = dedup_ops.accept_review(fake_ctx, review_id, "张三")
    assert _state(fake_ctx)[1]["N1"] == absorber and result["operation"]["detail"]["into_case"] == absorber


def test_review_queue_respects_jurisdiction_and_paging(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"), record("P1"), record("X1", grid="320500000000"),
           record("X2", grid="320500000000"))
    first, second = _propose(fake_ctx, "N1", "M1"), _propose(fake_ctx, "P1", "M1")
    third = _propose(fake_ctx, "X2", "X1")
    assert [i["id"] for i in dedup_ops.list_reviews(fake_ctx)["items"]] == [first, second, third]
    page = dedup_ops.list_reviews(fake_ctx, limit=1, offset=1)
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [second]
    assert [i["id"] for i in dedup_ops.list_reviews(fake_ctx, scope="310104")["items"]] == [first, second]
    assert [i["id"] for i in dedup_ops.list_reviews(fake_ctx, scope="3205")["items"]] == [third]
    assert dedup_ops.get_review(fake_ctx, third, scope="3205")["id"] == third
    _refused(404, dedup_ops.get_review, fake_ctx, third, scope="310104")
    _refused(404, dedup_ops.accept_review, fake_ctx, third, "u", scope="310104")
    assert _review(fake_ctx, third).review_status == "pending"
    _refused(422, dedup_ops.list_reviews, fake_ctx, status="")


# --- explanations ------------------------------------------------------------------------------


def test_match_explanations_list_decisions_newest_first_and_operations(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("M1"), record("N1"))
    review_id = _propose(fake_ctx, "N1", "M1")
    op = dedup_ops.accept_review(fake_ctx, review_id, "张三")["operation"]
    home = _case_of(fake_ctx, "M1")
    out = dedup_ops.match_explanations(fake_ctx, home)
    assert out["case"]["id"] == home and out["case"]["ticket_count"] == 2
    by_ticket = {t["external_id"]: t["decisions"] for t in out["tickets"]}
    assert set(by_ticket) == {"M1", "N1"}
    newest = by_ticket["N1"][0]
    assert newest["id"] == review_id and newest["action"] == "review" and newest["review_status"] == "accepted"
    assert newest["contributions"][0] == {"feature": "distance", "level": "lt50", "weight": 2.1}
    stamps = [d["created_at"] for d in by_ticket["N1"]]
    assert stamps == sorted(stamps, reverse=True)
    assert [o["id"] for o in out["operations"]] == [op["id"]]
    _refused(404, dedup_ops.match_explanations, fake_ctx, home, scope="3205")
    _refused(404, dedup_ops.match_explanations, fake_ctx, 999_999)


def test_explanations_show_the_matchers_contributions_from_ingestion(fake_ctx: HubContext) -> None:
    if fake_ctx.dedup is None:
        pytest.skip("the dedup plugin is blocked")
    same = {"addr": "斜土路1175号", "lat": 31.1921, "lng": 121.4532}
    ingest(fake_ctx, record("S1", **same), record("S2", **same))
    first = _case_of(fake_ctx, "S1")
    out = dedup_ops.match_explanations(fake_ctx, _case_of(fake_ctx, "S2"))
    (decision,) = next(t["decisions"] for t in out["tickets"] if t["external_id"] == "S2")
    assert decision["matcher"] == "dedup" and decision["candidate_case_id"] == first
    assert decision["action"] in ("link", "review") and decision["probability"] > 0.5
    assert decision["contributions"] and {"feature", "level", "weight"} <= set(decision["contributions"][0])


def test_concurrent_opposite_merges_one_wins_the_other_is_refused(fake_ctx: HubContext) -> None:
    """Two operators merge A into B and B into A at the same moment: the row locks (PostgreSQL) or
    the write lock (SQLite) serialize them; the second finds its case merged away."""
    import threading

    a, b = _two_cases(fake_ctx)
    outcomes: list[int] = []
    barrier = threading.Barrier(2)

    def merge(source: int, target: int) -> None:
        barrier.wait()
        try:
            dedup_ops.merge_cases(fake_ctx, source, target, "u", "r")
            outcomes.append(200)
        except OperationError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=merge, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == [200, 409]
    cases, tickets = _state(fake_ctx)
    survivor = tickets["A1"]
    assert set(tickets.values()) == {survivor}
    loser = a if survivor == b else b
    assert cases[loser][:2] == ("CANCELLED", survivor) and cases[survivor][1] is None
