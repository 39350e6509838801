"""Console pages: the queues an admin works after a fix — quarantined inbound payloads replayed
through the active mapping (隔离区与重放), and outbound dead letters replayed to their systems
(外发队列). Replays are audited; rows of cases outside the caller's jurisdiction are hidden."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from admin.pages.systems import (
    ERROR_KINDS,
    INBOUND_RESULTS,
    INBOUND_VIEWERS,
    OPERATION_LABELS,
    OUTBOUND_STATUSES,
    PER_PAGE,
    REPLAY_LIMIT,
    VIEWERS,
    _actor,
    _ids,
    _quarantined_query,
    _system,
)
from admin.views import _check_csrf, _ctx, bp, nav, roles
from hub.models import (
    Case,
    InboundEvent,
    InboundStatus,
    OutboundMessage,
)
from hub.services import audit, outbox
from hub.services.ingest import process_event
from hub.services.payloads import masked_payload
from hub.services.redact import redact_text
from hub.services.systems import (
    list_systems,
)

# ----------------------------------------------------------------------------- 隔离区与重放 (inbound)


def _inbound_page(results: list[dict[str, Any]] | None = None) -> tuple[str, int]:
    system_key = request.values.get("system", "")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    q = _quarantined_query()
    if system_key:
        q = q.where(InboundEvent.system_key == system_key)
    with _ctx().db.read_session() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        events = [{"id": e.id, "system_key": e.system_key, "external_id": e.external_id, "kind": e.error_kind,
                   "reason": redact_text(e.error_reason), "received_at": e.received_at}
                  for e in s.scalars(q.order_by(InboundEvent.id.desc()).offset((page - 1) * PER_PAGE)
                                     .limit(PER_PAGE))]
        system_keys = [x.key for x in list_systems(s)]
    return render_template("console/systems_inbound.html", events=events, total=total, page=page,
                           per_page=PER_PAGE, system=system_key, system_keys=system_keys, results=results,
                           kinds=ERROR_KINDS, result_labels=INBOUND_RESULTS,
                           can_replay=g.caller["role"] == "admin"), 200


@bp.get("/inbound")
@roles(*INBOUND_VIEWERS)
def inbound() -> tuple[str, int]:
    return _inbound_page()


@bp.get("/inbound/<int(max=2147483647):event_id>")
@roles(*INBOUND_VIEWERS)
def inbound_event(event_id: int) -> str:
    with _ctx().db.read_session() as s:
        ev = s.scalar(_quarantined_query().where(InboundEvent.id == event_id))
        if ev is None:
            abort(404)
        row = {"id": ev.id, "system_key": ev.system_key, "external_id": ev.external_id, "kind": ev.error_kind,
               "reason": redact_text(ev.error_reason), "received_at": ev.received_at, "attempts": ev.attempts,
               "content_type": ev.content_type, "payload": masked_payload(_ctx(), s, ev)}
    return render_template("console/systems_inbound_event.html", ev=row, kinds=ERROR_KINDS,
                           can_replay=g.caller["role"] == "admin")


@bp.post("/inbound/replay")
@roles("admin")
def inbound_replay() -> tuple[str, int]:
    """Re-process quarantined events with the active mapping: one (``one``), the checked ones, or
    every one the caller sees (of one system when filtered); the result of each is shown."""
    _check_csrf()
    targets = _inbound_targets()
    results = []
    for ev in targets:
        outcome = process_event(_ctx(), ev["id"], replay=True)
        results.append({**ev, "status": outcome.status, "reason": redact_text(outcome.reason)})
    actor, addr = _actor()
    with _ctx().db.session() as s:  # the replays commit one by one inside ingestion; the record follows
        target_id = str(targets[0]["id"]) if len(targets) == 1 else request.form.get("system") or "*"
        audit.record(s, actor, "inbound.replay", "inbound_event", target_id,
                     {"ids": [ev["id"] for ev in targets], "status": InboundStatus.QUARANTINED},
                     {"results": {str(r["id"]): r["status"] for r in results}}, addr)
    return _inbound_page(results)


def _inbound_targets() -> list[dict[str, Any]]:
    q = _quarantined_query()
    action = request.form.get("action", "selected")
    if request.form.get("one"):
        ids = _ids("one")
    elif action == "all":
        ids = []
        if request.form.get("system"):
            q = q.where(InboundEvent.system_key == request.form["system"])
    else:
        ids = _ids()
        if not ids:
            abort(400)
    if ids:
        q = q.where(InboundEvent.id.in_(ids))
    with _ctx().db.read_session() as s:
        rows = [{"id": e.id, "system_key": e.system_key, "external_id": e.external_id}
                for e in s.scalars(q.order_by(InboundEvent.id).limit(REPLAY_LIMIT))]
    if ids and len(rows) != len(ids):
        abort(404)  # not quarantined any more, or not the caller's to see
    return rows


# ----------------------------------------------------------------------------- 外发队列 (outbound)


def _outbound_row(m: OutboundMessage, numbers: dict[int, str]) -> dict[str, Any]:
    return {"id": m.id, "system_key": m.system_key, "case_id": m.case_id, "case_number": numbers.get(m.case_id or 0),
            "operation": m.operation, "status": m.status, "kind": m.error_kind, "error": redact_text(m.last_error),
            "attempts": m.attempts, "next_attempt_at": m.next_attempt_at, "created_at": m.created_at}


@bp.get("/outbound")
@roles(*VIEWERS)
def outbound() -> str:
    status = request.args.get("status", "dead")
    status = status if status in OUTBOUND_STATUSES else "dead"
    system_key = request.args.get("system", "")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    with _ctx().db.read_session() as s:
        total, messages = outbox.list_messages(s, None if status == "all" else status, system_key or None, page,
                                               PER_PAGE, scope=str(g.caller["scope"] or ""))
        case_ids = {m.case_id for m in messages if m.case_id is not None}
        numbers = {cid: number for cid, number in s.execute(select(Case.id, Case.number)
                                                            .where(Case.id.in_(case_ids)))}
        rows = [_outbound_row(m, numbers) for m in messages]
        system_keys = [x.key for x in list_systems(s)]
    return render_template("console/outbound.html", rows=rows, total=total, page=page, per_page=PER_PAGE,
                           status=status, system=system_key, system_keys=system_keys, statuses=OUTBOUND_STATUSES,
                           operations=OPERATION_LABELS, kinds=ERROR_KINDS, can_replay=g.caller["role"] == "admin")


@bp.post("/outbound/replay")
@roles("admin")
def outbound_replay() -> Response:
    """Dead messages back to pending with a fresh attempt budget: one, the checked ones, or every
    dead one of a system; rows outside the caller's jurisdiction are never touched."""
    _check_csrf()
    ctx = _ctx()
    scope = str(g.caller["scope"] or "")
    actor, addr = _actor()
    ids, system_key = _outbound_targets(scope)
    count = outbox.replay(ctx, ids=ids or None, system_key=system_key, actor=actor, scope=scope)
    with ctx.db.session() as s:  # the service commits its own transaction; the record follows at once
        audit.record(s, actor, "outbound.replay", "outbound", system_key or ",".join(map(str, ids)),
                     {"ids": ids or None, "system": system_key}, {"replayed": count}, addr)
    flash(_("已重放 %(n)s 条死信：已转为待发送，外发进程将在下一轮投递", n=count))
    return redirect(url_for("console.outbound", status=request.form.get("status", "dead"),
                            system=request.form.get("filter_system", "")))


def _outbound_targets(scope: str) -> tuple[list[int], str | None]:
    """The ids to replay (each must be one the caller sees: 404 otherwise) or a whole system's."""
    if request.form.get("action") == "system":
        system_key = request.form.get("system", "")
        with _ctx().db.read_session() as s:
            _system(s, system_key)
        return [], system_key
    ids = _ids("one") if request.form.get("one") else _ids()
    if not ids:
        abort(400)
    q = select(OutboundMessage.id).where(OutboundMessage.id.in_(ids))
    if scope:  # as ``outbox.list_messages`` filters: only rows of cases in the jurisdiction
        q = q.where(OutboundMessage.case_id.in_(select(Case.id).where(Case.grid_code.startswith(scope))))
    with _ctx().db.read_session() as s:
        if len(list(s.scalars(q))) != len(ids):
            abort(404)
    return ids, None


nav("console.inbound", "隔离区", *INBOUND_VIEWERS)
nav("console.outbound", "外发队列", *VIEWERS)
