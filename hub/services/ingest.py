"""Process one stored inbound event: map it, apply it to its ticket, find or open its case.

Idempotent and order-tolerant: an event whose version is not newer than the ticket's is kept
as ``stale`` and changes nothing; a redelivered message for a processed event does nothing.
A payload that cannot be mapped is kept as ``quarantined`` with the reason and can be replayed
after the mapping is fixed. Nothing is dropped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.crypto import normalize_phone
from hub.facade import GRID_REPORT_TYPE, CaseView, ExternalRef, MatchDecision, TicketView
from hub.models import Case, InboundEvent, InboundStatus, MappingVersion, System, Ticket, TicketAlias, TicketReference
from hub.models.base import utcnow
from hub.models.fastwrite import insert_now, update_now
from hub.services import cases as case_service
from hub.services import outbox, routing, sync, task_list, txcache
from hub.services.mapping_versions import ensure_default_mapping, parsed
from hub.services.redact import redact_text
from hub.services.systems import SystemNotFound, get_system
from mappings import map_payload
from mappings.canonical import PII_FIELDS, CanonicalStatus
from mappings.errors import MappingError

log = logging.getLogger(__name__)

FREE_TEXT_FIELDS = ("title", "description", "result_text")
TICKET_COLUMNS = {"title": "", "description": "", "address": "", "grid_code": "", "department": "",
                  "category_code": ""}


@dataclass
class Outcome:
    status: str
    reason: str = ""
    ticket: TicketView | None = None
    case: CaseView | None = None
    created_case: bool = False
    decision: MatchDecision | None = None
    changes: dict[str, Any] = field(default_factory=dict)


class Quarantine(Exception):
    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def process_event(ctx: HubContext, inbound_id: int, *, replay: bool = False) -> Outcome:
    """Apply one inbox row. ``replay`` also re-processes a quarantined row."""
    for attempt in range(3):
        try:
            with ctx.db.session() as s:
                outcome = _process(ctx, s, inbound_id, replay)
                planned = sync.take_planned(s)
            break
        except DataError as exc:  # the store refuses a value (e.g. NUL in PostgreSQL text)
            return _quarantine_after_rollback(ctx, inbound_id, f"store refused a value: {exc.orig}")
        except (IntegrityError, OperationalError) as exc:
            # a concurrent worker created the same ticket/case first, or the store was busy:
            # the transaction rolled back, so simply try again
            log.info("inbound %s attempt %d rolled back: %s", inbound_id, attempt + 1,
                     type(exc).__name__)
            if attempt == 2:
                raise
    outbox.nudge(ctx, planned)
    _notify(ctx, outcome)
    return outcome


def process_batch(ctx: HubContext, inbound_ids: list[int]) -> list[Outcome]:
    """Apply several inbox rows in one transaction: one commit (one fsync) for a whole poll page
    instead of one per record. The page is first applied straight through; if a record fails
    with a store error (a value the store refuses, a concurrent worker's row) the whole page is
    rolled back and applied again with each record inside its own savepoint, so the failing one
    is rolled back alone and retried on its own afterwards (``process_event``). One bad record
    never holds back or loses the others, and the common page pays for no savepoints."""
    if len(inbound_ids) <= 1:
        return [process_event(ctx, i) for i in inbound_ids]
    outcomes: dict[int, Outcome] = {}
    planned = 0
    for savepoints in (False, True):
        try:
            outcomes, planned = _apply_page(ctx, inbound_ids, savepoints=savepoints)
            break
        except (DataError, IntegrityError) as exc:  # straight through only: a record failed
            log.info("batch of %d rolled back (%s); again, a savepoint per record", len(inbound_ids),
                     type(exc).__name__)
        except OperationalError as exc:  # busy store, lost connection: everything rolled back
            log.info("batch of %d rolled back (%s); applying one by one", len(inbound_ids), type(exc).__name__)
            break
    outbox.nudge(ctx, planned)
    done = []
    for inbound_id in inbound_ids:
        outcome = outcomes.get(inbound_id)
        if outcome is None:
            done.append(process_event(ctx, inbound_id))
        else:
            _notify(ctx, outcome)
            done.append(outcome)
    return done


def _apply_page(ctx: HubContext, inbound_ids: list[int], *, savepoints: bool) -> tuple[dict[int, Outcome], int]:
    """The page in one transaction; returns the outcomes and how many outbound effects it planned.
    ``savepoints``: each record in its own, and a record whose savepoint fails is left out."""
    outcomes: dict[int, Outcome] = {}
    with ctx.db.session() as s:
        # SQLite: the page's rows in one query (the writer lock is held: they cannot change),
        # held here so the session's identity map (weak references) keeps them for s.get
        page: list[Any] = []
        if ctx.db.is_sqlite:
            page.extend(s.scalars(select(InboundEvent).where(InboundEvent.id.in_(inbound_ids))))
            page.extend(_preload_tickets(s, page))
        for inbound_id in inbound_ids:
            if not savepoints:
                outcomes[inbound_id] = _process(ctx, s, inbound_id, False)
                continue
            try:
                with s.begin_nested():
                    outcomes[inbound_id] = _process(ctx, s, inbound_id, False)
            except (DataError, IntegrityError) as exc:
                txcache.forget(s)  # may hold rows the savepoint took back
                # so may loaded objects: plain UPDATEs (the event row, a ticket's case) and plain
                # INSERTs (insert_now) leave them clean, and a rollback to a savepoint forgets
                # only the dirty and the pending ones. Whatever is needed again is read again.
                s.expunge_all()
                log.info("inbound %s left the batch: %s", inbound_id, type(exc).__name__)
        planned = sync.take_planned(s)  # may count a rolled-back row's effects: a spare nudge
        del page
    return outcomes, planned


def _preload_tickets(s: Session, events: list[InboundEvent]) -> list[Ticket]:
    """The tickets a page's events name, in one query per system; the identities found absent are
    remembered for the transaction (SQLite's writer lock is held: nobody else can create them),
    so a new ticket costs no look-up. Returns the found tickets for the caller to hold."""
    named: dict[str, set[str]] = {}
    for ev in events:
        if ev.external_id:
            named.setdefault(ev.system_key, set()).add(ev.external_id)
    found: list[Ticket] = []
    absent: set[tuple[str, str]] = set()
    for system_key, external_ids in named.items():
        tickets = s.scalars(select(Ticket).where(Ticket.system_key == system_key,
                                                 Ticket.external_id.in_(external_ids))).all()
        found.extend(tickets)
        absent.update((system_key, e) for e in external_ids - {t.external_id for t in tickets})
    txcache.cached(s, "absent_tickets", None, lambda: absent)
    return found


def _stored_ticket(s: Session, system_key: str, external_id: str) -> Ticket | None:
    absent: set[tuple[str, str]] = txcache.cached(s, "absent_tickets", None, set)
    if (system_key, external_id) in absent:
        absent.discard((system_key, external_id))  # about to be created: later events look it up
        return None
    return s.scalar(_TICKET_BY_IDENTITY, {"system_key": system_key, "external_id": external_id})


_TICKET_BY_IDENTITY = select(Ticket).where(Ticket.system_key == bindparam("system_key"),
                                           Ticket.external_id == bindparam("external_id"))


def _quarantine_after_rollback(ctx: HubContext, inbound_id: int, reason: str) -> Outcome:
    with ctx.db.session() as s:
        ev = s.get(InboundEvent, inbound_id)
        if ev is not None:
            ev.status, ev.error_kind, ev.error_reason = InboundStatus.QUARANTINED, "schema", reason[:2000]
            ev.processed_at = utcnow()
    log.warning("inbound %s quarantined: %s", inbound_id, reason)
    return Outcome(InboundStatus.QUARANTINED, reason)


def _process(ctx: HubContext, s: Session, inbound_id: int, replay: bool) -> Outcome:
    if ctx.db.is_sqlite:  # BEGIN IMMEDIATE holds the writer lock; a page's rows are loaded already
        ev = s.get(InboundEvent, inbound_id)
    else:
        ev = s.scalar(select(InboundEvent).where(InboundEvent.id == inbound_id).with_for_update())
    if ev is None:
        return Outcome("missing")
    allowed = {InboundStatus.PENDING} | ({InboundStatus.QUARANTINED} if replay else set())
    if ev.status not in allowed:
        return Outcome(ev.status)
    # the event row is written once, at the end: set earlier, each of ingestion's flushes would
    # update it again
    applied: dict[str, int] = {}
    try:
        outcome = _apply(ctx, s, ev, applied)
    except Quarantine as q:
        _record_on_event(s, ev, applied, status=InboundStatus.QUARANTINED, error_kind=q.kind, error_reason=q.reason)
        log.warning("inbound %s (%s %s) quarantined: %s", ev.id, ev.system_key, ev.external_id, q.reason)
        return Outcome(InboundStatus.QUARANTINED, q.reason)
    _record_on_event(s, ev, applied, status=outcome.status, error_kind="", error_reason=outcome.reason)
    return outcome


def _record_on_event(s: Session, ev: InboundEvent, applied: dict[str, int], **values: Any) -> None:
    """Write the event row's outcome as one plain UPDATE (``update_now``): left dirty, the ORM's
    unit of work would cost several times the statement."""
    values.update(attempts=ev.attempts + 1, processed_at=utcnow(),
                  mapping_version_id=applied.get("mapping_version_id", ev.mapping_version_id),
                  ticket_id=applied.get("ticket_id", ev.ticket_id))
    update_now(s, ev, values)


def _system_and_mapping(ctx: HubContext, s: Session, system_key: str) -> tuple[System, MappingVersion]:
    """The system and its active mapping, looked up once per transaction (a poll page of a
    hundred records shares them; a mapping activated meanwhile applies from the next page)."""
    def look_up() -> tuple[System, MappingVersion]:
        try:
            system = get_system(s, system_key)
        except SystemNotFound as exc:
            raise Quarantine("permanent", str(exc)) from exc
        return system, ensure_default_mapping(ctx, s, system)
    return txcache.cached(s, "ingest_system", system_key, look_up)


def _apply(ctx: HubContext, s: Session, ev: InboundEvent, applied: dict[str, int]) -> Outcome:
    """Map ``ev`` and apply it; ``applied`` receives the mapping version and ticket ids for
    the event row (written by the caller)."""
    system, mapping = _system_and_mapping(ctx, s, ev.system_key)
    stype = ctx.registry.get(system.plugin)
    applied["mapping_version_id"] = mapping.id
    try:
        payload = stype.decode(ev.payload)
        mapped = map_payload(parsed(ctx, mapping), payload)
        fields = dict(mapped.fields)
    except MappingError as exc:
        raise Quarantine("mapping", str(exc)) from exc
    except ValueError as exc:  # undecodable JSON/XML
        raise Quarantine("schema", f"payload cannot be decoded: {exc}") from exc
    external_id = str(fields["external_id"])
    if ev.external_id and ev.external_id != external_id:
        raise Quarantine("schema", f"record names {external_id!r} but was stored as {ev.external_id!r}")
    version = _as_int(fields.get("version"), ev.version)

    refs = _references(ctx, system.key, system.plugin, external_id, fields, payload)
    _lock_identities(ctx, s, [(system.plugin, external_id)] + [(r.system_type, r.external_id) for r in refs])

    ticket = _stored_ticket(s, system.key, external_id)
    if ticket is not None and _not_newer(s, version, ticket, ev):
        applied["ticket_id"] = ticket.id
        return Outcome(InboundStatus.STALE, f"version {version}, applied {ticket.seq}")

    if mapped.status_ignored:  # a status the mapping says carries no canonical meaning
        fields["status"] = ticket.status if ticket is not None else CanonicalStatus.REPORTED.value
    created = ticket is None
    if ticket is None:
        ticket = Ticket(system_key=system.key, system_type=system.plugin, external_id=external_id)
    changes = _apply_fields(ctx, ticket, fields, version, ev, mapping)
    if created:
        insert_now(s, ticket)  # one INSERT, no unit-of-work flush
    else:
        s.flush()
    applied["ticket_id"] = ticket.id
    _store_aliases(s, ticket, fields, created)
    new_refs = _store_references(s, ticket, refs, created)

    view = case_service.ticket_view(ticket, payload)
    decision: MatchDecision | None = None
    created_case = False
    ticket_count: int | None = None  # of the case, when known without asking
    if ticket.case_id is None:
        decision = ctx.pm.hook.hub_match_case(ticket=view, references=refs,
                                              finder=case_service.StoreFinder(s))
        case = s.get(Case, decision.case_id) if decision is not None and decision.action == "link" else None
        for _ in range(8):  # merged away meanwhile (a person merged it): follow to where it went
            if case is None or case.merged_into_id is None:
                break
            case = s.get(Case, case.merged_into_id)
        if case is not None and decision is not None:
            ticket_count = case_service.link_ticket(s, case, ticket, decision)
            routing.plan_duplicates(ctx, s, case, system_key=ticket.system_key)
        else:
            case = case_service.open_case(s, ticket)
            created_case, ticket_count = True, 1
            # the task list starts the hub's clock; a case the hub originates (a grid worker's
            # report) is also routed by it: a department's own record is already being handled
            task_list.apply_task_list(ctx, s, case, actor="hub", route=ticket.system_type == GRID_REPORT_TYPE)
        if ctx.dedup is not None:
            considered = ctx.dedup.undecided(ticket.id)
            if decision is not None or considered is not None:
                ctx.dedup.record(s, ticket, case, decision or considered)
        if decision is not None and decision.action != "link":
            _note_new_case_decision(s, case, ticket, decision)
            decision = None  # notification hooks hear of links only
        if ctx.dedup is not None:
            ctx.dedup.index(s, ticket, view, new=created)
    else:
        case = s.get(Case, ticket.case_id)
        assert case is not None
        target, decision = _referenced_elsewhere(s, case, new_refs)
        if target is not None and decision is not None:
            case_service.move_ticket(s, ticket, case, target, decision)
            case = target
        if ctx.dedup is not None and ctx.dedup.needs_reindex(changes):
            ctx.dedup.index(s, ticket, view)
        status_before = case.status
        if "status" in changes and not created:
            case_service.add_event(
                s, case, "ticket_status",
                f"{system.key} {external_id}: {changes['status_code'][0] if 'status_code' in changes else ''}"
                f" → {ticket.status_code}", system_key=system.key,
                detail={"ticket_id": ticket.id, "status": changes["status"], "version": version})
        case_service.refresh_case(s, case)
        if "status_code" in changes and case.status == status_before and ticket.system_key == case.owner_system \
                and not sync.consume_echo(s, case, ticket):
            # the handling department moved on within the case's status: its progress is news
            # (unless it only shows what the hub wrote to it)
            sync.plan_status_change(s, case, previous=status_before, source_ticket=ticket, progress=True)
            routing.plan_progress_notes(ctx, s, case, ticket)
    if changes.get("handover_to", [None, None])[1]:  # police 06: handed over to a department
        routing.route_handover(ctx, s, case, ticket)
    # the rest is flushed when the savepoint or the transaction ends
    return Outcome(InboundStatus.PROCESSED, ticket=case_service.ticket_view(ticket, payload),
                   case=case_service.case_view(s, case, ticket_count=ticket_count),
                   created_case=created_case,
                   decision=decision, changes=changes)


def _note_new_case_decision(s: Session, case: Case, ticket: Ticket, decision: MatchDecision) -> None:
    """The timeline says why a new case was opened when a matcher had a candidate."""
    if decision.candidate_case_id is None:
        return
    other = s.get(Case, decision.candidate_case_id)
    number = other.number if other is not None else str(decision.candidate_case_id)
    if decision.action == "review":
        summary = f"疑似与 {number} 为同一事件，待人工复核（{decision.reason}）"
    elif decision.action == "recurrence":
        summary = f"{number} 办结后同一地点再次发生（复发）"
    else:
        return
    case_service.add_event(s, case, f"match_{decision.action}", summary, system_key=ticket.system_key,
                           detail={"ticket_id": ticket.id, "candidate_case_id": decision.candidate_case_id,
                                   "probability": decision.score})


def _not_newer(s: Session, version: int | None, ticket: Ticket, ev: InboundEvent) -> bool:
    """Older never moves a ticket back. The same version applies only when its content differs
    and it was read after the snapshot already applied (综合执法's version is its Modified second,
    which two changes can share; the platform only returns current state, so a later read is
    never older)."""
    if version is None or ticket.seq is None or version > ticket.seq:
        return False
    if version < ticket.seq or ev.payload == ticket.raw_payload:
        return True
    last_applied = s.scalar(select(func.max(InboundEvent.id)).where(
        InboundEvent.ticket_id == ticket.id, InboundEvent.status == InboundStatus.PROCESSED))
    return last_applied is not None and ev.id < last_applied


def _apply_fields(ctx: HubContext, ticket: Ticket, fields: dict[str, Any], version: int | None,
                  ev: InboundEvent, mapping: MappingVersion) -> dict[str, Any]:
    # free text often repeats the caller's number or name: the canonical copy never holds them
    # (the verbatim payload does, and is shown only masked)
    known_pii = [str(fields[k]) for k in PII_FIELDS if fields.get(k)]
    for text_field in FREE_TEXT_FIELDS:
        if isinstance(fields.get(text_field), str):
            fields[text_field] = redact_text(fields[text_field], known_pii)
    public = {k: _jsonable(v) for k, v in fields.items() if k not in PII_FIELDS}
    old = dict(ticket.fields or {})
    changes = {k: [old.get(k), v] for k, v in public.items() if old.get(k) != v and k != "version"}
    ticket.fields = public
    ticket.seq = version
    ticket.status = str(fields["status"])
    ticket.status_code = str(fields.get("status_code") or "")
    ticket.category = str(fields["category"])
    for column, default in TICKET_COLUMNS.items():
        value = fields.get(column)
        setattr(ticket, column, str(value)[:500] if value is not None else default)
    ticket.title = ticket.title[:200]
    ticket.lat = _as_float(fields.get("lat"))
    ticket.lng = _as_float(fields.get("lng"))
    if not ticket.grid_code:  # a point without a grid (12345, police, 综合执法): the grid layer's
        ticket.grid_code = ctx.grids().locate(ticket.lng, ticket.lat)
    ticket.reported_at = fields["reported_at"]
    ticket.external_updated_at = fields.get("updated_at")
    ticket.deadline = fields.get("deadline")
    ticket.raw_payload = ev.payload
    ticket.raw_content_type = ev.content_type
    ticket.mapping_version_id = mapping.id
    name, phone = fields.get("reporter_name"), fields.get("reporter_phone")
    if name or phone:
        ticket.reporter_encrypted = ctx.box.seal_json({"name": name or "", "phone": phone or ""})
        ticket.reporter_phone_hash = ctx.box.keyed_hash(normalize_phone(str(phone))) if phone else ""
    ticket.reporter_confidential = bool(fields.get("reporter_confidential") or False)
    return changes


def _references(ctx: HubContext, system_key: str, system_type: str, external_id: str,
                fields: dict[str, Any], payload: dict[str, Any]) -> list[ExternalRef]:
    probe = TicketView(id=0, system_key=system_key, system_type=system_type, external_id=external_id,
                       case_id=None, fields=fields, payload=payload)
    refs: list[ExternalRef] = []
    for answer in ctx.pm.hook.hub_ticket_references(ticket=probe):
        for ref in answer or ():
            if ref not in refs and not (ref.system_type == system_type and ref.external_id == external_id):
                refs.append(ref)
    return refs


def _store_aliases(s: Session, ticket: Ticket, fields: dict[str, Any], created: bool) -> None:
    """Fields named ``alias_<kind>`` (e.g. 案卷号 given at 立案) become permanent aliases."""
    if created and not any(name.startswith("alias_") and value for name, value in fields.items()):
        return  # nothing to add, nothing stored yet: no look-up
    known = set() if created else {(a.kind, a.value) for a in ticket.aliases}
    for name, value in fields.items():
        if name.startswith("alias_") and value and (name[6:], str(value)) not in known:
            s.add(TicketAlias(ticket_id=ticket.id, system_key=ticket.system_key, kind=name[6:],
                              value=str(value)))


def _store_references(s: Session, ticket: Ticket, refs: list[ExternalRef], created: bool) -> list[ExternalRef]:
    """Store the references not yet known; return them (new ones may move the ticket)."""
    if not refs:
        return []
    known = set() if created else {(r.ref_system_type, r.ref_external_id) for r in ticket.references}
    added = [ref for ref in refs if (ref.system_type, ref.external_id) not in known]
    for ref in added:
        s.add(TicketReference(ticket_id=ticket.id, ref_system_type=ref.system_type,
                              ref_external_id=ref.external_id, relation=ref.relation))
    return added


def _referenced_elsewhere(s: Session, case: Case, new_refs: list[ExternalRef]
                          ) -> tuple[Case | None, MatchDecision | None]:
    """The case a newly added explicit reference points to, when it is not this one."""
    finder = case_service.StoreFinder(s)
    for ref in new_refs:
        target_id = finder.case_of_external(ref.system_type, ref.external_id)
        if target_id is not None and target_id != case.id:
            decision = MatchDecision(case_id=target_id, matcher="cross_reference", score=1.0,
                                     reason=f"explicit reference to {ref.system_type} {ref.external_id}",
                                     detail={"relation": ref.relation})
            return s.get(Case, target_id), decision
    return None, None


def _lock_identities(ctx: HubContext, s: Session, identities: list[tuple[str, str]]) -> None:
    """Serialize concurrent workers touching the same records (PostgreSQL; SQLite already
    serializes writers with BEGIN IMMEDIATE). Locks are taken in a fixed order: no deadlock."""
    if ctx.db.is_sqlite:
        return
    keys = sorted({int.from_bytes(hashlib.sha256(f"{t}\0{e}".encode()).digest()[:8], "big", signed=True)
                   for t, e in identities})
    for key in keys:
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _notify(ctx: HubContext, outcome: Outcome) -> None:
    if outcome.status != InboundStatus.PROCESSED or outcome.ticket is None or outcome.case is None:
        return
    try:
        if outcome.decision is not None:
            ctx.pm.hook.hub_case_linked(case=outcome.case, ticket=outcome.ticket, decision=outcome.decision)
        ctx.pm.hook.hub_ticket_ingested(ticket=outcome.ticket, case=outcome.case,
                                        created_case=outcome.created_case, changes=outcome.changes)
    except Exception:  # notification hooks must not break ingestion (hookspec contract)
        log.exception("a notification hook failed")


def replay_quarantined(ctx: HubContext, ids: list[int] | None = None, system_key: str | None = None,
                       limit: int = 1000) -> dict[str, int]:
    """Re-process quarantined events (after a mapping fix). Returns counts by new status."""
    with ctx.db.read_session() as s:
        q = select(InboundEvent.id).where(InboundEvent.status == InboundStatus.QUARANTINED)
        if ids:
            q = q.where(InboundEvent.id.in_(ids))
        if system_key:
            q = q.where(InboundEvent.system_key == system_key)
        targets = list(s.scalars(q.order_by(InboundEvent.id).limit(limit)))
    counts: dict[str, int] = {}
    for inbound_id in targets:
        status = process_event(ctx, inbound_id, replay=True).status
        counts[status] = counts.get(status, 0) + 1
    return counts


def _as_int(value: Any, fallback: int | None) -> int | None:
    if value is None or value == "":
        return fallback
    return int(value)


def _as_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value
