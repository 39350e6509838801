"""The transactional outbox: outbound effects are stored with the case change, delivered later.

Why it is built this way:

* **Written in the caller's transaction** (``enqueue``): the effect exists exactly when the
  case change that caused it committed; a crash between "change the case" and "tell the
  system" can neither lose the effect nor send one for a change that rolled back. The unique
  ``idempotency_key`` makes enqueueing the same effect twice a no-op, and the connector hands
  the same key to the system on every attempt, so at-least-once delivery has effect once.
* **Claim → call → record, three steps**: no database transaction stays open during the HTTP
  call (a slow department system must not hold row locks or, on SQLite, the single write
  lock). Claiming a row increments ``attempts`` and pushes ``next_attempt_at`` one lease
  (``CLAIM_LEASE_S``) ahead: other workers do not see it as due while it is in flight, and if
  the worker dies mid-call the row simply becomes due again when the lease runs out (at least
  once; the idempotency key absorbs the repeat). A row whose lease ran out ``MAX_ATTEMPTS``
  times without any result being recorded is dead-lettered instead of being tried forever
  (a poison message that kills its worker).
* **SKIP LOCKED on PostgreSQL**: two workers claiming at the same moment take different rows
  instead of queueing on each other's locks. SQLite serializes writers (``BEGIN IMMEDIATE``),
  so the claim transaction there is exclusive anyway.
* **Per-(case, system) ordering**: a row is not claimed while an older row for the same case
  and system is still pending or failed (in flight included: it stays pending while leased), so
  a system never sees "closed" before "accepted" even with several workers. A *dead* row does
  not block its successors (one broken effect must not freeze a case's link forever); replaying
  it later delivers it after them, which is why effects should carry full state, not deltas.
  "Older" means a lower id, so the callers must enqueue a case's effects under that case's
  lock (as case changes are): two concurrent transactions could otherwise commit out of id
  order. Rows without a case are not ordered. One ``deliver_due`` call runs rounds, so a successor
  unblocked by a success (or a dead letter) goes out in the same call.
* **Recording a result**: a success is recorded whenever the row is still open (the effect
  happened, even if a lease ran out meanwhile); a failure only by the holder of the latest
  claim, so a late failure can never turn a sent row back into a failed one.
* **Backoff**: exponential (base ``BACKOFF_BASE_S``, factor 2, capped at ``BACKOFF_CAP_S``) with
  full jitter, so a system coming back from an outage is not hit by every backlog row at the
  same second; a server's ``Retry-After`` is a minimum. Failures are classified: ``transient``
  retries, ``permanent`` and ``mapping`` go to the dead letter at once; an unclassified
  exception counts as transient (a bug or an outage; the cap bounds it). Errors from
  ``adapters`` carry ``kind``/``retry_after`` and are honoured the same way.
* **Dead letters stay visible and replayable** (``replay``): reset to pending with a fresh
  attempt budget; every replay is logged (audit).
* **Errors stored without secrets**: ``last_error`` has the system's credential values, bearer
  tokens, ``token=``/``secret=``-style values and phone numbers masked, then is truncated.
* **Disabled systems** keep their rows pending (no attempt is spent) until re-enabled.
* **Circuit breaker per system** (``hub.services.circuit``): repeated transient failures open
  it; while open, that system's rows are not claimed (no attempt is spent, nothing is pushed
  towards the dead letter by an outage), and rows already claimed in the same pass are handed
  back untouched. The first call after the wait is the trial.
* **The active mapping at delivery time** rides on the effect (``OutboundEffect.mapping``), so a
  dead letter replayed after a mapping fix is rendered with the fixed mapping.
* **What a success created** (``DeliveryResult.external_ref``: a 数字城管 caseId, a 综合执法
  ClueNo) is kept on the row and on the case's timeline.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from hub.context import HubContext
from hub.facade import OP_CREATE, Connector, Deliverer, DeliveryError, OutboundEffect, UnknownSystemType
from hub.models import Case, CircuitBreaker, CircuitState, OutboundMessage, OutboundStatus, SyncLog, System
from hub.models.base import utcnow
from hub.services import circuit
from hub.services.mapping_versions import active_version, parsed_in
from hub.services.redact import MASK, redact_text
from hub.services.systems import connector_for

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 10.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 3600.0
RETRY_AFTER_MAX_S = 86400.0  # a server asking for more than a day is not taken literally
CLAIM_LEASE_S = 300.0  # longer than any connector's HTTP timeout
ERROR_LIMIT = 1000

OPEN = (OutboundStatus.PENDING, OutboundStatus.FAILED)
KINDS = ("transient", "permanent", "mapping")
DEFERRED = "deferred"  # deliver_due's count of claims handed back because the breaker opened

_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_PAIR = re.compile(
    r"(?i)\b((?:access_?token|refresh_?token|token|secret|app_?secret|client_?secret|password|passwd|pwd|"
    r"signature|sign|api_?key|app_?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s&\"',;}]+")


# ---------------------------------------------------------------- enqueue


def enqueue(session: Session, *, case_id: int | None, system_key: str, operation: str,
            payload: dict[str, Any], idempotency_key: str) -> OutboundMessage:
    """Store one outbound effect in the caller's transaction (it commits with the case change).

    An effect with the same ``idempotency_key`` already stored (or being stored by a concurrent
    transaction) is returned instead of a second row."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1 to 200 characters")
    if not system_key or len(system_key) > 64 or not operation or len(operation) > 64:
        raise ValueError("system_key and operation must be 1 to 64 characters")
    existing = _by_key(session, idempotency_key)
    if existing is not None:
        return existing
    now = utcnow()
    values = dict(case_id=case_id, system_key=system_key, operation=operation, payload=dict(payload),
                  idempotency_key=idempotency_key, status=OutboundStatus.PENDING, attempts=0, error_kind="",
                  last_error="", next_attempt_at=now, created_at=now, sent_at=None)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(OutboundMessage).values(**values).on_conflict_do_nothing(
        index_elements=["idempotency_key"]).returning(OutboundMessage.id)
    new_id = session.execute(stmt).scalar_one_or_none()
    row = session.get(OutboundMessage, new_id) if new_id is not None else _by_key(session, idempotency_key)
    assert row is not None, "an outbound row vanished between insert and read"
    return row


def is_enqueued(session: Session, idempotency_key: str) -> bool:
    """Whether an effect with this key was enqueued already (sent or not)."""
    return session.scalar(select(OutboundMessage.id).where(OutboundMessage.idempotency_key == idempotency_key)
                          ) is not None


def nudge(ctx: HubContext, planned: int) -> None:
    """Committed outbound effects: wake a delivery worker (best effort; its sweep finds them anyway)."""
    if not planned or ctx.bus is None:
        return
    try:
        ctx.bus.publish_outbound(planned)
    except Exception:  # never fail a change that committed over a nudge
        log.exception("outbound nudge failed; the delivery sweep will find %d effect(s)", planned)


def _by_key(session: Session, key: str) -> OutboundMessage | None:
    return session.scalar(select(OutboundMessage).where(OutboundMessage.idempotency_key == key))


# ---------------------------------------------------------------- delivery


@dataclass(frozen=True)
class _Claim:
    id: int
    case_id: int | None
    system_key: str
    operation: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int


@dataclass(frozen=True)
class _Outcome:
    ok: bool
    kind: str = ""
    reason: str = ""
    retry_after: float | None = None
    external_ref: str = ""

    @property
    def answered(self) -> bool:
        """False when the system could not be reached or failed (transient): what the breaker counts."""
        return self.ok or self.kind != "transient"


def backoff_delay(attempt: int, retry_after: float | None = None, rand: Callable[[], float] | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter over an
    exponentially growing, capped ceiling; never less than the server's ``retry_after``."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR ** max(0, attempt - 1))
    delay = ceiling * (rand or random.random)()
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_MAX_S))
    return delay


def deliver_due(ctx: HubContext, *, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Deliver up to ``limit`` due messages; returns how many ended ``sent``, ``failed``
    (retry scheduled) and ``dead``. ``now`` fixes the clock (tests)."""
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    counts = {OutboundStatus.SENT: 0, OutboundStatus.FAILED: 0, OutboundStatus.DEAD: 0, DEFERRED: 0}
    tried: set[int] = set()
    opened: set[str] = set()  # systems whose breaker opened during this call
    while len(tried) < limit:
        claims, lost = _claim(ctx, clock(), limit - len(tried), tried)
        counts[OutboundStatus.DEAD] += lost
        if not claims:
            if lost:
                continue  # their successors may be due now
            break
        tried.update(c.id for c in claims)
        settled = 0
        for claim in claims:
            if claim.system_key in opened:
                counts[DEFERRED] += _release(ctx, claim, clock())
                continue
            status, retry_at = _record(ctx, claim, _attempt(ctx, claim), clock())
            if retry_at is not None:
                opened.add(claim.system_key)
            if status in counts:
                counts[status] += 1
            settled += status in (OutboundStatus.SENT, OutboundStatus.DEAD)
        if not settled:
            break  # nothing sent or dead-lettered, so no successor was unblocked: the rest waits
    return counts


def _claim(ctx: HubContext, now: datetime, n: int, exclude: set[int]) -> tuple[list[_Claim], int]:
    older = aliased(OutboundMessage)
    blocked = exists().where(older.case_id == OutboundMessage.case_id,
                             older.system_key == OutboundMessage.system_key,
                             older.id < OutboundMessage.id, older.status.in_(OPEN))
    disabled = select(System.key).where(System.enabled.is_(False))
    q = (select(OutboundMessage)
         .where(OutboundMessage.status.in_(OPEN), OutboundMessage.next_attempt_at <= now, ~blocked,
                OutboundMessage.system_key.not_in(disabled),
                OutboundMessage.system_key.not_in(circuit.blocked_query(now)))
         .order_by(OutboundMessage.id).limit(n))
    if exclude:
        q = q.where(OutboundMessage.id.not_in(exclude))
    if not ctx.db.is_sqlite:
        q = q.with_for_update(skip_locked=True, of=OutboundMessage)
    claims: list[_Claim] = []
    lost = 0
    with ctx.db.session() as s:
        for m in s.scalars(q):
            if m.attempts >= MAX_ATTEMPTS:  # every lease ran out: the worker died each time
                m.status, m.error_kind = OutboundStatus.DEAD, "transient"
                m.last_error = (f"no result after {m.attempts} attempts (worker lost mid-delivery); "
                                f"last error: {m.last_error}")[:ERROR_LIMIT]
                log.warning("outbound %s to %s dead-lettered: %d attempts without a result",
                            m.id, m.system_key, m.attempts)
                lost += 1
                continue
            m.attempts += 1
            m.next_attempt_at = now + timedelta(seconds=CLAIM_LEASE_S)
            claims.append(_Claim(m.id, m.case_id, m.system_key, m.operation, dict(m.payload or {}),
                                 m.idempotency_key, m.attempts))
    return claims, lost


def _attempt(ctx: HubContext, claim: _Claim) -> _Outcome:
    """Call the system; no transaction is open here. Never raises."""
    secrets: list[str] = []
    try:
        connector, secrets, mapping = _connector(ctx, claim.system_key)
        if not isinstance(connector, Deliverer):
            raise DeliveryError(f"system type of {claim.system_key!r} cannot deliver", "permanent")
        effect = OutboundEffect(message_id=claim.id, case_id=claim.case_id, system_key=claim.system_key,
                                operation=claim.operation, payload=dict(claim.payload),
                                idempotency_key=claim.idempotency_key, attempt=claim.attempt, mapping=mapping)
        result = connector.deliver(effect)
    except DeliveryError as exc:
        return _Outcome(False, exc.kind, _safe_error(str(exc), secrets), exc.retry_after)
    except Exception as exc:  # adapters' errors say their kind; anything else: retry, bounded by the cap
        kind = getattr(exc, "kind", "")
        retry_after = getattr(exc, "retry_after", None)
        kind = kind if kind in KINDS else "transient"
        return _Outcome(False, kind, _safe_error(f"{type(exc).__name__}: {exc}", secrets),
                        float(retry_after) if isinstance(retry_after, int | float) else None)
    if not result.ok:
        return _Outcome(False, "permanent", _safe_error(result.detail or "refused by the system", secrets))
    if result.external_ref:
        log.info("outbound %s delivered to %s as %s", claim.id, claim.system_key, result.external_ref)
    return _Outcome(True, reason=_safe_error(result.detail, secrets),
                    external_ref=str(result.external_ref or "")[:128])


def _connector(ctx: HubContext, system_key: str) -> tuple[Connector, list[str], Any]:
    """The system's connector, its credential values (to mask in errors) and its active mapping."""
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == system_key))
        if system is None:
            raise DeliveryError(f"no system {system_key!r}", "permanent")
        secrets = [str(v) for v in (ctx.box.open_json(system.credentials_encrypted) or {}).values()]
        version = active_version(s, system_key)
        mapping = parsed_in(ctx.cache, version) if version is not None else None
        try:
            return connector_for(ctx, system), secrets, mapping
        except UnknownSystemType as exc:
            raise DeliveryError(str(exc), "permanent") from exc


def _release(ctx: HubContext, claim: _Claim, due: datetime) -> int:
    """Hand a claimed row back untouched (its system's breaker opened during this pass): the
    attempt is not counted and the row stays due (``due``: the pass's clock). The open breaker
    keeps it from being claimed; the moment the breaker's wait is over, or an admin resets it,
    the row goes out. Returns 1 when released."""
    with ctx.db.session() as s:
        m = s.get(OutboundMessage, claim.id)
        if m is None or m.status not in OPEN or m.attempts != claim.attempt:
            return 0
        m.attempts -= 1
        m.next_attempt_at = due
        return 1


def _record(ctx: HubContext, claim: _Claim, outcome: _Outcome, now: datetime) -> tuple[str, datetime | None]:
    """Store the result and count it on the system's breaker; returns the row's new status (""
    when the claim was stale) and, when this outcome opened the breaker, until when."""
    with ctx.db.session() as s:
        state = circuit.record(s, claim.system_key, transient_failure=not outcome.answered,
                               error=outcome.reason, now=now)
        breaker = s.get(CircuitBreaker, claim.system_key) if state == CircuitState.OPEN else None
        opened_until = breaker.retry_at if breaker is not None else None
        q = select(OutboundMessage).where(OutboundMessage.id == claim.id)
        if not ctx.db.is_sqlite:
            q = q.with_for_update()
        m = s.scalar(q)
        if m is None or m.status not in OPEN:
            return "", opened_until  # sent by a worker whose lease had run out, or replayed/removed
        if outcome.ok:
            m.status, m.sent_at, m.error_kind, m.last_error = OutboundStatus.SENT, now, "", ""
            if outcome.external_ref:
                m.external_ref = outcome.external_ref
                _note_created(s, m)
        elif m.attempts != claim.attempt:
            return "", opened_until  # our lease ran out and another worker holds the row: its result counts
        elif outcome.kind == "transient" and claim.attempt < MAX_ATTEMPTS:
            m.status, m.error_kind, m.last_error = OutboundStatus.FAILED, outcome.kind, outcome.reason
            m.next_attempt_at = now + timedelta(seconds=backoff_delay(claim.attempt, outcome.retry_after))
        else:
            m.status, m.error_kind = OutboundStatus.DEAD, outcome.kind or "permanent"
            suffix = f" (gave up after {claim.attempt} attempts)" if outcome.kind == "transient" else ""
            m.last_error = outcome.reason[:ERROR_LIMIT - len(suffix)] + suffix
            log.warning("outbound %s (%s to %s) dead-lettered, %s: %s", m.id, m.operation, m.system_key,
                        m.error_kind, m.last_error)
        s.add(SyncLog(system_key=claim.system_key, operation="deliver", ok=outcome.ok, stored=int(outcome.ok),
                      detail=f"{claim.operation} #{claim.id} attempt {claim.attempt}: "
                             f"{outcome.reason or m.status}"[:1000],
                      error_kind="" if outcome.ok else m.error_kind, started_at=now, finished_at=now))
        return m.status, opened_until


def _note_created(s: Session, m: OutboundMessage) -> None:
    """A create effect's new record goes on the case's timeline (the record itself joins the
    case when it is next read in: it carries the case number as its external number)."""
    if m.case_id is None or m.operation != OP_CREATE:
        return
    case = s.get(Case, m.case_id)
    if case is None:
        return
    from hub.services.cases import add_event  # cases → sync → outbox: imported when used

    add_event(s, case, "routed_created", f"{m.system_key} 已建档：{m.external_ref}", system_key=m.system_key,
              detail={"message_id": m.id, "external_ref": m.external_ref})


def _safe_error(text: str, secrets: Iterable[str]) -> str:
    text = redact_text(text, secrets)
    text = _BEARER.sub(lambda mo: mo.group(1) + MASK, text)
    text = _SECRET_PAIR.sub(lambda mo: mo.group(1) + MASK, text)
    return text[:ERROR_LIMIT]


# ---------------------------------------------------------------- dead letters and listing


def _scoped(q: Any, scope: str) -> Any:
    """Only rows of cases in the caller's jurisdiction (grid prefix); caseless rows need no scope."""
    if not scope:
        return q
    return q.where(OutboundMessage.case_id.in_(select(Case.id).where(Case.grid_code.startswith(scope))))


def replay(ctx: HubContext, ids: list[int] | None = None, system_key: str | None = None, limit: int = 1000,
           *, actor: str = "", scope: str = "") -> int:
    """Dead → pending with a fresh attempt budget, due now. Returns how many were replayed."""
    q = select(OutboundMessage.id).where(OutboundMessage.status == OutboundStatus.DEAD)
    if ids:
        q = q.where(OutboundMessage.id.in_(ids))
    if system_key:
        q = q.where(OutboundMessage.system_key == system_key)
    q = _scoped(q, scope).order_by(OutboundMessage.id).limit(limit)
    with ctx.db.session() as s:
        targets = list(s.scalars(q))
        replayed: list[int] = []
        if targets:
            replayed = list(s.scalars(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_(targets), OutboundMessage.status == OutboundStatus.DEAD)
                .values(status=OutboundStatus.PENDING, attempts=0, next_attempt_at=utcnow())
                .returning(OutboundMessage.id)))
    log.warning("outbound replay by %s (ids=%s, system=%s): %d dead message(s) back to pending: %s",
                actor or "?", ids or "any", system_key or "any", len(replayed), sorted(replayed)[:50])
    return len(replayed)


def list_messages(session: Session, status: str | None = None, system_key: str | None = None, page: int = 1,
                  per_page: int = 50, *, scope: str = "") -> tuple[int, list[OutboundMessage]]:
    """One page of outbound messages, newest first, and the total matching."""
    q = select(OutboundMessage)
    if status:
        q = q.where(OutboundMessage.status == status)
    if system_key:
        q = q.where(OutboundMessage.system_key == system_key)
    q = _scoped(q, scope)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    items = list(session.scalars(q.order_by(OutboundMessage.id.desc()).offset((page - 1) * per_page)
                                 .limit(per_page)))
    return total, items


__all__ = ["BACKOFF_BASE_S", "BACKOFF_CAP_S", "DEFERRED", "MAX_ATTEMPTS", "backoff_delay", "deliver_due", "enqueue",
           "is_enqueued", "list_messages", "nudge", "replay"]
