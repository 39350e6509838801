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

Who says what: ``result_text`` is the handling department's own words (the owner ticket's, else
the source ticket's); ``reason`` (12345 ``TD``/``YQ`` need one) is the source ticket's result text
or, failing that, a sentence naming the system and its own status words; ``master_external_id``
is, for a ticket-level ``DUPLICATE``, the earliest other ticket of the case in the same system.

Verification: a department whose work the hub's grid workers verify (its mapping has an outbound
action for ``VERIFIED``, 数字城管 ``VERIFY``) is done when verified: its ``RESOLVED`` is not
passed on (12345 is not told ``BJ`` before the grid worker confirmed on site); ``VERIFIED``
is. A verification is the hub's own act (:func:`plan_hub_change` with no source ticket), so
every linked record is told, the owner included; such a system is told ``VERIFIED`` or
``REOPENED`` only then, never because another system reported that status.

Finished for them: a system with no action of its own for ``VERIFIED``/``CLOSED`` hears the
nearest finished state it has (12345 and police hear ``BJ`` when a case is verified or closed,
e.g. at 综合执法 ``JA``). Progress: when the handling system moves on without changing the case's
status, records that have not heard the case's status yet are told (``progress=True``: police
hear ``CZ`` once the department they handed over to is working). A ``RETURNED`` case is not
passed on: it came back to the centre, which routes it again.

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
from hub.services import outbox, workdays
from hub.services.mapping_versions import active_version, parsed_in
from mappings.canonical import STATUS_LABELS_ZH, CanonicalStatus
from mappings.engine import outbound_action

log = logging.getLogger(__name__)

OPERATION = "status"
# a finished state claims the handling department's work is done: only that department says so
AUTHORITY_STATUSES = frozenset({CanonicalStatus.RESOLVED.value, CanonicalStatus.VERIFIED.value,
                                CanonicalStatus.CLOSED.value})
# A case that is RETURNED came back to the hub from a department (综合执法 YS, a police return):
# the centre routes it again; telling 12345 would hand the citizen's order back to the hotline
# (TD), which is the centre's decision, not an automatic echo of a department's.
SILENT_CASE_STATUSES = frozenset({CanonicalStatus.CANCELLED.value, CanonicalStatus.DUPLICATE.value,
                                  CanonicalStatus.RETURNED.value})
# For a system that waits for the hub's on-site verification (数字城管 VERIFY PASS/FAIL), these
# statuses mean a grid worker's check: they are sent when the hub verified (no source ticket),
# never because another system reported them (police closing its 警情 is not a check on site).
VERIFICATION_STATUSES = frozenset({CanonicalStatus.VERIFIED.value, CanonicalStatus.REOPENED.value})
# a system with no action of its own for a finished state hears the nearest one before it that it
# has (12345 and police have BJ for RESOLVED only: a case verified or closed is finished for them)
FINISHED_FALLBACK: dict[str, tuple[str, ...]] = {
    CanonicalStatus.VERIFIED.value: (CanonicalStatus.VERIFIED.value, CanonicalStatus.RESOLVED.value),
    CanonicalStatus.CLOSED.value: (CanonicalStatus.CLOSED.value, CanonicalStatus.VERIFIED.value,
                                   CanonicalStatus.RESOLVED.value),
}
SILENT_TICKET_STATUSES = frozenset({CanonicalStatus.DUPLICATE.value, CanonicalStatus.CANCELLED.value})
PLANNED_KEY = "sync_planned"  # Session.info counter: effects planned in this transaction

_DOCS: dict[str, Any] = {}  # parsed mapping documents by checksum (a process-wide cache)


def plan_status_change(session: Session, case: Case, *, previous: str, source_ticket: Ticket | None,
                       reason: str | None = None, progress: bool = False) -> int:
    """Plan the outbound effects of ``case`` having moved from ``previous`` to ``case.status``
    because ``source_ticket`` reported it (``None``: the hub's own act, e.g. a grid worker's
    verification, whose words are ``reason``). ``progress``: the case did not move, but its
    handling system reported its own progress at the case's status: records that have not heard
    that status yet are told (police hear 处置进展 ``CZ`` once the department they handed over to
    is working). Returns how many effects were enqueued."""
    status = case.status
    if (status == previous and not progress) or status in SILENT_CASE_STATUSES:
        return 0
    if source_ticket is not None and _is_echo(session, case, source_ticket, status):
        return 0
    tickets = list(session.scalars(select(Ticket).where(Ticket.case_id == case.id).order_by(Ticket.id)))
    docs = _Docs(session)
    if source_ticket is not None and status in AUTHORITY_STATUSES:
        if case.owner_system and source_ticket.system_key != case.owner_system:
            log.info("case %s: %s from %s %s not propagated: only the handling system %s reports its work done",
                     case.number, status, source_ticket.system_key, source_ticket.external_id, case.owner_system)
            return 0
        owner_doc = docs.get(source_ticket.system_key)
        if status == CanonicalStatus.RESOLVED.value and owner_doc is not None \
                and outbound_action(owner_doc, CanonicalStatus.VERIFIED.value) is not None:
            log.info("case %s: %s reports RESOLVED; passed on once a grid worker has verified it on site",
                     case.number, source_ticket.system_key)
            return 0
    targets = [t for t in tickets if source_ticket is None or t.id != source_ticket.id]
    change_no = session.scalar(select(func.count(CaseEvent.id)).where(
        CaseEvent.case_id == case.id, CaseEvent.kind == "status_changed")) or 0
    owner = next((t for t in tickets if t.system_key == case.owner_system), None)
    words = [str((t.fields or {}).get("result_text") or "") for t in (owner, source_ticket) if t is not None]
    result_text = next((w for w in words if w), "")
    reason = reason if reason is not None else _reason(source_ticket)
    planned = 0
    for ticket in targets:
        if ticket.status in SILENT_TICKET_STATUSES or _at_or_beyond(ticket.status, status):
            continue
        master = _master_of(tickets, ticket) if status == CanonicalStatus.DUPLICATE.value else ""
        doc = docs.get(ticket.system_key)
        if source_ticket is not None and status in VERIFICATION_STATUSES and _verified_by_hub(doc):
            continue  # another system's report is not the on-site check this system waits for
        told = _status_for(doc, status)
        if told is None:
            continue
        planned += plan_ticket_status(session, case, ticket, told, docs=docs,
                                      key=f"status:{case.id}:{ticket.id}:{told}:{change_no}", previous=previous,
                                      result_text=result_text, reason=reason, master=master)
    return planned


def _verified_by_hub(doc: Any) -> bool:
    """Whether the system waits for the hub's own on-site verification (its mapping has an action
    for VERIFIED: 数字城管 ``VERIFY``)."""
    return doc is not None and outbound_action(doc, CanonicalStatus.VERIFIED.value) is not None


def _status_for(doc: Any, status: str) -> str | None:
    """The status whose action a system is told for the case's ``status`` (see FINISHED_FALLBACK)."""
    if doc is None:
        return None
    for candidate in FINISHED_FALLBACK.get(status, (status,)):
        if outbound_action(doc, candidate) is not None:
            return candidate
    return None


def plan_hub_change(session: Session, case: Case, status: str, *, actor: str, reason: str = "") -> int:
    """The hub itself moves ``case`` to ``status`` (a grid worker's on-site verification): record
    the change on the timeline and tell every linked record, its owner included."""
    from hub.services.cases import add_event  # cases calls into this module: imported when used

    previous = case.status
    if previous == status:
        return 0
    add_event(session, case, "status_changed", f"{previous} → {status}", actor=actor,
              detail={"from": previous, "to": status, "by": "hub", "reason": reason})
    case.status = status
    case.updated_at = utcnow()
    workdays.pause_clock(session, case, previous)
    return plan_status_change(session, case, previous=previous, source_ticket=None, reason=reason)


def plan_ticket_status(session: Session, case: Case, ticket: Ticket, status: str, *, docs: _Docs | None = None,
                       key: str, previous: str = "", result_text: str = "", reason: str = "", master: str = "",
                       force: bool = False) -> int:
    """Plan one ``status`` effect telling ``ticket``'s system that the case is at ``status``, in
    the system's own action (nothing when its mapping has none, or the link holds it already,
    unless ``force``). Returns 1 when an effect was enqueued, else 0."""
    doc = (docs or _Docs(session)).get(ticket.system_key)
    action = outbound_action(doc, status) if doc is not None else None
    if action is None:
        return 0
    args = dict(action.args)
    link = session.scalar(select(SyncLink).where(SyncLink.case_id == case.id, SyncLink.ticket_id == ticket.id))
    if not force and link is not None and (
            link.last_written_status == status
            or (link.last_written_action, link.last_written_args) == (action.action, args)):
        return 0  # the system holds this instruction already
    payload = {"external_id": ticket.external_id, "status": status,
               "action": {"action": action.action, "args": args},
               "result_text": result_text, "reason": reason, "master_external_id": master,
               "case_number": case.number, "changed_at": utcnow().isoformat()}
    message = outbox.enqueue(session, case_id=case.id, system_key=ticket.system_key, operation=OPERATION,
                             payload=payload, idempotency_key=key)
    if link is None:
        link = SyncLink(case_id=case.id, ticket_id=ticket.id, system_key=ticket.system_key, echo_seen_status="")
        session.add(link)
    link.last_written_status, link.last_written_action, link.last_written_args = status, action.action, args
    link.last_message_id, link.last_written_at = message.id, utcnow()
    _event(session, case, ticket, status, action.action, message.id, key, previous)
    count_planned(session)
    return 1


def count_planned(session: Session, n: int = 1) -> None:
    """Note that this transaction planned ``n`` effects (the caller nudges the worker after commit)."""
    session.info[PLANNED_KEY] = int(session.info.get(PLANNED_KEY, 0)) + n


class _Docs:
    """Active mapping documents by system key, looked up once per planning pass."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.docs: dict[str, Any] = {}

    def get(self, system_key: str) -> Any:
        if system_key not in self.docs:
            self.docs[system_key] = _active_document(self.session, system_key)
        return self.docs[system_key]


def _master_of(tickets: list[Ticket], ticket: Ticket) -> str:
    """The record a duplicate is marked against: the case's earliest other live ticket of the
    same system."""
    same = [t for t in tickets if t.system_key == ticket.system_key and t.id != ticket.id
            and t.status not in SILENT_TICKET_STATUSES]
    return min(same, key=lambda t: (t.reported_at, t.id)).external_id if same else ""


def _reason(ticket: Ticket | None) -> str:
    """Why the case moved, in words a person in another system can act on."""
    if ticket is None:
        return ""
    text = str((ticket.fields or {}).get("result_text") or "").strip()
    if text:
        return text
    label = STATUS_LABELS_ZH.get(ticket.status, ticket.status)
    return f"{ticket.system_key} {ticket.external_id} 状态 {ticket.status_code or '?'}（{label}）"


def take_planned(session: Session) -> int:
    """How many effects this session's transaction planned so far; resets the count (the caller
    nudges the delivery worker once the transaction committed)."""
    return int(session.info.pop(PLANNED_KEY, 0))


def consume_echo(session: Session, case: Case, source: Ticket) -> bool:
    """Whether ``source`` now only reports what the hub last wrote to it (noted as seen, once)."""
    return _is_echo(session, case, source, source.status)


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


__all__ = ["AUTHORITY_STATUSES", "consume_echo", "count_planned", "plan_hub_change", "plan_status_change",
           "plan_ticket_status", "take_planned"]
