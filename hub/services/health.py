"""Per-system link health: is the hub hearing from a system, and is the system hearing from the hub?

What an operator needs to decide "is something wrong with 数字城管?" in one look:

* **outbound**: ``backlog`` (effects waiting: pending or failed), ``lag_s`` (age of the oldest
  one: how far behind the system is), ``dead`` (waiting for a person), ``oldest_dead_at``;
* **delivery**: attempts, failures and ``error_rate`` over the window (default one hour, from
  the ``sync_log`` rows every attempt writes), ``last_success_at`` and the last error;
* **inbound**: the last successful poll or webhook, the last inbound failure, ``quarantined``
  payloads waiting for a mapping fix, events still ``pending``;
* **circuit**: the breaker's state (closed / open / half_open), consecutive failures, until when.

``status`` sums it up: ``down`` (breaker open), ``degraded`` (dead letters, quarantine, an error
rate of 20 % or more, or nothing delivered/received for a long time while there is work),
``ok`` otherwise. Read-only; cheap enough to call every few seconds (indexed counts only).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    CircuitBreaker,
    CircuitState,
    InboundEvent,
    InboundStatus,
    OutboundMessage,
    OutboundStatus,
    SyncLog,
    System,
)
from hub.models.base import utcnow
from hub.services import circuit

WINDOW = timedelta(hours=1)
DEGRADED_ERROR_RATE = 0.2
STALE_LAG = timedelta(minutes=15)  # an effect waiting longer than this means the link is behind
OUTBOUND_OPS = ("deliver",)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def system_health(session: Session, system: System, *, now: datetime | None = None,
                  window: timedelta = WINDOW) -> dict[str, Any]:
    """The health of one system's link (see the module docstring for the fields)."""
    now = now or utcnow()
    key = system.key
    open_q = select(func.count(OutboundMessage.id), func.min(OutboundMessage.created_at)).where(
        OutboundMessage.system_key == key,
        OutboundMessage.status.in_((OutboundStatus.PENDING, OutboundStatus.FAILED)))
    backlog, oldest = session.execute(open_q).one()
    dead, oldest_dead = session.execute(select(func.count(OutboundMessage.id), func.min(OutboundMessage.created_at))
                                        .where(OutboundMessage.system_key == key,
                                               OutboundMessage.status == OutboundStatus.DEAD)).one()
    since = now - window
    is_delivery = SyncLog.operation.in_(OUTBOUND_OPS)
    attempts, failures = session.execute(
        select(func.count(SyncLog.id), func.coalesce(func.sum(sql_case((SyncLog.ok.is_(False), 1), else_=0)), 0))
        .where(SyncLog.system_key == key, is_delivery, SyncLog.finished_at >= since)).one()
    last_delivered = session.scalar(select(func.max(SyncLog.finished_at)).where(
        SyncLog.system_key == key, is_delivery, SyncLog.ok.is_(True)))
    last_delivery_error = session.scalar(select(SyncLog).where(SyncLog.system_key == key, is_delivery,
                                                               SyncLog.ok.is_(False))
                                         .order_by(SyncLog.id.desc()).limit(1))
    last_inbound = session.scalar(select(func.max(SyncLog.finished_at)).where(
        SyncLog.system_key == key, ~is_delivery, SyncLog.ok.is_(True)))
    last_received = session.scalar(select(func.max(InboundEvent.received_at)).where(InboundEvent.system_key == key))
    last_inbound_error = session.scalar(select(SyncLog).where(SyncLog.system_key == key, ~is_delivery,
                                                              SyncLog.ok.is_(False))
                                        .order_by(SyncLog.id.desc()).limit(1))
    inbound_counts = dict(session.execute(
        select(InboundEvent.status, func.count(InboundEvent.id))
        .where(InboundEvent.system_key == key,
               InboundEvent.status.in_((InboundStatus.PENDING, InboundStatus.QUARANTINED)))
        .group_by(InboundEvent.status)).all())
    breaker = session.get(CircuitBreaker, key)
    state = circuit.state_of(breaker, now)
    lag_s = (now - oldest).total_seconds() if oldest is not None else 0.0
    error_rate = (failures / attempts) if attempts else 0.0
    last_in = max((t for t in (last_inbound, last_received) if t is not None), default=None)
    health = {
        "key": key,
        "enabled": system.enabled,
        "outbound": {"backlog": int(backlog), "lag_s": round(max(lag_s, 0.0), 1),
                     "oldest_pending_at": _iso(oldest), "dead": int(dead), "oldest_dead_at": _iso(oldest_dead)},
        "delivery": {"window_s": int(window.total_seconds()), "attempts": int(attempts), "failures": int(failures),
                     "error_rate": round(error_rate, 4), "last_success_at": _iso(last_delivered),
                     "last_error": _log_line(last_delivery_error)},
        "inbound": {"last_success_at": _iso(last_in), "pending": int(inbound_counts.get(InboundStatus.PENDING, 0)),
                    "quarantined": int(inbound_counts.get(InboundStatus.QUARANTINED, 0)),
                    "last_error": _log_line(last_inbound_error)},
        "circuit": {"state": state, "failures": breaker.failures if breaker else 0,
                    "opened_at": _iso(breaker.opened_at) if breaker and state != CircuitState.CLOSED else None,
                    "retry_at": _iso(breaker.retry_at) if breaker and state != CircuitState.CLOSED else None,
                    "last_error": breaker.last_error if breaker and state != CircuitState.CLOSED else ""},
        "last_success_at": _iso(max((t for t in (last_delivered, last_in) if t is not None), default=None)),
    }
    health["status"] = _verdict(health, state, lag_s)
    return health


def _log_line(row: SyncLog | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"at": _iso(row.finished_at), "operation": row.operation, "kind": row.error_kind, "detail": row.detail}


def _verdict(health: dict[str, Any], state: str, lag_s: float) -> str:
    if not health["enabled"]:
        return "disabled"
    if state == CircuitState.OPEN:
        return "down"
    delivery, outbound, inbound = health["delivery"], health["outbound"], health["inbound"]
    if (outbound["dead"] or inbound["quarantined"] or delivery["error_rate"] >= DEGRADED_ERROR_RATE
            or state == CircuitState.HALF_OPEN or lag_s >= STALE_LAG.total_seconds()):
        return "degraded"
    return "ok"


__all__ = ["system_health"]
