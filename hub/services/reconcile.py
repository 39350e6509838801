"""Reconciliation sweep: re-read every linked record of a system and repair drift.

Why: polls and webhooks can miss changes (a webhook lost while the hub was down, a change made
during a system's outage that the change feed no longer returns, a poll cursor that jumped). The
hub's view of a record can then stay behind the system's for good. The sweep asks the system for
the current snapshot of each record the hub still cares about (tickets of cases that are not
finished, oldest reading first) with the connector's ``fetch`` and stores it in the inbox like
any other inbound record, so it goes through the normal path: mapping, stale-version check,
case refresh, status sync. A snapshot the hub already holds is recognised as such by ingest and
changes nothing (no double effect); a newer one moves the case and plans the effects it implies.
A record the system no longer knows is reported, not deleted.

It also lists **outbound drift**: links where the hub's last write (``sync_link``) is not what
the record shows after the re-read and that write was dead-lettered, so a person can replay it
(a write the system accepted but that its record does not reflect is a system's own business
rule, e.g. police feedback does not change the 警情; it is not repeated blindly).

When it runs: after a system's circuit breaker closes again (the delivery worker runs it for
systems flagged ``needs_reconcile``), on demand (``hub sync reconcile``, ``POST
/api/v1/systems/{key}/reconcile``), and on the worker's slow timer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from hub.context import HubContext
from hub.facade import error_kind
from hub.models import Case, CircuitBreaker, OutboundMessage, OutboundStatus, SyncLink, SyncLog, System, Ticket
from hub.models.base import utcnow
from hub.services.inbox import Inbox
from hub.services.systems import connector_for, system_type_of
from mappings.canonical import CanonicalStatus

log = logging.getLogger(__name__)

FINISHED = (CanonicalStatus.CLOSED.value, CanonicalStatus.CANCELLED.value)
DEFAULT_LIMIT = 500


@dataclass
class ReconcileReport:
    system_key: str
    checked: int = 0
    stored: int = 0  # snapshots stored (ingest decides whether they change anything)
    missing: list[str] = field(default_factory=list)  # records the system no longer knows
    errors: list[str] = field(default_factory=list)
    dead_writes: list[int] = field(default_factory=list)  # dead-lettered writes the record does not show
    started_at: datetime = field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        return {"system_key": self.system_key, "checked": self.checked, "stored": self.stored,
                "missing": self.missing, "errors": self.errors, "dead_writes": self.dead_writes,
                "ok": self.ok}


def reconcile_system(ctx: HubContext, system_key: str, *, limit: int = DEFAULT_LIMIT) -> ReconcileReport:
    """Re-read up to ``limit`` linked records of ``system_key`` (those of unfinished cases, least
    recently read first) and store their snapshots; report what drifted."""
    report = ReconcileReport(system_key)
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == system_key))
        if system is None:
            report.errors.append(f"no system {system_key!r}")
            return report
        if not system_type_of(ctx, system).pull:  # the hub's own grid reports: the inbox is the record
            report.errors.append(f"{system_key} is not read from a department system: nothing to re-read")
            return report
        connector = connector_for(ctx, system)
        ids = list(s.scalars(
            select(Ticket.external_id).join(Case, Case.id == Ticket.case_id)
            .where(Ticket.system_key == system_key, Case.status.not_in(FINISHED))
            .order_by(Ticket.updated_at, Ticket.id).limit(limit)))
    inbox = Inbox(ctx, system_key)
    for external_id in ids:
        report.checked += 1
        try:
            record = connector.fetch(external_id)
        except Exception as exc:  # the system's answer, classified; the sweep goes on with the rest
            report.errors.append(f"{external_id}: {error_kind(exc)}: {exc}"[:300])
            if error_kind(exc) == "transient" and len(report.errors) >= 3:
                report.errors.append("stopped: the system is failing (transient errors)")
                break
            continue
        if record is None:
            report.missing.append(external_id)
            continue
        report.stored += int(inbox.store(record))
    report.dead_writes = _dead_writes(ctx, system_key)
    _log(ctx, report)
    return report


def any_flagged(ctx: HubContext) -> bool:
    """Whether some system waits for its after-outage sweep (one cheap query)."""
    with ctx.db.read_session() as s:
        return s.scalar(select(CircuitBreaker.system_key).where(CircuitBreaker.needs_reconcile.is_(True))
                        .limit(1)) is not None


def reconcile_flagged(ctx: HubContext) -> list[ReconcileReport]:
    """Run the sweep for every system whose circuit breaker closed since its last sweep."""
    with ctx.db.session() as s:
        keys = list(s.scalars(select(CircuitBreaker.system_key).where(CircuitBreaker.needs_reconcile.is_(True))))
        for row in s.scalars(select(CircuitBreaker).where(CircuitBreaker.system_key.in_(keys))):
            row.needs_reconcile = False  # cleared first: a failing sweep is not retried in a tight loop
    reports = []
    for key in keys:
        log.info("reconciling %s after its outage", key)
        reports.append(reconcile_system(ctx, key))
    return reports


def _dead_writes(ctx: HubContext, system_key: str) -> list[int]:
    """Dead-lettered status writes whose target status the record still does not show."""
    with ctx.db.read_session() as s:
        rows = s.execute(
            select(OutboundMessage.id, SyncLink.last_written_status, Ticket.status)
            .join(SyncLink, SyncLink.last_message_id == OutboundMessage.id)
            .join(Ticket, Ticket.id == SyncLink.ticket_id)
            .where(OutboundMessage.system_key == system_key, OutboundMessage.status == OutboundStatus.DEAD))
        return sorted(mid for mid, written, current in rows if written != current)


def _log(ctx: HubContext, report: ReconcileReport) -> None:
    detail = (f"checked {report.checked}, stored {report.stored}, missing {len(report.missing)}, "
              f"dead writes {len(report.dead_writes)}; " + "; ".join(report.errors[:3]))[:1000]
    with ctx.db.session() as s:
        s.add(SyncLog(system_key=report.system_key, operation="reconcile", ok=report.ok, stored=report.stored,
                      detail=detail, error_kind="" if report.ok else "transient", started_at=report.started_at,
                      finished_at=utcnow()))
    log.info("reconcile %s: %s", report.system_key, detail)


__all__ = ["ReconcileReport", "any_flagged", "reconcile_flagged", "reconcile_system"]
