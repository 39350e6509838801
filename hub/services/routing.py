"""Routing a case to the department system that handles it, and telling systems about duplicates.

``route_case`` hands a case to a department system: it becomes the case's handling system
(``case.owner_system``: only it reports the work done, see ``hub.services.sync``) and, unless the
case already has a record there, a ``create`` effect opens one (数字城管 ``POST /cases``, 综合执法
``TransferClue``), filed under the number the system de-duplicates on: the 12345 ``gdbh`` when
the case came from 12345 and the system files such transfers under it (the mapping's
``outbound_codes.source`` names the origin system types it knows), the hub's case number
otherwise. The new record joins the case when it is next read in, through that number (an
explicit reference). Every other linked record is told the hand-over was taken (its mapping's
action for ``ACCEPTED``: 12345 ``QS``, police ``JS``).

Who calls it: an operator (``POST /api/v1/cases/{id}/route``), and ingest when a police 警情
is handed over (``06`` with ``YJDW``: ``handover_to`` names the system type); the task list of
the routing issue will call it for new cases.

``plan_duplicates`` tells a system that one of its records duplicates another of its records in
the same case (12345 marks it ``CF`` with the master's ``gdbh``; 数字城管 cancels or supplements).

``plan_split_note`` tells a record that was marked a duplicate and then split out that it is its
own incident after all (where the system can hear it).

``plan_progress_notes`` passes the handling system's own progress on as notes (12345 ``BC``)
when it does not change the case's status (综合执法 立案 → 调查取证 → 处罚决定).

Everything is written in the caller's transaction (outbox), so a rolled-back change routes
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import HUB_SYSTEM_TYPE, OP_CREATE, OP_MERGE, OP_NOTE, HubError
from hub.models import Case, CaseEvent, System, Ticket, utcnow
from hub.services import outbox, sync, txcache
from hub.services.cases import add_event
from hub.services.mapping_versions import ensure_default_mapping, parsed
from mappings.canonical import CanonicalStatus
from mappings.engine import outbound_code
from mappings.errors import MappingError

log = logging.getLogger(__name__)

SOURCE_FIELD = "source"
SILENT = frozenset({CanonicalStatus.DUPLICATE.value, CanonicalStatus.CANCELLED.value})
FINISHED = frozenset({CanonicalStatus.RESOLVED.value, CanonicalStatus.VERIFIED.value, CanonicalStatus.CLOSED.value})


class RoutingError(HubError):
    """The case cannot be routed there; ``kind``: ``unknown`` (no such system), ``unsupported``
    (the system takes no new records), ``mapping`` (its mapping cannot express the case)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Routed:
    system_key: str
    message_id: int | None  # the create effect; None when the case already had a record there
    external_no: str
    source: str


def route_case(ctx: HubContext, session: Session, case: Case, system_key: str, *, actor: str,
               reason: str = "") -> Routed:
    """Make ``system_key`` the handling system of ``case`` and open a record there if needed."""
    system = session.scalar(select(System).where(System.key == system_key))
    if system is None:
        raise RoutingError(f"no system {system_key!r}", "unknown")
    if not _applies(ctx, session, system.key, OP_CREATE):
        raise RoutingError(f"{system_key} takes no new records from the hub", "unsupported")
    tickets = list(session.scalars(select(Ticket).where(Ticket.case_id == case.id)
                                   .order_by(Ticket.reported_at, Ticket.id)))
    previous_owner = case.owner_system
    existing = next((t for t in tickets if t.system_key == system.key and t.status not in SILENT), None)
    if existing is not None:
        case.owner_system = system.key
        _event(session, case, system, actor, reason, previous_owner, None, existing.external_id, "")
        return Routed(system.key, None, existing.external_id, "")
    doc = parsed(ctx, ensure_default_mapping(ctx, session, system))
    source, external_no = _filed_under(doc, case, tickets)
    try:
        outbound_code(doc, "category", case.category)
    except MappingError as exc:
        raise RoutingError(f"{system_key} cannot take category {case.category!r}: {exc}", "mapping") from exc
    # refusals above leave the case as it was: a caller that goes on after one (a handover inside
    # an ingestion) must not commit a changed owner with no record opened
    case.owner_system = system.key
    n = _routings(session, case) + 1
    payload: dict[str, Any] = {
        "case_number": case.number, "changed_at": _now_iso(), "source": source, "external_no": external_no,
        "category": case.category, "description": _description(case), "address": case.address,
        "location": {"lng": case.lng, "lat": case.lat} if case.lat is not None and case.lng is not None else None,
        "reported_at": case.reported_at.isoformat(),
        "reporter": "",  # a citizen's identity never leaves the hub; grid reports name their worker
        "photos": [],
    }
    message = outbox.enqueue(session, case_id=case.id, system_key=system.key, operation=OP_CREATE, payload=payload,
                             idempotency_key=f"create:{case.id}:{system.key}:{n}")
    sync.count_planned(session)
    _event(session, case, system, actor, reason, previous_owner, message.id, external_no, source)
    note = f"已转 {system.name} 处理"
    for ticket in tickets:
        if ticket.system_key != system.key and ticket.status not in SILENT:
            sync.plan_ticket_status(session, case, ticket, CanonicalStatus.ACCEPTED.value,
                                    key=f"ack:{case.id}:{ticket.id}:{system.key}:{n}", result_text=note,
                                    previous=case.status, force=True)
    return Routed(system.key, message.id, external_no, source)


def route_handover(ctx: HubContext, session: Session, case: Case, ticket: Ticket) -> Routed | None:
    """A record names the system type it was handed over to (police ``YJDW``): route the case to
    the enabled system of that type, once (nothing when the case is handled there already)."""
    target_type = str((ticket.fields or {}).get("handover_to") or "").strip()
    if not target_type:
        return None
    owner = session.scalar(select(System).where(System.key == case.owner_system)) if case.owner_system else None
    if owner is not None and owner.plugin == target_type:
        return None
    target = session.scalar(select(System).where(System.plugin == target_type, System.enabled.is_(True))
                            .order_by(System.key).limit(1))
    if target is None:
        log.warning("case %s: %s %s was handed over to %s, but no enabled system of that type is connected",
                    case.number, ticket.system_key, ticket.external_id, target_type)
        _note(session, case, "route_failed", f"移交 {target_type}：未接入该系统", ticket.system_key)
        return None
    try:
        return route_case(ctx, session, case, target.key, actor=f"{ticket.system_key}:handover",
                          reason=f"{ticket.system_key} {ticket.external_id} 移交")
    except RoutingError as exc:
        log.warning("case %s: handover to %s not routed: %s", case.number, target.key, exc)
        _note(session, case, "route_failed", f"移交 {target.key} 失败：{exc}", ticket.system_key)
        return None


def plan_duplicates(ctx: HubContext, session: Session, case: Case, system_key: str | None = None) -> int:
    """Where ``case`` holds several live records of one system (three 12345 calls about the same
    stall), tell that system the newer ones duplicate the earliest (once per record; a record
    told already is skipped). Only systems whose type applies ``merge`` effects are told;
    ``system_key``: only that system's records (one of its records was just linked, the others'
    groups did not change). Returns how many effects were planned."""
    if system_key is not None and not _applies(ctx, session, system_key, OP_MERGE):
        return 0
    query = select(Ticket).where(Ticket.case_id == case.id, Ticket.status.not_in(SILENT))
    if system_key is not None:
        query = query.where(Ticket.system_key == system_key)
    tickets = list(session.scalars(query.order_by(Ticket.reported_at, Ticket.id)))
    by_system: dict[str, list[Ticket]] = {}
    for ticket in tickets:
        by_system.setdefault(ticket.system_key, []).append(ticket)
    planned = 0
    for system_key, group in by_system.items():
        if len(group) < 2 or not _applies(ctx, session, system_key, OP_MERGE):
            continue
        master = group[0]
        for ticket in group[1:]:
            key = f"merge:{case.id}:{ticket.id}"
            if outbox.is_enqueued(session, key):
                continue
            payload = {"case_number": case.number, "changed_at": _now_iso(), "external_id": ticket.external_id,
                       "master_external_id": master.external_id, "master_case_number": case.number,
                       "text": f"与 {master.external_id} 为同一事件，已合并至网格中心案件 {case.number}"}
            message = outbox.enqueue(session, case_id=case.id, system_key=system_key, operation=OP_MERGE,
                                     payload=payload, idempotency_key=key)
            sync.count_planned(session)
            _note(session, case, "duplicate_planned", f"通知 {system_key} {ticket.external_id} 为重复件"
                  f"（主件 {master.external_id}）", system_key,
                  {"ticket_id": ticket.id, "master_ticket_id": master.id, "message_id": message.id})
            planned += 1
    return planned


def plan_progress_notes(ctx: HubContext, session: Session, case: Case, owner_ticket: Ticket) -> int:
    """The handling system's record moved to a new status of its own that does not change the
    case's (综合执法 立案 → 调查取证 → 处罚决定 are all IN_PROGRESS): the other live records whose
    systems take notes hear it as a progress note in the handler's words (12345 ``BC``). Once
    per (record, handler status). Returns how many were planned."""
    system = session.scalar(select(System).where(System.key == owner_ticket.system_key))
    stype = ctx.registry.get(system.plugin) if system is not None and system.plugin in ctx.registry else None
    if system is None or stype is None or not owner_ticket.status_code:
        return 0
    words = stype.status_labels.get(owner_ticket.status_code, owner_ticket.status_code)
    text = f"{system.name}（{owner_ticket.external_id}）办理进展：{words}"
    result = str((owner_ticket.fields or {}).get("result_text") or "").strip()
    if result:
        text += f"。{result}"
    planned = 0
    others = session.scalars(select(Ticket).where(Ticket.case_id == case.id, Ticket.id != owner_ticket.id,
                                                  Ticket.system_key != owner_ticket.system_key,
                                                  Ticket.status.not_in(SILENT | FINISHED)))
    for ticket in others:
        if not _applies(ctx, session, ticket.system_key, OP_NOTE):
            continue
        key = f"note:{case.id}:{ticket.id}:{owner_ticket.id}:{owner_ticket.status_code}"
        if outbox.is_enqueued(session, key):
            continue
        outbox.enqueue(session, case_id=case.id, system_key=ticket.system_key, operation=OP_NOTE,
                       payload={"case_number": case.number, "changed_at": _now_iso(),
                                "external_id": ticket.external_id, "text": text[:500], "photos": []},
                       idempotency_key=key)
        sync.count_planned(session)
        planned += 1
    if planned:
        _note(session, case, "progress_noted", f"{words}：通知其他 {planned} 个系统", owner_ticket.system_key,
              {"ticket_id": owner_ticket.id, "status_code": owner_ticket.status_code})
    return planned


def plan_split_note(ctx: HubContext, session: Session, source: Case, target: Case, ticket: Ticket) -> int:
    """``ticket`` left ``source`` for ``target`` (a split or a re-link). If its system was told it
    duplicates a record of ``source`` (a ``merge`` effect), it hears that this no longer holds, as
    a note where the system takes notes (数字城管 SUPPLEMENT). 12345 cannot undo a 重复件 (80 is
    final there): the timeline says so, for a person to ask the hotline. Returns 1 when planned."""
    key = f"merge:{source.id}:{ticket.id}"
    if not outbox.is_enqueued(session, key):
        return 0
    text = (f"经核实，{ticket.external_id} 与原关联事件不是同一事件，已由网格中心拆分为案件 {target.number}，"
            f"请按独立事件办理")
    if not _applies(ctx, session, ticket.system_key, OP_NOTE) or ticket.status in SILENT:
        _note(session, target, "split_not_propagated",
              f"{ticket.system_key} {ticket.external_id} 已被标为重复件，该系统无法撤销，请人工联系", ticket.system_key,
              {"ticket_id": ticket.id, "from_case": source.id})
        return 0
    outbox.enqueue(session, case_id=target.id, system_key=ticket.system_key, operation=OP_NOTE,
                   payload={"case_number": target.number, "changed_at": _now_iso(),
                            "external_id": ticket.external_id, "text": text, "photos": []},
                   idempotency_key=f"split:{source.id}:{target.id}:{ticket.id}")
    sync.count_planned(session)
    _note(session, target, "split_planned", f"通知 {ticket.system_key} {ticket.external_id}：已拆分为独立事件",
          ticket.system_key, {"ticket_id": ticket.id, "from_case": source.id})
    return 1


def _applies(ctx: HubContext, session: Session, system_key: str, operation: str) -> bool:
    def operations() -> frozenset[str]:
        plugin = session.scalar(select(System.plugin).where(System.key == system_key))
        stype = ctx.registry.get(plugin) if plugin is not None and plugin in ctx.registry else None
        return frozenset(stype.operations) if stype is not None else frozenset()
    return operation in txcache.cached(session, "system_operations", system_key, operations)


def _filed_under(doc: object, case: Case, tickets: list[Ticket]) -> tuple[str, str]:
    """(source code, external number): the first record of an origin the system files
    transfers from (12345: its gdbh), else the hub's own number under the default source."""
    table = getattr(doc, "outbound_codes", {}).get(SOURCE_FIELD, {})
    for ticket in tickets:
        if ticket.system_type in table and ticket.status not in SILENT:
            return table[ticket.system_type], ticket.external_id
    try:
        return outbound_code(doc, SOURCE_FIELD, HUB_SYSTEM_TYPE), case.number  # type: ignore[arg-type]
    except MappingError as exc:
        raise RoutingError(f"the mapping has no outbound_codes.source for records the hub files: {exc}",
                           "mapping") from exc


def _description(case: Case) -> str:
    """What the department reads: the case's text; a record without any (a police 警情 with no
    简要警情) is described by its category and place rather than refused."""
    text = (case.description or case.title or "").strip()
    return text or f"{case.category} {case.address}".strip()


def _routings(session: Session, case: Case) -> int:
    return session.scalar(select(func.count(CaseEvent.id)).where(CaseEvent.case_id == case.id,
                                                                CaseEvent.kind == "routed")) or 0


def _now_iso() -> str:
    return utcnow().isoformat()


def _event(session: Session, case: Case, system: System, actor: str, reason: str, previous_owner: str,
           message_id: int | None, external_no: str, source: str) -> None:
    summary = f"转 {system.name} 处理" + (f"（已有记录 {external_no}）" if message_id is None else
                                        f"，以 {external_no} 建档") + (f"：{reason}" if reason else "")
    add_event(session, case, "routed", summary, system_key=system.key, actor=actor,
              detail={"from_owner": previous_owner, "to_owner": system.key, "message_id": message_id,
                      "external_no": external_no, "source": source, "reason": reason})


def _note(session: Session, case: Case, kind: str, summary: str, system_key: str,
          detail: dict[str, object] | None = None) -> None:
    add_event(session, case, kind, summary, system_key=system_key, detail=dict(detail or {}))


__all__ = ["Routed", "RoutingError", "plan_duplicates", "plan_progress_notes", "plan_split_note", "route_case",
           "route_handover"]
