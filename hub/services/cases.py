"""Cases: open one for a ticket, link tickets, keep derived fields and the timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from hub.facade import HUB_SYSTEM_TYPE, CaseView, MatchDecision, TicketView
from hub.lifecycle import TICKET_ONLY, IllegalTransition, is_legal
from hub.models import Case, CaseEvent, Ticket, TicketReference, utcnow
from hub.models.fastwrite import insert_now, update_now
from hub.services import sync, workdays
from hub.services.workdays import SHANGHAI
from mappings.canonical import CanonicalStatus

# statuses a ticket can hold that say nothing about the incident itself
NON_INCIDENT_STATUSES = {CanonicalStatus.DUPLICATE.value}
CLOSED_CASE_STATUSES = {CanonicalStatus.RESOLVED.value, CanonicalStatus.CLOSED.value}
# the matcher name of a move a person ordered (dedup_ops: merge, split into a case, review, undo);
# such moves are audited, undoable operations and do not go through the lifecycle machine
OPERATOR_MATCHER = "manual"


def case_view(session: Session, case: Case, ticket_count: int | None = None) -> CaseView:
    count = ticket_count if ticket_count is not None else (
        session.scalar(select(func.count(Ticket.id)).where(Ticket.case_id == case.id)) or 0)
    return CaseView(id=case.id, number=case.number, status=case.status, category=case.category,
                    title=case.title, ticket_count=count)


def ticket_view(ticket: Ticket, payload: dict[str, Any] | None = None) -> TicketView:
    return TicketView(id=ticket.id, system_key=ticket.system_key, system_type=ticket.system_type,
                      external_id=ticket.external_id, case_id=ticket.case_id,
                      fields=dict(ticket.fields or {}), payload=payload or {})


def add_event(session: Session, case: Case, kind: str, summary: str, *, system_key: str = "",
              detail: dict[str, Any] | None = None, actor: str = "hub", at: datetime | None = None) -> None:
    """One timeline line, written at once as a plain row: nobody edits a line in the transaction
    that writes it, and the ORM's unit of work costs about ten times more per row. Lines the hub
    writes within an operation a person ordered carry that person (``acting_as``)."""
    if case.id is None:  # a case made in this transaction and not yet flushed
        session.flush()
    if actor == "hub":
        actor = session.info.get(ACTING_AS, actor)
    session.connection().execute(_INSERT_EVENT, {
        "case_id": case.id, "kind": kind, "summary": summary[:500], "system_key": system_key,
        "detail": detail or {}, "actor": actor, "at": at or utcnow()})


ACTING_AS = "gridhub_acting_as"
_INSERT_EVENT = insert(CaseEvent.__table__)  # type: ignore[arg-type]


def open_case(session: Session, ticket: Ticket) -> Case:
    """A new case made from its first ticket."""
    case = Case(number=f"tmp-{uuid.uuid4().hex[:20]}", title=ticket.title or ticket.description[:60],
                description=ticket.description, category=ticket.category, status=ticket.status,
                lat=ticket.lat, lng=ticket.lng, address=ticket.address, grid_code=ticket.grid_code,
                district=str(ticket.fields.get("district") or ""),
                street=str(ticket.fields.get("street") or ""),
                owner_system=ticket.system_key, department=ticket.department,
                deadline=ticket.deadline, reported_at=ticket.reported_at)
    if case.status in CLOSED_CASE_STATUSES:  # first heard of when it was already done
        case.closed_at = ticket.external_updated_at or ticket.reported_at
    insert_now(session, case)  # its id at once, without a unit-of-work flush
    update_now(session, case, {"number": f"GH{ticket.reported_at.astimezone(SHANGHAI):%Y%m%d}{case.id:07d}"})
    _put_in_case(session, ticket, case)
    add_event(session, case, "case_opened", f"由 {ticket.system_key} {ticket.external_id} 立案",
              system_key=ticket.system_key, detail={"ticket_id": ticket.id})
    return case


def link_ticket(session: Session, case: Case, ticket: Ticket, decision: MatchDecision) -> int:
    """Put ``ticket`` into ``case``; returns how many tickets the case holds now."""
    _put_in_case(session, ticket, case)  # written now: refresh_case's query must count it
    add_event(session, case, "ticket_linked",
              f"关联 {ticket.system_key} {ticket.external_id}：{decision.reason}",
              system_key=ticket.system_key,
              detail={"ticket_id": ticket.id, "matcher": decision.matcher, "score": decision.score,
                      "detail": dict(decision.detail)})
    return refresh_case(session, case, operator=decision.matcher == OPERATOR_MATCHER)


def _put_in_case(session: Session, ticket: Ticket, case: Case) -> None:
    """``ticket.case_id = case.id``, written at once when the ticket has nothing else pending (a
    dirty ticket costs its own flush, the most expensive step of a link)."""
    update_now(session, ticket, {"case_id": case.id})


def move_ticket(session: Session, ticket: Ticket, source: Case, target: Case, decision: MatchDecision) -> None:
    """An explicit reference that arrived later (a 12345 order marked 重复件 after we held it)
    moves the ticket to the referenced case. A case left without tickets is merged away."""
    link_ticket(session, target, ticket, decision)
    add_event(session, source, "ticket_moved",
              f"{ticket.system_key} {ticket.external_id} 移至 {target.number}：{decision.reason}",
              system_key=ticket.system_key, detail={"ticket_id": ticket.id, "to_case": target.id})
    remaining = session.scalar(select(func.count(Ticket.id)).where(Ticket.case_id == source.id)) or 0
    if remaining:
        refresh_case(session, source, operator=decision.matcher == OPERATOR_MATCHER)
        return
    add_event(session, source, "case_merged", f"并入 {target.number}",
              detail={"into_case": target.id, "from": source.status, "to": CanonicalStatus.CANCELLED.value})
    source.status = CanonicalStatus.CANCELLED.value
    source.merged_into_id = target.id
    source.updated_at = utcnow()


def refresh_case(session: Session, case: Case, *, operator: bool = False) -> int:
    """Derive the case's status and gaps from its tickets; returns how many tickets it holds.

    The candidate status is the newest live ticket's (newest change wins); the case takes it only
    where the lifecycle allows (``hub.lifecycle``), so a late, stale or wrong report never moves a
    case backwards or out of 已撤销: it is refused and noted once on the timeline (``status_refused``).
    ``operator``: the refresh follows a person's audited, undoable operation (merge, move, undo):
    membership was corrected, the derived status follows it even where the machine would refuse,
    and the timeline says so. ``DUPLICATE`` never becomes a case status either way."""
    # the columns it derives from, not whole tickets (their JSON fields cost more to load than
    # the rest together); the autoflush lets the rows count a ticket just put into the case
    tickets = session.execute(_CASE_TICKETS, {"case_id": case.id}).all()
    live = [t for t in tickets if t.status not in NON_INCIDENT_STATUSES] or tickets
    newest_row = max(live, key=lambda t: (t.external_updated_at or t.reported_at, t.id))
    candidate = newest_row.status
    taken = candidate == case.status
    if not taken:
        legal = _may_take(case.status, candidate)
        newest = session.get(Ticket, newest_row.id)
        assert newest is not None
        if legal or (operator and candidate not in TICKET_ONLY):
            detail: dict[str, Any] = {"from": case.status, "to": candidate, "ticket_id": newest.id,
                                      "system_status": newest.status_code}
            if not legal:
                detail["lifecycle"] = "operator override"
            add_event(session, case, "status_changed", f"{case.status} → {candidate}",
                      system_key=newest.system_key, detail=detail)
            previous, case.status = case.status, candidate
            taken = True
            workdays.pause_clock(session, case, previous)
            if legal:  # tell the other linked systems (an operator's override corrects our record only)
                sync.plan_status_change(session, case, previous=previous, source_ticket=newest)
        else:
            _note_refusal(session, case, newest)
    # the derived fields, written together (at once when nothing else of the case is pending)
    derived: dict[str, Any] = {"updated_at": utcnow()}
    if case.status in CLOSED_CASE_STATUSES:
        derived["closed_at"] = case.closed_at or (newest_row.external_updated_at if taken else None) or utcnow()
    else:
        derived["closed_at"] = None
    earliest = min(t.reported_at for t in tickets)
    if case.reported_at is not None and workdays.local_day(earliest) != workdays.local_day(case.reported_at):
        # the figures count a case on the day of its first report: the metrics refresh rebuilds
        # the day it leaves as well as the one it joins (hub.services.metrics)
        add_event(session, case, REPORT_DAY_MOVED,
                  f"最早报告时间由 {_local(case.reported_at):%Y-%m-%d %H:%M} 更正为 {_local(earliest):%Y-%m-%d %H:%M}",
                  detail={"from": case.reported_at.isoformat(), "to": earliest.isoformat()})
    derived["reported_at"] = earliest
    if case.lat is None:
        located = next((t for t in tickets if t.lat is not None), None)
        if located is not None:
            derived["lat"], derived["lng"] = located.lat, located.lng
    if not case.grid_code:
        derived["grid_code"] = next((t.grid_code for t in tickets if t.grid_code), "")
    if not case.address:
        derived["address"] = next((t.address for t in tickets if t.address), "")
    update_now(session, case, derived)
    return len(tickets)


REPORT_DAY_MOVED = "report_day_moved"
_CASE_TICKETS = select(Ticket.id, Ticket.status, Ticket.external_updated_at, Ticket.reported_at, Ticket.lat,
                       Ticket.lng, Ticket.grid_code, Ticket.address).where(Ticket.case_id == bindparam("case_id"))


def _local(moment: datetime) -> datetime:
    return moment.astimezone(SHANGHAI)


def _may_take(current: str, candidate: str) -> bool:
    """The lifecycle's answer; a case that holds ``DUPLICATE`` (opened from a ticket that was one
    already) leaves it for any case status, the way out of a state no case should be in."""
    if current in TICKET_ONLY:
        return candidate not in TICKET_ONLY
    return is_legal(current, candidate)


def _note_refusal(session: Session, case: Case, ticket: Ticket) -> None:
    """One ``status_refused`` line per (ticket, status) while the case's status stands: every later
    refresh (another ticket's update, a redelivery) would otherwise repeat it."""
    status = ticket.status
    since = select(func.coalesce(func.max(CaseEvent.id), 0)).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "status_changed").scalar_subquery()
    noted = session.scalars(select(CaseEvent.detail).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "status_refused", CaseEvent.id > since))
    if any(isinstance(d, dict) and d.get("ticket_id") == ticket.id and d.get("to") == status for d in noted):
        return
    who = f"{ticket.system_key} {ticket.external_id}"
    if status in TICKET_ONLY:
        summary = f"{who} 报告 {status}（工单级状态），案件状态保持 {case.status}"
    else:
        summary = f"{who} 报告 {status}，不能从 {case.status} 转入，已忽略"
    add_event(session, case, "status_refused", summary, system_key=ticket.system_key,
              detail={"from": case.status, "to": status, "ticket_id": ticket.id,
                      "system_status": ticket.status_code, "reason": str(IllegalTransition(case.status, status))})


class StoreFinder:
    """CaseFinder over the store, inside the ingesting transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        # several matchers ask the same questions about one ticket; the answers cannot change
        # while it is being matched
        self._memo: dict[tuple[str, str, str], Any] = {}

    def case_of_external(self, system_type: str, external_id: str) -> int | None:
        key = ("of", system_type, external_id)
        if key not in self._memo:
            self._memo[key] = self._case_of_external(system_type, external_id)
        return self._memo[key]  # type: ignore[no-any-return]

    def cases_referencing(self, system_type: str, external_id: str) -> list[int]:
        key = ("referencing", system_type, external_id)
        if key not in self._memo:
            self._memo[key] = self._cases_referencing(system_type, external_id)
        return list(self._memo[key])

    # The questions are about *other* tickets, all flushed already: no autoflush of the one being
    # ingested (a flush per question is most of what asking costs).
    # Plain Core on the transaction's connection: no ORM layer, no autoflush.
    def _case_of_external(self, system_type: str, external_id: str) -> int | None:
        connection = self.session.connection()
        if system_type == HUB_SYSTEM_TYPE:  # a record the hub created elsewhere names its case
            return connection.scalar(_CASE_BY_NUMBER, {"number": external_id})
        return connection.scalar(_CASE_OF_EXTERNAL,
                                 {"system_type": system_type, "external_id": external_id})

    def _cases_referencing(self, system_type: str, external_id: str) -> list[int]:
        rows = self.session.connection().scalars(_CASES_REFERENCING, {"system_type": system_type,
                                                                      "external_id": external_id}).all()
        return [r for r in rows if r is not None]


# built once (statement construction and cache-key generation cost more than SQLite's answer)
_CASE_BY_NUMBER = select(Case.id).where(Case.number == bindparam("number"))
_CASE_OF_EXTERNAL = select(Ticket.case_id).where(
    Ticket.system_type == bindparam("system_type"), Ticket.external_id == bindparam("external_id"),
    Ticket.case_id.is_not(None)).limit(1)
_CASES_REFERENCING = (select(Ticket.case_id).join(TicketReference, TicketReference.ticket_id == Ticket.id)
                      .where(TicketReference.ref_system_type == bindparam("system_type"),
                             TicketReference.ref_external_id == bindparam("external_id"),
                             Ticket.case_id.is_not(None)).distinct())
