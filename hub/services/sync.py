"""The sync planner: when a case's status changes, tell every other linked record, in its own words.

Where it runs: ``hub.services.cases.refresh_case`` calls :func:`plan_status_change` right after
it records a lifecycle-legal ``status_changed`` (an operator's override of the lifecycle, which
corrects the hub's own record, is not propagated). It runs inside the ingesting transaction, so
every planned effect is written to the outbox (``hub.services.outbox.enqueue``) in the same
commit as the case change, and ingest nudges the outbound queue after that commit
(:func:`take_planned` tells it whether anything was planned; the delivery worker's sweep covers
a lost nudge).

What is planned: for every *other* ticket of the case (another system's record, or another
record of the same system), the active mapping of that ticket's system is asked for
``outbound_action(doc, new_status)``; where there is one, an ``operation="status"`` effect is
enqueued whose payload is::

    {"external_id", "status", "action": {"action", "args"}, "result_text", "reason",
     "master_external_id"}

with ``result_text`` the source ticket's canonical ``result_text`` (the handling department's
words) and a timeline line ``sync_planned`` per effect.

Idempotency key: ``status:{case}:{ticket}:{status}:{n}`` with ``n`` the number of
``status_changed`` events the case has (the one just recorded included). A replayed or
duplicated ingestion does not change the case again, so it plans nothing, and even if it did the
key would be the same; a second *real* move to the same status (after a reopen) has another
``n`` and is a new effect.

Echo suppression (never send a system its own news, no loops):

* the source ticket itself is never told;
* a ticket whose own current canonical status already equals the target, or is beyond it along
  the lifecycle's main path (``hub.lifecycle.MAIN_PATH``), is not told;
* per (case, ticket) the hub keeps what it last wrote (:class:`hub.models.SyncLink`): the same
  target status, or the same action with the same arguments, is never planned twice in a row for
  a ticket (12345's ``QS`` for ``ACCEPTED`` then again for ``IN_PROGRESS``: the order is signed
  for already);
* an inbound change that only reflects the hub's own write is recognized: when the ticket that
  moved the case now reports exactly the status the hub last wrote to it (and that write has not
  been seen reflected yet), the change is the echo of that write and nothing is planned from it;
  the link notes the echo as seen (``echo_seen_status``), so a later genuine report of the same
  status counts again. (The case itself has already taken the status by then, within the
  lifecycle's rules; the planner only guarantees the echo does not bounce further.)

Authority (minimal): the department that handles the case owns its progress. A move to
``RESOLVED``, ``VERIFIED`` or ``CLOSED`` is propagated only when it came from a ticket of the
case's handling system (``case.owner_system``) or when the case has no owner; otherwise nothing is
planned and a log line says why (the hub never reports a department's work as done before that
department says so). Cases in ``CANCELLED`` (merged away, withdrawn) or ``DUPLICATE`` and tickets
in ``DUPLICATE`` or ``CANCELLED`` are sent nothing: merges, splits and cancellations reach the
systems through their own effects, not through the status sync.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.lifecycle import MAIN_PATH
from hub.models import Case, CaseEvent, SyncLink, Ticket, utcnow
from hub.services import outbox
from hub.services.mapping_versions import active_version, parsed_in
from mappings.canonical import CanonicalStatus
from mappings.engine import outbound_action

log = logging.getLogger(__name__)

OPERATION = "status"
# a finished state claims the handling department's work is done: only that department says so
AUTHORITY_STATUSES = frozenset({CanonicalStatus.RESOLVED.value, CanonicalStatus.VERIFIED.value,
                                CanonicalStatus.CLOSED.value})
SILENT_CASE_STATUSES = frozenset({CanonicalStatus.CANCELLED.value, CanonicalStatus.DUPLICATE.value})
SILENT_TICKET_STATUSES = frozenset({CanonicalStatus.DUPLICATE.value, CanonicalStatus.CANCELLED.value})
PLANNED_KEY = "sync_planned"  # Session.info counter: effects planned in this transaction

_DOCS: dict[str, Any] = {}  # parsed mapping documents by checksum (a process-wide cache)


def plan_status_change(session: Session, case: Case, *, previous: str, source_ticket: Ticket) -> int:
    """Plan the outbound effects of ``case`` having moved from ``previous`` to ``case.status``
    because ``source_ticket`` reported it. Returns how many effects were enqueued."""
    status = case.status
    if status == previous or status in SILENT_CASE_STATUSES:
        return 0
    if _is_echo(session, case, source_ticket, status):
        return 0
    if status in AUTHORITY_STATUSES and case.owner_system and source_ticket.system_key != case.owner_system:
        log.info("case %s: %s from %s %s not propagated: only the handling system %s reports its work done",
                 case.number, status, source_ticket.system_key, source_ticket.external_id, case.owner_system)
        return 0
    targets = [t for t in session.scalars(select(Ticket).where(Ticket.case_id == case.id).order_by(Ticket.id))
               if t.id != source_ticket.id]
    if not targets:
        return 0
    links = {link.ticket_id: link for link in session.scalars(
        select(SyncLink).where(SyncLink.case_id == case.id))}
    change_no = session.scalar(select(func.count(CaseEvent.id)).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "status_changed")) or 0
    result_text = str((source_ticket.fields or {}).get("result_text") or "")
    docs: dict[str, Any] = {}
    planned = 0
    for ticket in targets:
        if ticket.status in SILENT_TICKET_STATUSES or _at_or_beyond(ticket.status, status):
            continue
        if ticket.system_key not in docs:
            docs[ticket.system_key] = _active_document(session, ticket.system_key)
        doc = docs[ticket.system_key]
        action = outbound_action(doc, status) if doc is not None else None
        if action is None:
            continue
        args = dict(action.args)
        link = links.get(ticket.id)
        if link is not None and (link.last_written_status == status
                                 or (link.last_written_action, link.last_written_args) == (action.action, args)):
            continue  # the system holds this instruction already
        key = f"status:{case.id}:{ticket.id}:{status}:{change_no}"
        payload = {"external_id": ticket.external_id, "status": status,
                   "action": {"action": action.action, "args": args},
                   "result_text": result_text, "reason": "", "master_external_id": ""}
        message = outbox.enqueue(session, case_id=case.id, system_key=ticket.system_key, operation=OPERATION,
                                 payload=payload, idempotency_key=key)
        if link is None:
            link = links[ticket.id] = SyncLink(case_id=case.id, ticket_id=ticket.id, system_key=ticket.system_key,
                                               echo_seen_status="")
            session.add(link)
        link.last_written_status, link.last_written_action, link.last_written_args = status, action.action, args
        link.last_message_id, link.last_written_at = message.id, utcnow()
        _event(session, case, ticket, status, action.action, message.id, key, previous)
        planned += 1
    if planned:
        session.info[PLANNED_KEY] = int(session.info.get(PLANNED_KEY, 0)) + planned
    return planned


def take_planned(session: Session) -> int:
    """How many effects this session's transaction planned so far; resets the count (the caller
    nudges the delivery worker once the transaction committed)."""
    return int(session.info.pop(PLANNED_KEY, 0))


def _is_echo(session: Session, case: Case, source: Ticket, status: str) -> bool:
    link = session.scalar(select(SyncLink).where(SyncLink.case_id == case.id, SyncLink.ticket_id == source.id))
    if link is None or link.last_written_status != status or link.echo_seen_status == status:
        return False
    link.echo_seen_status = status
    log.info("case %s: %s %s reports %s, which the hub wrote to it (message %s): echo, nothing planned",
             case.number, source.system_key, source.external_id, status, link.last_message_id)
    return True


def _at_or_beyond(current: str, target: str) -> bool:
    if current == target:
        return True
    return current in MAIN_PATH and target in MAIN_PATH and MAIN_PATH.index(current) > MAIN_PATH.index(target)


def _active_document(session: Session, system_key: str) -> Any:
    version = active_version(session, system_key)
    if version is None:  # a system with tickets has one (ingest installs it); nothing to say otherwise
        log.warning("no active mapping for %s: status changes are not sent to it", system_key)
        return None
    return parsed_in(_DOCS, version)


def _event(session: Session, case: Case, ticket: Ticket, status: str, action: str, message_id: int, key: str,
           previous: str) -> None:
    from hub.services.cases import add_event  # cases calls into this module: imported when used

    add_event(session, case, "sync_planned", f"通知 {ticket.system_key} {ticket.external_id}：{action}",
              system_key=ticket.system_key,
              detail={"ticket_id": ticket.id, "from": previous, "to": status, "action": action,
                      "message_id": message_id, "idempotency_key": key})


__all__ = ["AUTHORITY_STATUSES", "plan_status_change", "take_planned"]
