"""Per-system circuit breaker of outbound delivery.

Why: when a department system is down, every due message for it would otherwise spend an
attempt (and a connection timeout) on each worker pass, pushing the whole backlog towards the
dead letter while the system is simply away, and hammering it the moment it comes back. The
breaker turns "N consecutive transient failures" into one decision for the whole system:

* **closed**: calls go through; a transient failure counts, any answer from the system (a
  success, or a permanent/mapping refusal: the system is up and talking) resets the count.
* **open** after ``FAILURE_THRESHOLD`` consecutive transient failures: no message of that
  system is claimed until ``retry_at``; the rows wait as they are, no attempt is spent. The
  wait grows with each consecutive opening (``OPEN_BASE_S`` doubling, capped at ``OPEN_CAP_S``).
* **half-open** once ``retry_at`` has passed: the next call is the trial. A success closes the
  breaker; a transient failure opens it again at once, for longer.

The state lives in the database (``circuit_breaker``), so every worker process shares it. The
health endpoint shows it; the reconciliation sweep runs for a system when its breaker closes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hub.models import CircuitBreaker, CircuitState
from hub.models.base import utcnow

log = logging.getLogger(__name__)

FAILURE_THRESHOLD = 5
OPEN_BASE_S = 30.0
OPEN_CAP_S = 600.0
ERROR_LIMIT = 500


def open_until(trips: int) -> float:
    """Seconds the breaker stays open after its ``trips``-th consecutive opening (1-based)."""
    return float(min(OPEN_CAP_S, OPEN_BASE_S * 2.0 ** max(0, trips - 1)))


def blocked_query(now: datetime) -> Select[Any]:
    """A ``select`` of the system keys whose breaker is open at ``now`` (for claim filters)."""
    return select(CircuitBreaker.system_key).where(CircuitBreaker.state == CircuitState.OPEN,
                                                   CircuitBreaker.retry_at > now)


def is_open(session: Session, system_key: str, now: datetime) -> bool:
    row = session.get(CircuitBreaker, system_key)
    return bool(row is not None and row.state == CircuitState.OPEN and row.retry_at is not None
                and row.retry_at > now)


def record(session: Session, system_key: str, *, transient_failure: bool, error: str = "",
           now: datetime | None = None) -> str:
    """Count one delivery outcome; returns the breaker's state afterwards. ``transient_failure``
    False means the system answered (success or refusal)."""
    now = now or utcnow()
    row = session.get(CircuitBreaker, system_key)
    if row is None:
        if not transient_failure:
            return CircuitState.CLOSED  # the common case writes nothing
        row = CircuitBreaker(system_key=system_key, state=CircuitState.CLOSED, failures=0, trips=0,
                             last_error="", needs_reconcile=False)
        session.add(row)
    if not transient_failure:
        if row.state != CircuitState.CLOSED or row.failures:
            if row.state != CircuitState.CLOSED:
                log.warning("circuit of %s closed: the system answers again; its records will be re-read",
                            system_key)
                row.needs_reconcile = True
            row.state, row.failures, row.trips, row.retry_at = CircuitState.CLOSED, 0, 0, None
        return row.state
    row.failures += 1
    row.last_error = error[:ERROR_LIMIT]
    if row.failures >= FAILURE_THRESHOLD:  # a failed half-open trial lands here too
        row.trips += 1
        wait = open_until(row.trips)
        row.state, row.opened_at, row.retry_at = CircuitState.OPEN, now, now + timedelta(seconds=wait)
        log.warning("circuit of %s open for %.0f s after %d consecutive transient failures: %s",
                    system_key, wait, row.failures, row.last_error)
    return row.state


def state_of(row: CircuitBreaker | None, now: datetime) -> str:
    """What a person should read: closed, open, or half_open (open, but the wait is over)."""
    if row is None or row.state == CircuitState.CLOSED:
        return CircuitState.CLOSED
    if row.retry_at is not None and row.retry_at <= now:
        return CircuitState.HALF_OPEN
    return CircuitState.OPEN


def reset(session: Session, system_key: str) -> None:
    """Close the breaker by hand (an admin knows the system is back)."""
    row = session.get(CircuitBreaker, system_key)
    if row is not None:
        row.needs_reconcile = row.needs_reconcile or row.state != CircuitState.CLOSED
        row.state, row.failures, row.trips, row.retry_at = CircuitState.CLOSED, 0, 0, None


__all__ = ["FAILURE_THRESHOLD", "OPEN_BASE_S", "OPEN_CAP_S", "blocked_query", "is_open", "open_until",
           "record", "reset", "state_of"]
