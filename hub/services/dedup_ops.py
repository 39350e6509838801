"""Human corrections of the dedup matcher: merge two cases, split a ticket out of its case (into a
new case or into another one), work the review queue, and undo any of it.

Every change of which case a ticket belongs to is one transaction that writes a ``CaseOperation``
listing each move and the states of the cases before it, plus a line on the timeline of every case
involved, attributed to the person who did it. That record is what makes an operation undoable
exactly, and only while none of its tickets has moved since (a later move would be silently
reverted otherwise).

Every refusal is an ``OperationError`` carrying the HTTP status the API answers with (404 for
what does not exist or lies outside the caller's jurisdiction, 409 for a state that forbids it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import MatchDecision
from hub.models import Case, CaseEvent, CaseOperation, MatchRecord, ReviewStatus, Ticket, utcnow
from hub.services import audit, outbox, routing, sync
from hub.services.cases import ACTING_AS, add_event, move_ticket, open_case, refresh_case
from mappings.canonical import CanonicalStatus

T = TypeVar("T")

CANCELLED = CanonicalStatus.CANCELLED.value
KIND_LABELS = {"merge": "合并", "split": "拆分", "link": "改关联", "review_accept": "复核并案",
               "review_link": "复核改关联", "undo": "撤销"}
# timeline events that name a case operation (detail.operation_id): how a case finds its operations
OPERATION_EVENT_KINDS = ("case_merge", "ticket_split", "ticket_relinked", "review_accepted", "review_linked",
                         "operation_undone")
REVIEW_STATUSES = (ReviewStatus.PENDING, ReviewStatus.ACCEPTED, ReviewStatus.REJECTED,
                   ReviewStatus.LINKED_ELSEWHERE, ReviewStatus.SUPERSEDED)
CASE_TICKETS_SHOWN = 20  # tickets listed with each case of a review item
MAX_MERGE_CHAIN = 50  # merged_into hops followed to the case that absorbed a candidate


class OperationError(Exception):
    """A refused operation, with the HTTP status that says why (404, 409, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Refusal:
    """Refuse *after* committing: a review found stale is marked superseded, and that must stay."""

    error: OperationError


# --- transactions ------------------------------------------------------------------------------


def _write(ctx: HubContext, actor: str, work: Callable[[Session], T | _Refusal]) -> T:
    """Run ``work`` in one write transaction, its timeline lines attributed to ``actor``. A
    deadlock with a concurrent ingestion (PostgreSQL aborts one of the two) is retried."""
    for attempt in range(3):
        try:
            with ctx.db.session() as s, _attributed(s, actor):
                result = work(s)
                s.flush()
                planned = sync.take_planned(s)
            break
        except OperationalError:
            if attempt == 2:
                raise
    outbox.nudge(ctx, planned)
    if isinstance(result, _Refusal):
        raise result.error
    return result


@contextmanager
def _attributed(session: Session, actor: str) -> Iterator[None]:
    """``move_ticket``/``refresh_case`` write their timeline lines as ``hub``; within an operation a
    person ordered, they are that person's doing."""

    previous = session.info.get(ACTING_AS)
    session.info[ACTING_AS] = actor
    try:
        yield
    finally:
        if previous is None:
            session.info.pop(ACTING_AS, None)
        else:
            session.info[ACTING_AS] = previous


def _locking(ctx: HubContext, query: Select[Any]) -> Select[Any]:
    """Row locks on PostgreSQL (SQLite's BEGIN IMMEDIATE already serializes writers). Tickets are
    locked before cases, the order ingestion writes them in."""
    return query if ctx.db.is_sqlite else query.with_for_update()


def _lock_tickets(ctx: HubContext, s: Session, ids: list[int]) -> dict[int, Ticket]:
    rows = s.scalars(_locking(ctx, select(Ticket).where(Ticket.id.in_(sorted(set(ids)))).order_by(Ticket.id)))
    return {t.id: t for t in rows}


def _lock_cases(ctx: HubContext, s: Session, ids: list[int]) -> dict[int, Case]:
    rows = s.scalars(_locking(ctx, select(Case).where(Case.id.in_(sorted(set(ids)))).order_by(Case.id)))
    return {c.id: c for c in rows}


def _in_scope(case: Case | None, scope: str) -> bool:
    return case is not None and (not scope or case.grid_code.startswith(scope))


def _case_or_404(cases: dict[int, Case], case_id: int, scope: str) -> Case:
    case = cases.get(case_id)
    if case is None or not _in_scope(case, scope):
        raise OperationError(404, f"case {case_id} not found")
    return case


def _refuse_dead(case: Case, role: str) -> None:
    """A case merged away or cancelled takes no part in an operation."""
    if case.merged_into_id is not None:
        raise OperationError(409, f"{role} case {case.number} was merged into case {case.merged_into_id}")
    if case.status == CANCELLED:
        raise OperationError(409, f"{role} case {case.number} is cancelled")


def _ticket_count(s: Session, case_id: int) -> int:
    return s.scalar(select(func.count(Ticket.id)).where(Ticket.case_id == case_id)) or 0


def _why(text: str) -> str:
    return f"：{text}" if text else ""


def _manual(target: Case, reason: str, actor: str, kind: str) -> MatchDecision:
    """The decision ``move_ticket`` records on the timeline for a person's move."""
    return MatchDecision(case_id=target.id, reason=reason, score=1.0, matcher="manual",
                         detail={"operation": kind, "actor": actor})


def _snapshot(cases: list[Case]) -> dict[str, Any]:
    """What undo restores: each case's status, merged_into and closed_at before the operation."""
    return {"statuses": {str(c.id): c.status for c in cases},
            "merged": {str(c.id): c.merged_into_id for c in cases},
            "closed": {str(c.id): c.closed_at.isoformat() if c.closed_at else None for c in cases}}


def _operation(s: Session, kind: str, case: Case, actor: str, reason: str, moves: list[dict[str, int]],
               before: dict[str, Any], **extra: Any) -> CaseOperation:
    op = CaseOperation(kind=kind, case_id=case.id, actor=actor[:100], reason=reason[:500], at=utcnow(),
                       detail={"moves": moves, **before, **extra})
    s.add(op)
    s.flush()
    return op


def _note(s: Session, case: Case, kind: str, summary: str, op: CaseOperation | None, actor: str,
          **detail: Any) -> None:
    payload = {"operation_id": op.id, "operation": op.kind} if op is not None else {}
    add_event(s, case, kind, summary, actor=actor[:100], detail={**payload, **detail})


# --- merge, split ------------------------------------------------------------------------------


def merge_cases(ctx: HubContext, source_id: int, target_id: int, actor: str, reason: str = "", *,
                scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """Move every ticket of ``source_id`` into ``target_id``; the emptied source becomes CANCELLED
    and points at the target (``merged_into_id``). Audited (``case.merge``) in the same
    transaction, as every operation here: ``remote_addr`` is the caller's address."""

    def work(s: Session) -> dict[str, Any]:
        ids = list(s.scalars(select(Ticket.id).where(Ticket.case_id == source_id)))
        tickets = _lock_tickets(ctx, s, ids)
        cases = _lock_cases(ctx, s, [source_id, target_id])
        source = _case_or_404(cases, source_id, scope)
        target = _case_or_404(cases, target_id, scope)
        if source.id == target.id:
            raise OperationError(409, "a case cannot be merged into itself")
        _refuse_dead(source, "source")
        _refuse_dead(target, "target")
        movers = sorted((t for t in tickets.values() if t.case_id == source.id), key=lambda t: t.id)
        if not movers:
            raise OperationError(409, f"case {source.number} has no tickets to merge")
        before = _snapshot([source, target])
        decision = _manual(target, f"人工合并 {source.number} → {target.number}{_why(reason)}", actor, "merge")
        moves = []
        for ticket in movers:
            moves.append({"ticket_id": ticket.id, "from_case": source.id, "to_case": target.id})
            move_ticket(s, ticket, source, target, decision)
        routing.plan_duplicates(ctx, s, target)  # same-system records now in one case: tell the system
        op = _operation(s, "merge", source, actor, reason, moves, before, into_case=target.id)
        _note(s, target, "case_merge", f"{source.number} 并入本案（{len(moves)} 件工单，操作人 {actor}）{_why(reason)}",
              op, actor, from_case=source.id)
        _note(s, source, "case_merge", f"本案并入 {target.number}（操作人 {actor}）{_why(reason)}", op, actor,
              into_case=target.id)
        audit.record(s, actor, "case.merge", "case", source.number, {"case": source.number},
                     {"into_case": target.number, "operation_id": op.id, "moves": moves, "reason": reason},
                     remote_addr)
        return operation_row(op)

    return _write(ctx, actor, work)


def split_ticket(ctx: HubContext, system_key: str, external_id: str, actor: str, reason: str = "",
                 target_case_id: int | None = None, *, scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """Take a ticket out of its case: into a new case, or into ``target_case_id`` (link elsewhere;
    a case left empty by that is merged into the target)."""

    def work(s: Session) -> dict[str, Any]:
        ticket_id = s.scalar(select(Ticket.id).where(Ticket.system_key == system_key,
                                                     Ticket.external_id == external_id))
        ticket = _lock_tickets(ctx, s, [ticket_id]).get(ticket_id) if ticket_id is not None else None
        if ticket is None or ticket.case_id is None:
            raise OperationError(404, f"ticket {system_key}/{external_id} not found")
        cases = _lock_cases(ctx, s, [ticket.case_id] + ([target_case_id] if target_case_id is not None else []))
        if not _in_scope(cases.get(ticket.case_id), scope):
            raise OperationError(404, f"ticket {system_key}/{external_id} not found")
        source = cases[ticket.case_id]
        label = f"{ticket.system_key} {ticket.external_id}"
        if target_case_id is None:
            if _ticket_count(s, source.id) < 2:
                raise OperationError(409, f"{label} is the only ticket of case {source.number}: nothing to split")
            before = _snapshot([source])
            new = open_case(s, ticket)
            refresh_case(s, source, operator=True)
            refresh_case(s, new, operator=True)
            move = {"ticket_id": ticket.id, "from_case": source.id, "to_case": new.id}
            op = _operation(s, "split", source, actor, reason, [move], before, created_case=new.id)
            _note(s, source, "ticket_split", f"{label} 拆出，另立新案 {new.number}（操作人 {actor}）{_why(reason)}",
                  op, actor, ticket_id=ticket.id, to_case=new.id)
            _note(s, new, "ticket_split", f"自 {source.number} 拆出 {label}（操作人 {actor}）{_why(reason)}",
                  op, actor, ticket_id=ticket.id, from_case=source.id)
            routing.plan_split_note(ctx, s, source, new, ticket)
            audit.record(s, actor, "ticket.split", "ticket", f"{system_key}/{external_id}", {"case_id": source.id},
                         {"to": f"新案件 #{new.id}", "operation_id": op.id, "reason": reason}, remote_addr)
            return operation_row(op)
        target = _case_or_404(cases, target_case_id, scope)
        if target.id == source.id:
            raise OperationError(409, f"{label} already belongs to case {target.number}")
        _refuse_dead(target, "target")
        before = _snapshot([source, target])
        move_ticket(s, ticket, source, target,
                    _manual(target, f"人工改关联 {source.number} → {target.number}{_why(reason)}", actor, "link"))
        routing.plan_split_note(ctx, s, source, target, ticket)
        routing.plan_duplicates(ctx, s, target)
        move = {"ticket_id": ticket.id, "from_case": source.id, "to_case": target.id}
        op = _operation(s, "link", source, actor, reason, [move], before, into_case=target.id)
        _note(s, source, "ticket_relinked", f"{label} 改关联至 {target.number}（操作人 {actor}）{_why(reason)}",
              op, actor, ticket_id=ticket.id, to_case=target.id)
        _note(s, target, "ticket_relinked",
              f"{label} 自 {source.number} 改关联至本案（操作人 {actor}）{_why(reason)}",
              op, actor, ticket_id=ticket.id, from_case=source.id)
        audit.record(s, actor, "ticket.split", "ticket", f"{system_key}/{external_id}", {"case_id": source.id},
                     {"to": target.number, "operation_id": op.id, "reason": reason}, remote_addr)
        return operation_row(op)

    return _write(ctx, actor, work)


# --- undo --------------------------------------------------------------------------------------


def undo_operation(ctx: HubContext, op_id: int, actor: str, reason: str = "", *,
                   scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """Revert an operation exactly: its tickets go back, the cases get their status, merged_into
    and closed_at back (a case left empty, like one a split created, is cancelled and merged into
    where its ticket went). Refused once undone, or when one of its tickets has moved since."""

    def work(s: Session) -> dict[str, Any]:
        op = s.scalar(_locking(ctx, select(CaseOperation).where(CaseOperation.id == op_id)))
        if op is None:
            raise OperationError(404, f"operation {op_id} not found")
        detail = dict(op.detail or {})
        moves: list[dict[str, int]] = list(detail.get("moves") or [])
        tickets = _lock_tickets(ctx, s, [m["ticket_id"] for m in moves])
        case_ids = {m["from_case"] for m in moves} | {m["to_case"] for m in moves} | {op.case_id}
        case_ids |= {int(k) for k in detail.get("statuses") or {}}
        cases = _lock_cases(ctx, s, sorted(case_ids))
        if not all(_in_scope(cases.get(c), scope) for c in case_ids):
            raise OperationError(404, f"operation {op_id} not found")
        if op.kind == "undo":
            raise OperationError(409, f"operation {op_id} is an undo; repeat the original operation instead")
        if op.undone_at is not None:
            raise OperationError(409, f"operation {op_id} was already undone by {op.undone_by} at "
                                      f"{op.undone_at.isoformat()}")
        for m in moves:
            ticket = tickets.get(m["ticket_id"])
            if ticket is None or ticket.case_id != m["to_case"]:
                where = cases.get(ticket.case_id) if ticket is not None and ticket.case_id else None
                name = f"{ticket.system_key} {ticket.external_id}" if ticket is not None else str(m["ticket_id"])
                raise OperationError(409, f"ticket {name} has moved since (now in case "
                                          f"{where.number if where else '—'}); operation {op_id} cannot be undone")
        affected = [cases[c] for c in sorted(case_ids)]
        before = _snapshot(affected)
        label = KIND_LABELS.get(op.kind, op.kind)
        back = []
        for m in reversed(moves):
            ticket, here, there = tickets[m["ticket_id"]], cases[m["to_case"]], cases[m["from_case"]]
            move_ticket(s, ticket, here, there, _manual(there, f"撤销{label} #{op.id}{_why(reason)}", actor, "undo"))
            back.append({"ticket_id": ticket.id, "from_case": here.id, "to_case": there.id})
        _restore(s, affected, detail)
        review_id = detail.get("review_id")
        if review_id is not None:
            _reopen_review(s, int(review_id), detail)
        op.undone_at, op.undone_by = utcnow(), actor[:100]
        undo = _operation(s, "undo", cases[op.case_id], actor, reason, back, before, undone_kind=op.kind)
        undo.undo_of = op.id
        for case in affected:
            _note(s, case, "operation_undone", f"撤销{label}操作 #{op.id}（操作人 {actor}）{_why(reason)}",
                  undo, actor, undo_of=op.id)
        audit.record(s, actor, "case_operation.undo", "case_operation", str(op.id), {"undone_at": None},
                     {"undo_id": undo.id, "kind": op.kind, "moves": back, "reason": reason}, remote_addr)
        return operation_row(undo)

    return _write(ctx, actor, work)


def _restore(s: Session, cases: list[Case], detail: dict[str, Any]) -> None:
    """Cases that hold tickets again get their recorded state back, then derive from their tickets
    what changed since (a ticket's newer status); an emptied case stays merged away."""
    statuses, merged, closed = detail.get("statuses") or {}, detail.get("merged") or {}, detail.get("closed") or {}
    for case in cases:
        if not _ticket_count(s, case.id):
            continue
        key = str(case.id)
        if key in statuses:
            case.status = statuses[key]
            case.merged_into_id = merged.get(key)
            stamp = closed.get(key)
            case.closed_at = datetime.fromisoformat(stamp) if stamp else None
        refresh_case(s, case, operator=True)


def _reopen_review(s: Session, review_id: int, detail: dict[str, Any]) -> None:
    record = s.get(MatchRecord, review_id)
    if record is not None and record.review_status == detail.get("review_status"):
        record.review_status = ReviewStatus.PENDING
        record.reviewed_by, record.reviewed_at, record.review_note = "", None, ""


# --- review queue ------------------------------------------------------------------------------


def list_reviews(ctx: HubContext, status: str = ReviewStatus.PENDING, limit: int = 50, offset: int = 0,
                 scope: str = "") -> dict[str, Any]:
    """Review items with the ticket, its current case and the candidate case side by side.
    Pending items oldest first (a queue), decided ones newest first (a history)."""
    if status not in REVIEW_STATUSES:
        raise OperationError(422, f"unknown review status {status!r}")
    q = select(MatchRecord).where(MatchRecord.review_status == status)
    if scope:
        current = select(Ticket.id).join(Case, Case.id == Ticket.case_id).where(Case.grid_code.startswith(scope))
        candidate = select(Case.id).where(Case.grid_code.startswith(scope))
        q = q.where(MatchRecord.ticket_id.in_(current),
                    MatchRecord.candidate_case_id.is_(None) | MatchRecord.candidate_case_id.in_(candidate))
    order = MatchRecord.id.asc() if status == ReviewStatus.PENDING else MatchRecord.id.desc()
    with ctx.db.read_session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        records = list(s.scalars(q.order_by(order).offset(offset).limit(limit)))
        items = _review_items(s, records)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def get_review(ctx: HubContext, review_id: int, scope: str = "") -> dict[str, Any]:
    with ctx.db.read_session() as s:
        record = s.get(MatchRecord, review_id)
        if record is None or record.review_status == ReviewStatus.NONE:
            raise OperationError(404, f"review {review_id} not found")
        (item,) = _review_items(s, [record])
        candidate = item["candidate_case"]
        if not (_in_scope_row(item["case"], scope) and (candidate is None or _in_scope_row(candidate, scope))):
            raise OperationError(404, f"review {review_id} not found")
        return item


def _in_scope_row(row: dict[str, Any] | None, scope: str) -> bool:
    return not scope or (row is not None and str(row["grid_code"]).startswith(scope))


def accept_review(ctx: HubContext, review_id: int, actor: str, note: str = "", *,
                  scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """The ticket is the candidate case's incident: move it there (its provisional case, left
    empty, is merged away). Undoable; audited as ``review.accept``."""
    return _decide(ctx, review_id, actor, note, scope, ReviewStatus.ACCEPTED, None, ("accept", remote_addr))


def link_review_elsewhere(ctx: HubContext, review_id: int, case_id: int, actor: str, note: str = "", *,
                          scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """The ticket belongs to neither: move it into ``case_id``. Undoable; audited as ``review.link``."""
    return _decide(ctx, review_id, actor, note, scope, ReviewStatus.LINKED_ELSEWHERE, case_id, ("link", remote_addr))


def reject_review(ctx: HubContext, review_id: int, actor: str, note: str = "", *,
                  scope: str = "", remote_addr: str = "") -> dict[str, Any]:
    """A different incident: the ticket stays in its own case; the record stays, for the audit and
    so the matcher does not propose the pair again. Audited as ``review.reject``."""
    return _decide(ctx, review_id, actor, note, scope, ReviewStatus.REJECTED, None, ("reject", remote_addr))


def _decide(ctx: HubContext, review_id: int, actor: str, note: str, scope: str, verdict: str,
            elsewhere_id: int | None, audited_as: tuple[str, str]) -> dict[str, Any]:
    word, remote_addr = audited_as

    def audit_line(s: Session, record: MatchRecord, op: CaseOperation | None, **extra: Any) -> None:
        audit.record(s, actor, f"review.{word}", "review", str(review_id), {"review_status": ReviewStatus.PENDING},
                     {"review_status": record.review_status, "operation_id": op.id if op else None, **extra,
                      "note": note}, remote_addr)

    def work(s: Session) -> dict[str, Any] | _Refusal:
        outcome = verdict
        record = s.scalar(_locking(ctx, select(MatchRecord).where(MatchRecord.id == review_id)))
        if record is None or record.review_status == ReviewStatus.NONE:
            raise OperationError(404, f"review {review_id} not found")
        ticket = _lock_tickets(ctx, s, [record.ticket_id]).get(record.ticket_id)
        if ticket is None:
            raise OperationError(404, f"review {review_id} not found")
        wanted = [c for c in (ticket.case_id, record.case_id, record.candidate_case_id, elsewhere_id)
                  if c is not None]
        cases = _lock_cases(ctx, s, wanted)
        current = cases.get(ticket.case_id) if ticket.case_id is not None else None
        candidate = cases.get(record.candidate_case_id) if record.candidate_case_id is not None else None
        if not (_in_scope(current, scope) and (candidate is None or _in_scope(candidate, scope))):
            raise OperationError(404, f"review {review_id} not found")
        if record.review_status != ReviewStatus.PENDING:
            raise OperationError(409, f"review {review_id} is already {record.review_status}"
                                      f"{' by ' + record.reviewed_by if record.reviewed_by else ''}")
        label = f"{ticket.system_key} {ticket.external_id}"
        assert current is not None
        if ticket.case_id != record.case_id:
            _mark(record, ReviewStatus.SUPERSEDED, actor, f"工单已移至 {current.number}，复核作废")
            return _Refusal(OperationError(409, f"{label} has left case {record.case_id} meanwhile "
                                                f"(now in {current.number}); review {review_id} is superseded"))
        if outcome == ReviewStatus.REJECTED:
            _mark(record, outcome, actor, note)
            other = candidate.number if candidate is not None else "候选案件"
            _note(s, current, "review_rejected", f"人工复核：与 {other} 不是同一事件，保持独立（操作人 {actor}）"
                  f"{_why(note)}", None, actor, review_id=record.id, ticket_id=ticket.id)
            if candidate is not None and candidate.id != current.id:
                _note(s, candidate, "review_rejected", f"人工复核：{label}（{current.number}）与本案不是同一事件"
                      f"（操作人 {actor}）{_why(note)}", None, actor, review_id=record.id, ticket_id=ticket.id)
            audit_line(s, record, None)
            return {"review": _review_items(s, [record])[0], "operation": None}
        if elsewhere_id is not None:
            target = _case_or_404(cases, elsewhere_id, scope)
            if target.id == current.id:
                raise OperationError(409, f"{label} already belongs to case {target.number}")
            _refuse_dead(target, "target")
            if candidate is not None and target.id == _absorber(ctx, s, candidate).id:
                outcome = ReviewStatus.ACCEPTED  # "elsewhere" is the proposed case: that is an accept
        else:
            if candidate is None:
                raise OperationError(409, f"review {review_id} proposes no case; link it elsewhere or reject it")
            target = _absorber(ctx, s, candidate)
            _refuse_dead(target, "proposed")
        if target.id == current.id:
            _mark(record, ReviewStatus.SUPERSEDED, actor, f"工单已在 {current.number}，复核作废")
            return _Refusal(OperationError(409, f"{label} is already in case {current.number}; "
                                                f"review {review_id} is superseded"))
        kind = "review_accept" if outcome == ReviewStatus.ACCEPTED else "review_link"
        before = _snapshot([current, target])
        words = "复核并案" if kind == "review_accept" else "复核改关联"
        move_ticket(s, ticket, current, target,
                    _manual(target, f"人工{words} #{record.id}（操作人 {actor}）{_why(note)}", actor, kind))
        move = {"ticket_id": ticket.id, "from_case": current.id, "to_case": target.id}
        op = _operation(s, kind, target, actor, note, [move], before, review_id=record.id, review_status=outcome,
                        into_case=target.id)
        _mark(record, outcome, actor, note)
        routing.plan_duplicates(ctx, s, target)
        event_kind = "review_accepted" if kind == "review_accept" else "review_linked"
        _note(s, target, event_kind, f"人工复核：{label} 与本案为同一事件，已移入（操作人 {actor}）{_why(note)}",
              op, actor, review_id=record.id, ticket_id=ticket.id, from_case=current.id)
        _note(s, current, event_kind, f"人工复核：{label} 与 {target.number} 为同一事件，已移至该案（操作人 {actor}）"
              f"{_why(note)}", op, actor, review_id=record.id, ticket_id=ticket.id, to_case=target.id)
        if kind == "review_link" and candidate is not None and candidate.id not in (current.id, target.id):
            _note(s, candidate, "review_rejected", f"人工复核：{label} 与本案不是同一事件，已关联至 {target.number}"
                  f"（操作人 {actor}）", None, actor, review_id=record.id, ticket_id=ticket.id)
        audit_line(s, record, op, **({"case_number": target.number} if elsewhere_id is not None else {}))
        return {"review": _review_items(s, [record])[0], "operation": operation_row(op)}

    return _write(ctx, actor, work)


def _absorber(ctx: HubContext, s: Session, case: Case) -> Case:
    """The live case a candidate ended up in (a candidate merged away since means its absorber)."""
    seen = {case.id}
    while case.merged_into_id is not None and len(seen) < MAX_MERGE_CHAIN:
        nxt = _lock_cases(ctx, s, [case.merged_into_id]).get(case.merged_into_id)
        if nxt is None or nxt.id in seen:
            break
        seen.add(nxt.id)
        case = nxt
    return case


def _mark(record: MatchRecord, status: str, actor: str, note: str) -> None:
    record.review_status = status
    record.reviewed_by = actor[:100]
    record.reviewed_at = utcnow()
    record.review_note = note[:500]


def _review_items(s: Session, records: list[MatchRecord]) -> list[dict[str, Any]]:
    tickets = {t.id: t for t in s.scalars(select(Ticket).where(Ticket.id.in_({r.ticket_id for r in records})))}
    case_ids = {t.case_id for t in tickets.values() if t.case_id is not None}
    case_ids |= {r.candidate_case_id for r in records if r.candidate_case_id is not None}
    cases = _case_rows(s, case_ids)
    items = []
    for r in records:
        ticket = tickets.get(r.ticket_id)
        row = match_record_row(r)
        row["ticket"] = ticket_row(ticket) if ticket is not None else None
        row["case"] = cases.get(ticket.case_id) if ticket is not None and ticket.case_id is not None else None
        row["candidate_case"] = cases.get(r.candidate_case_id) if r.candidate_case_id is not None else None
        row["ticket_moved"] = ticket is None or ticket.case_id != r.case_id
        items.append(row)
    return items


# --- explanations, operations ------------------------------------------------------------------


def match_explanations(ctx: HubContext, case_id: int, scope: str = "") -> dict[str, Any]:
    """Why each ticket of a case is there: its matching decisions (newest first) with every
    feature's contribution, and the operations people did on the case."""
    with ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        if not _in_scope(case, scope):
            raise OperationError(404, f"case {case_id} not found")
        assert case is not None
        tickets = list(s.scalars(select(Ticket).where(Ticket.case_id == case.id).order_by(Ticket.id)))
        records: dict[int, list[dict[str, Any]]] = {}
        for r in s.scalars(select(MatchRecord).where(MatchRecord.ticket_id.in_([t.id for t in tickets]))
                           .order_by(MatchRecord.created_at.desc(), MatchRecord.id.desc())):
            records.setdefault(r.ticket_id, []).append(match_record_row(r))
        rows = []
        for t in tickets:
            row = ticket_row(t)
            row["decisions"] = records.get(t.id, [])
            rows.append(row)
        return {"case": _case_rows(s, {case.id}, with_tickets=False)[case.id], "tickets": rows,
                "operations": _operations_of(s, case.id)}


def case_operations(ctx: HubContext, case_id: int, scope: str = "") -> list[dict[str, Any]]:
    """Every operation that involved the case, newest first."""
    with ctx.db.read_session() as s:
        if not _in_scope(s.get(Case, case_id), scope):
            raise OperationError(404, f"case {case_id} not found")
        return _operations_of(s, case_id)


def _operations_of(s: Session, case_id: int) -> list[dict[str, Any]]:
    details = s.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case_id,
                                                       CaseEvent.kind.in_(OPERATION_EVENT_KINDS)))
    ids = {int(d["operation_id"]) for d in details if isinstance(d, dict) and d.get("operation_id") is not None}
    q = select(CaseOperation).where((CaseOperation.case_id == case_id) | CaseOperation.id.in_(ids))
    return [operation_row(op) for op in s.scalars(q.order_by(CaseOperation.id.desc()))]


# --- rows --------------------------------------------------------------------------------------


def operation_row(op: CaseOperation) -> dict[str, Any]:
    return {"id": op.id, "kind": op.kind, "case_id": op.case_id, "actor": op.actor, "at": op.at,
            "reason": op.reason, "detail": dict(op.detail or {}), "undone_at": op.undone_at,
            "undone_by": op.undone_by, "undo_of": op.undo_of}


def match_record_row(r: MatchRecord) -> dict[str, Any]:
    return {"id": r.id, "ticket_id": r.ticket_id, "case_id": r.case_id, "candidate_case_id": r.candidate_case_id,
            "action": r.action, "matcher": r.matcher, "probability": r.probability, "score": r.score,
            "member_ticket_id": r.member_ticket_id,
            "contributions": [c for c in r.contributions or [] if isinstance(c, dict)],
            "candidates": [c for c in r.candidates or [] if isinstance(c, dict)],
            "thresholds": dict(r.thresholds or {}), "reason": r.reason, "model_version": r.model_version,
            "created_at": r.created_at, "review_status": r.review_status, "reviewed_by": r.reviewed_by,
            "reviewed_at": r.reviewed_at, "review_note": r.review_note}


def ticket_row(t: Ticket) -> dict[str, Any]:
    return {"id": t.id, "system": t.system_key, "system_type": t.system_type, "external_id": t.external_id,
            "case_id": t.case_id, "title": t.title, "category": t.category, "address": t.address,
            "reported_at": t.reported_at, "status": t.status, "grid_code": t.grid_code, "lat": t.lat, "lng": t.lng}


def _case_rows(s: Session, ids: set[int], with_tickets: bool = True) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    counts = {case_id: n for case_id, n in s.execute(select(Ticket.case_id, func.count(Ticket.id))
                                                     .where(Ticket.case_id.in_(ids)).group_by(Ticket.case_id))}
    shown: dict[int, list[dict[str, Any]]] = {}
    if with_tickets:
        rank = func.row_number().over(partition_by=Ticket.case_id, order_by=Ticket.id).label("rank")
        ranked = select(Ticket.id, rank).where(Ticket.case_id.in_(ids)).subquery()
        first = select(ranked.c.id).where(ranked.c.rank <= CASE_TICKETS_SHOWN)
        for t in s.scalars(select(Ticket).where(Ticket.id.in_(first)).order_by(Ticket.id)):
            if t.case_id is not None:
                shown.setdefault(t.case_id, []).append(ticket_row(t))
    rows = {}
    for c in s.scalars(select(Case).where(Case.id.in_(ids))):
        rows[c.id] = {"id": c.id, "number": c.number, "title": c.title, "category": c.category, "status": c.status,
                      "address": c.address, "grid_code": c.grid_code, "reported_at": c.reported_at,
                      "closed_at": c.closed_at, "merged_into_id": c.merged_into_id,
                      "recurrence_of_id": c.recurrence_of_id, "ticket_count": counts.get(c.id, 0),
                      "tickets": shown.get(c.id, [])}
    return rows
