"""The metrics read live (bounded by the period and jurisdiction, on indexes): returns (退单) by
department with their reasons, the category mix of each grid worker's reports against their
grids', and the gauges of ``GET /metrics``.

A return is the ``status_changed`` timeline line whose ``detail.to`` is ``RETURNED``, written when
a department system reports its record returned (12345 已退单, 综合执法 移送). The department is
the returning ticket's unit (else its system); the reason is the line's own ``reason`` (a return the
hub made), else what the returning system wrote on the record (``x_return_reason`` where a mapping
keeps it, else its result text), else "未注明原因".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    Case,
    CaseEvent,
    GridReport,
    InboundEvent,
    InboundStatus,
    MetricsRollup,
    OutboundMessage,
    OutboundStatus,
    Ticket,
    User,
    utcnow,
)
from hub.services.escalation import FINISHED
from hub.services.metrics import day_start, last_refresh
from mappings.canonical import CanonicalStatus

RETURNED = CanonicalStatus.RETURNED.value
NO_REASON = "未注明原因"
MAX_RETURNS = 20000  # a period's return lines read at most (far above any real centre's)
MAX_WORKERS = 200
NOT_OPEN = ("CLOSED", "CANCELLED")


@dataclass
class DepartmentReturns:
    department: str
    returns: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


def returns(session: Session, first: date, last: date, scope: str = "") -> list[DepartmentReturns]:
    """Returns recorded from ``first`` to ``last`` (local dates) on cases in ``scope``, by
    department, most returns first; each with its reasons, most frequent first."""
    q = (select(CaseEvent.system_key, CaseEvent.detail)
         .join(Case, Case.id == CaseEvent.case_id)
         .where(CaseEvent.kind == "status_changed", CaseEvent.at >= day_start(first),
                CaseEvent.at < day_start(last + timedelta(days=1)),
                CaseEvent.detail["to"].as_string() == RETURNED)
         .order_by(CaseEvent.id).limit(MAX_RETURNS))
    if scope:
        q = q.where(Case.grid_code.startswith(scope))
    lines = [(system_key, detail if isinstance(detail, dict) else {}) for system_key, detail in session.execute(q)]
    ticket_ids = {int(d["ticket_id"]) for _, d in lines if isinstance(d.get("ticket_id"), int)}
    tickets: dict[int, tuple[str, str, dict[str, Any]]] = {}
    for chunk in _chunks(sorted(ticket_ids), 500):
        for tid, dept, system, fields in session.execute(
                select(Ticket.id, Ticket.department, Ticket.system_key, Ticket.fields).where(Ticket.id.in_(chunk))):
            tickets[tid] = (dept, system, fields if isinstance(fields, dict) else {})
    out: dict[str, DepartmentReturns] = {}
    for system_key, detail in lines:
        dept, system, fields = tickets.get(detail.get("ticket_id") or -1, ("", system_key, {}))
        name = dept or system or system_key or "hub"
        reason = str(detail.get("reason") or fields.get("x_return_reason") or fields.get("result_text") or "")
        row = out.setdefault(name, DepartmentReturns(name))
        row.returns += 1
        row.reasons[reason.strip()[:200] or NO_REASON] += 1
    return sorted(out.values(), key=lambda r: (-r.returns, r.department))


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


@dataclass
class WorkerMix:
    """One grid worker's reports by category against all cases filed in the grids they reported in."""

    reporter_id: int
    name: str
    reports: int
    grids: list[str]
    mine: dict[str, int]
    grid: dict[str, int]
    distance: float  # total variation distance of the two mixes: 0 = same mix, 1 = nothing in common

    def top(self, n: int = 3) -> list[tuple[str, float, float]]:
        """The worker's ``n`` most reported categories: (category, share of mine, share of the grid's)."""
        total_g = sum(self.grid.values()) or 1
        return [(cat, count / self.reports, self.grid.get(cat, 0) / total_g)
                for cat, count in sorted(self.mine.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _distance(a: dict[str, int], b: dict[str, int]) -> float:
    ta, tb = sum(a.values()), sum(b.values())
    if not ta or not tb:
        return 1.0 if ta or tb else 0.0
    return 0.5 * sum(abs(a.get(k, 0) / ta - b.get(k, 0) / tb) for k in set(a) | set(b))


def worker_mix(session: Session, first: date, last: date, scope: str = "") -> list[WorkerMix]:
    """Per grid worker who reported in the period within ``scope``, most divergent mix first (the
    ones to look at: reporting only the easy items leaves their mix far from their grid's)."""
    start, end = day_start(first), day_start(last + timedelta(days=1))
    q = (select(GridReport.reporter_id, GridReport.grid_code, GridReport.category, func.count())
         .where(GridReport.created_at >= start, GridReport.created_at < end)
         .group_by(GridReport.reporter_id, GridReport.grid_code, GridReport.category))
    if scope:
        q = q.where(GridReport.grid_code.startswith(scope))
    mine: dict[int, Counter[str]] = defaultdict(Counter)
    grids_of: dict[int, set[str]] = defaultdict(set)
    for reporter, grid, category, count in session.execute(q):
        mine[reporter][category] += int(count)
        if grid:
            grids_of[reporter].add(grid)
    keep = sorted(mine, key=lambda r: -sum(mine[r].values()))[:MAX_WORKERS]
    all_grids = sorted({g for r in keep for g in grids_of[r]})
    by_grid: dict[str, Counter[str]] = defaultdict(Counter)
    for i in range(0, len(all_grids), 500):
        for grid, category, count in session.execute(
                select(Case.grid_code, Case.category, func.count())
                .where(Case.grid_code.in_(all_grids[i:i + 500]), Case.merged_into_id.is_(None),
                       Case.reported_at >= start, Case.reported_at < end)
                .group_by(Case.grid_code, Case.category)):
            by_grid[grid][category] += int(count)
    names = {uid: display or username for uid, display, username in
             session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(keep)))}
    out = []
    for reporter in keep:
        grid_mix: Counter[str] = Counter()
        for g in grids_of[reporter]:
            grid_mix.update(by_grid[g])
        m = dict(mine[reporter])
        out.append(WorkerMix(reporter, names.get(reporter, str(reporter)), sum(m.values()),
                             sorted(grids_of[reporter]), m, dict(grid_mix), _distance(m, dict(grid_mix))))
    return sorted(out, key=lambda w: (-w.distance, -w.reports, w.reporter_id))


@dataclass
class Gauges:
    open_by_status: dict[str, int]
    overdue: int
    inbound_quarantined: int
    outbound_pending: int
    filed_total: int
    closed_total: int
    rollup_at: datetime | None


def gauges(session: Session, now: datetime | None = None) -> Gauges:
    """What Prometheus scrapes: live counts on indexed columns, and the rollup's running totals
    (as of its last refresh, which is exported too)."""
    moment = now or utcnow()
    open_by_status = {status: int(n) for status, n in session.execute(
        select(Case.status, func.count()).where(Case.merged_into_id.is_(None), Case.status.not_in(NOT_OPEN))
        .group_by(Case.status))}
    overdue = session.scalar(select(func.count()).select_from(Case).where(
        Case.merged_into_id.is_(None), Case.clock_paused_at.is_(None), Case.status.not_in(FINISHED),
        Case.due_at.is_not(None), Case.due_at < moment)) or 0
    quarantined = session.scalar(select(func.count()).select_from(InboundEvent).where(
        InboundEvent.status == InboundStatus.QUARANTINED)) or 0
    pending = session.scalar(select(func.count()).select_from(OutboundMessage).where(
        OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.FAILED)))) or 0
    filed, closed = session.execute(select(func.sum(MetricsRollup.filed), func.sum(MetricsRollup.closed)).where(
        MetricsRollup.grain == "m", MetricsRollup.dim == "department")).one()
    mark = last_refresh(session)
    return Gauges(open_by_status, int(overdue), int(quarantined), int(pending), int(filed or 0), int(closed or 0),
                  mark.finished_at if mark is not None else None)
