"""Console pages for case operations (操作记录): every merge, split, re-link and review decision
that changed which case a ticket belongs to, newest first, with whether it can still be undone
and why not; one operation's detail with a confirm form that undoes it.

Whether an operation is undoable is computed here without writing anything (``undo_state``),
with the same rule ``dedup_ops.undo_operation`` applies inside its transaction: not an undo
itself, not undone already, and every ticket it moved still in the case it moved it to. The page
only *shows* that; the undo itself is the service's call, with the caller's jurisdiction, which
decides again under row locks (two people undoing at once: the second is refused, and the page
says why).

Jurisdiction: an operation is shown only when every case it touched lies under the caller's
grid-code prefix (the cases the service checks before undoing); any other id is a 404 whatever
the URL, for the page and for the undo.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from admin.pages import work as _work  # noqa: F401  (its header links first: 操作记录 follows 复核队列)
from admin.views import _check_csrf, _ctx, bp, nav, roles
from hub.facade import OP_MERGE
from hub.models import Case, CaseEvent, CaseOperation, OutboundMessage, System, Ticket
from hub.services import dedup_ops
from hub.services.dedup_ops import OPERATION_EVENT_KINDS, OperationError

READERS = ("admin", "operator", "auditor")
OPERATORS = ("admin", "operator")
PER_PAGE = 50
CHUNK = 500  # operations checked at a time when the list is filtered in Python (scope, undoable)
REFUSAL_KEY = "undo_refusal"
HOTLINE_TYPE = "hotline12345"  # its CF (status 80) is final: a merge it heard of cannot be taken back there

KIND_LABELS = {"merge": _l("合并"), "split": _l("拆分"), "link": _l("改关联"), "review_accept": _l("复核并案"),
               "review_link": _l("复核改关联"), "undo": _l("撤销")}


# ----------------------------------------------------------------------------- the rule, read-only


@dataclass(frozen=True)
class UndoState:
    """``code``: ``undoable``, ``undone`` (already), ``is_undo`` (an undo itself) or ``moved`` (a
    ticket it moved is elsewhere now: ``ticket`` names it, ``now_in`` is its case id or None)."""

    code: str
    ticket: str = ""
    now_in: int | None = None

    @property
    def undoable(self) -> bool:
        return self.code == "undoable"


def moves_of(op: CaseOperation) -> list[dict[str, int]]:
    return [m for m in (op.detail or {}).get("moves") or [] if isinstance(m, dict)]


def involved_cases(op: CaseOperation) -> set[int]:
    """Every case the operation touched: those the service checks against the jurisdiction."""
    moves = moves_of(op)
    ids = {int(m["from_case"]) for m in moves} | {int(m["to_case"]) for m in moves} | {op.case_id}
    return ids | {int(k) for k in (op.detail or {}).get("statuses") or {}}


def undo_state(op: CaseOperation, tickets: dict[int, Ticket]) -> UndoState:
    """Whether ``undo_operation`` would revert ``op`` now, checked in the service's order
    (``tickets``: at least those the operation moved, by id)."""
    if op.kind == "undo":
        return UndoState("is_undo")
    if op.undone_at is not None:
        return UndoState("undone")
    for m in moves_of(op):
        ticket = tickets.get(int(m["ticket_id"]))
        if ticket is None or ticket.case_id != m["to_case"]:
            name = f"{ticket.system_key} {ticket.external_id}" if ticket is not None else f"#{m['ticket_id']}"
            return UndoState("moved", name, ticket.case_id if ticket is not None else None)
    return UndoState("undoable")


def in_scope(op: CaseOperation, cases: dict[int, Case], scope: str) -> bool:
    return not scope or all(c in cases and cases[c].grid_code.startswith(scope) for c in involved_cases(op))


@dataclass
class Loaded:
    """The tickets and cases a batch of operations refers to, read once."""

    tickets: dict[int, Ticket]
    cases: dict[int, Case]

    @classmethod
    def of(cls, s: Session, ops: Iterable[CaseOperation]) -> Loaded:
        ops = list(ops)
        ticket_ids = {int(m["ticket_id"]) for op in ops for m in moves_of(op)}
        tickets = {t.id: t for t in _in_chunks(s, select(Ticket), Ticket.id, ticket_ids)}
        case_ids = set().union(*(involved_cases(op) for op in ops)) if ops else set()
        case_ids |= {t.case_id for t in tickets.values() if t.case_id is not None}
        return cls(tickets, {c.id: c for c in _in_chunks(s, select(Case), Case.id, case_ids)})


def _in_chunks(s: Session, q: Select[Any], column: Any, ids: set[int]) -> list[Any]:
    ordered, found = sorted(ids), list[Any]()
    for i in range(0, len(ordered), CHUNK):
        found.extend(s.scalars(q.where(column.in_(ordered[i:i + CHUNK]))))
    return found


# ----------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class OpFilters:
    kind: str = ""
    actor: str = ""
    case: str = ""  # a case number
    undoable: bool = False
    page: int = 1

    def args(self, **change: Any) -> dict[str, Any]:
        values = {**asdict(self), **change}
        return {k: ("1" if v is True else v) for k, v in values.items() if v not in ("", False, None)}


def _scope() -> str:
    return str(g.caller["scope"] or "")


def _filters() -> tuple[OpFilters, dict[str, str]]:
    a, errors = request.args, {}
    f = OpFilters(kind=a.get("kind", ""), actor=a.get("actor", "").strip(), case=a.get("case", "").strip(),
                  undoable=a.get("undoable") == "1", page=max(1, min(a.get("page", 1, type=int) or 1, 100000)))
    if f.kind and f.kind not in KIND_LABELS:
        errors["kind"], f = _("未知操作类型"), replace(f, kind="")
    if len(f.actor) > 100 or "\x00" in f.actor:
        errors["actor"], f = _("操作人最多 100 个字"), replace(f, actor="")
    if len(f.case) > 32 or "\x00" in f.case:
        errors["case"], f = _("案件编号最多 32 个字"), replace(f, case="")
    return f, errors


def _operation_query(s: Session, f: OpFilters, errors: dict[str, str]) -> Select[Any] | None:
    """The SQL part of the filters (``None``: nothing can match). The case filter finds the case
    by number within the jurisdiction and its operations the way the case page does (the
    operation's own case, or a timeline line naming the operation)."""
    q = select(CaseOperation)
    if f.kind:
        q = q.where(CaseOperation.kind == f.kind)
    if f.actor:
        q = q.where(CaseOperation.actor == f.actor)
    if f.undoable:
        q = q.where(CaseOperation.kind != "undo", CaseOperation.undone_at.is_(None))
    scope = _scope()
    if scope:  # narrows in SQL; the other cases an operation touched are checked in Python
        q = q.where(CaseOperation.case_id.in_(select(Case.id).where(Case.grid_code.startswith(scope))))
    if f.case:
        cq = select(Case.id).where(Case.number == f.case)
        case_id = s.scalar(cq.where(Case.grid_code.startswith(scope)) if scope else cq)
        if case_id is None:
            errors["case"] = _("找不到案件编号 %(n)s（或不在您的辖区内）", n=f.case)
            return None
        details = s.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case_id,
                                                           CaseEvent.kind.in_(OPERATION_EVENT_KINDS)))
        ids = {int(d["operation_id"]) for d in details if isinstance(d, dict) and d.get("operation_id") is not None}
        q = q.where((CaseOperation.case_id == case_id) | CaseOperation.id.in_(sorted(ids)))
    return q


def _listing(s: Session, f: OpFilters, errors: dict[str, str]) -> tuple[int, list[CaseOperation]]:
    """(total, this page's operations), newest first. Without a jurisdiction or the undoable
    filter SQL pages alone; with them every candidate is checked, ``CHUNK`` at a time."""
    q = _operation_query(s, f, errors)
    if q is None:
        return 0, []
    newest = (CaseOperation.id.desc(),)
    start = (f.page - 1) * PER_PAGE
    if not _scope() and not f.undoable:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        return total, list(s.scalars(q.order_by(*newest).offset(start).limit(PER_PAGE)))
    matching: list[int] = []
    last: int | None = None
    while True:
        chunk = list(s.scalars((q if last is None else q.where(CaseOperation.id < last))
                               .order_by(*newest).limit(CHUNK)))
        if not chunk:
            break
        loaded = Loaded.of(s, chunk)
        matching.extend(op.id for op in chunk if in_scope(op, loaded.cases, _scope())
                        and (not f.undoable or undo_state(op, loaded.tickets).undoable))
        last = chunk[-1].id
    wanted = matching[start:start + PER_PAGE]
    shown = {op.id: op for op in s.scalars(select(CaseOperation).where(CaseOperation.id.in_(wanted)))}
    return len(matching), [shown[i] for i in wanted]


def _rows(s: Session, ops: list[CaseOperation]) -> list[dict[str, Any]]:
    """What each row shows: cases and tickets by name, the state and, once undone, the undo."""
    loaded = Loaded.of(s, ops)
    undos = {u.undo_of: u for u in s.scalars(select(CaseOperation).where(
        CaseOperation.undo_of.in_([op.id for op in ops])))} if ops else {}
    rows = []
    for op in ops:
        moves = []
        for m in moves_of(op):
            ticket = loaded.tickets.get(int(m["ticket_id"]))
            moves.append({"ticket": ticket, "ticket_id": m["ticket_id"], "from": loaded.cases.get(m["from_case"]),
                          "from_id": m["from_case"], "to": loaded.cases.get(m["to_case"]), "to_id": m["to_case"]})
        state = undo_state(op, loaded.tickets)
        now_in = loaded.cases.get(state.now_in) if state.now_in is not None else None
        cases = [loaded.cases[c] for c in sorted(involved_cases(op)) if c in loaded.cases]
        rows.append({"op": op, "kind": KIND_LABELS.get(op.kind, op.kind), "moves": moves, "cases": cases,
                     "state": state, "state_text": state_words(state, now_in), "now_in": now_in,
                     "undo": undos.get(op.id),
                     "undone_kind": KIND_LABELS.get(str((op.detail or {}).get("undone_kind", "")), "")})
    return rows


@bp.get("/work/operations")
@roles(*READERS)
def work_operations() -> tuple[str, int]:
    f, errors = _filters()
    with _ctx().db.read_session() as s:
        total, ops = _listing(s, f, errors)
        rows = _rows(s, ops)
        return render_template("console/work_operations.html", rows=rows, f=f, errors=errors, total=total,
                               pages=max(1, math.ceil(total / PER_PAGE)), kind_labels=KIND_LABELS,
                               can_undo=g.caller["role"] in OPERATORS), 200 if not errors else 422


# ----------------------------------------------------------------------------- one operation, and its undo


def _visible(s: Session, op_id: int) -> CaseOperation:
    op = s.get(CaseOperation, op_id)
    if op is None or not in_scope(op, Loaded.of(s, [op]).cases, _scope()):
        abort(404)
    return op


def duplicate_notices(s: Session, op: CaseOperation, tickets: dict[int, Ticket]) -> list[dict[str, Any]]:
    """Records a system was told are duplicates because of this operation (a ``merge`` effect:
    the duplicate or its master was among the tickets moved into ``into_case``). Undoing moves the
    tickets back but tells no system: 12345 in particular cannot reverse a CF (80 is final there)."""
    into = (op.detail or {}).get("into_case")
    if op.kind == "undo" or into is None:
        return []
    moved = [tickets[int(m["ticket_id"])] for m in moves_of(op) if int(m["ticket_id"]) in tickets]
    moved_ids = {t.id for t in moved}
    moved_refs = {(t.system_key, t.external_id) for t in moved}
    systems = {x.key: x for x in s.scalars(select(System))}
    notices = []
    for m in s.scalars(select(OutboundMessage).where(OutboundMessage.case_id == int(into),
                                                     OutboundMessage.operation == OP_MERGE)
                       .order_by(OutboundMessage.id)):
        told = m.idempotency_key.rsplit(":", 1)[-1]
        master = str((m.payload or {}).get("master_external_id") or "")
        if not ((told.isdigit() and int(told) in moved_ids) or (m.system_key, master) in moved_refs):
            continue
        system = systems.get(m.system_key)
        notices.append({"system": system.name if system is not None else m.system_key, "key": m.system_key,
                        "external_id": str((m.payload or {}).get("external_id") or ""), "master": master,
                        "status": m.status, "hotline": system is not None and system.plugin == HOTLINE_TYPE})
    return notices


@bp.get("/work/operations/<int(max=2147483647):op_id>")
@roles(*READERS)
def work_operation(op_id: int) -> str:
    with _ctx().db.read_session() as s:
        op = _visible(s, op_id)
        (row,) = _rows(s, [op])
        original = s.get(CaseOperation, op.undo_of) if op.undo_of is not None else None
        notices = duplicate_notices(s, op, Loaded.of(s, [op]).tickets)
        found = session.pop(REFUSAL_KEY, None)
        refusal = found if isinstance(found, dict) and found.get("op") == op_id else {}
        return render_template("console/work_operation.html", row=row, original=original, notices=notices,
                               refusal=refusal, kind_labels=KIND_LABELS,
                               can_undo=g.caller["role"] in OPERATORS and row["state"].undoable)


STATE_WORDS = {"undone": _l("已被撤销"), "is_undo": _l("本身是撤销操作：如需恢复，请重新执行原操作"),
               "undoable": _l("可撤销")}
REFUSALS = {404: _l("找不到该操作，或不在您的辖区内"), 409: _l("当前状态不允许撤销"), 422: _l("填写内容有误")}


def state_words(state: UndoState, now_in: Case | None) -> str:
    if state.code == "moved":
        where = now_in.number if now_in is not None else "—"
        return str(_("不可撤销：工单 %(t)s 此后已移至案件 %(c)s", t=state.ticket, c=where))
    return str(STATE_WORDS.get(state.code, state.code))


@bp.post("/work/operations/<int(max=2147483647):op_id>/undo")
@roles(*OPERATORS)
def work_operation_undo(op_id: int) -> Response:
    _check_csrf()
    back = url_for("console.work_operation", op_id=op_id)
    with _ctx().db.read_session() as s:
        op = _visible(s, op_id)  # outside the jurisdiction: 404 before anything else
        kind = op.kind
    reason = request.form.get("reason", "").strip()
    problem = (_("请填写撤销原因") if not reason else _("撤销原因最多 500 个字") if len(reason) > 500
               else _("撤销原因含有不允许的字符") if "\x00" in reason else "")
    if problem:
        return _refused(op_id, "reason", problem, reason, back)
    actor = str(g.caller["name"])
    try:
        undo = dedup_ops.undo_operation(_ctx(), op_id, actor, reason, scope=_scope(),
                                        remote_addr=request.remote_addr or "")
    except OperationError as exc:
        if exc.status == 404:
            abort(404)
        with _ctx().db.read_session() as s:
            current = _visible(s, op_id)
            loaded = Loaded.of(s, [current])
            state = undo_state(current, loaded.tickets)
            words = state_words(state, loaded.cases.get(state.now_in) if state.now_in else None)
        message = _("撤销未执行：%(why)s（%(words)s；%(detail)s）", why=REFUSALS.get(exc.status, _("操作被拒绝")),
                    words=words, detail=exc.message)
        return _refused(op_id, "form", message, reason, back)
    flash(_("已撤销%(kind)s操作 #%(id)s（撤销记录 #%(undo)s）", kind=KIND_LABELS.get(kind, kind), id=op_id,
            undo=undo["id"]))
    return redirect(url_for("console.work_operations"))


def _refused(op_id: int, field: str, message: str, reason: str, back: str) -> Response:
    """Keep the refusal and the typed reason for the detail page the person is sent back to."""
    session[REFUSAL_KEY] = {"op": op_id, "field": field, "message": message, "reason": reason[:200]}
    return redirect(back)


nav("console.work_operations", "操作记录", *READERS)  # translated where shown (base.html: _(item.label))
