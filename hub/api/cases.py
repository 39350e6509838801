"""Cases and tickets."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from hub.api.auth import READERS, audited, fail, hub_ctx, load_caller, require_role
from hub.api.schemas import (
    CaseDetailSchema,
    CaseListArgs,
    CasePageSchema,
    RouteArgs,
    RoutedSchema,
    TicketSchema,
    VerifiedPhotosSchema,
    VerifyPhotosArgs,
)
from hub.models import Case, Ticket
from hub.services import outbox, reports, routing, sync
from mappings.canonical import CanonicalStatus

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="Cases and their tickets")
blp.before_request(load_caller)


def _scoped(query: Select[Any]) -> Select[Any]:
    """Jurisdiction: a token scoped to a grid-code prefix sees only cases under it."""
    scope = g.caller["scope"]
    return query.where(Case.grid_code.startswith(scope)) if scope else query


def _systems_of(s: Session, case_ids: list[int]) -> dict[int, list[str]]:
    rows = s.execute(select(Ticket.case_id, Ticket.system_key).where(Ticket.case_id.in_(case_ids))
                     .distinct())
    out: dict[int, list[str]] = {}
    for case_id, key in rows:
        if case_id is not None:
            out.setdefault(case_id, []).append(key)
    return {k: sorted(v) for k, v in out.items()}


def _case_row(case: Case, systems: list[str], count: int) -> dict[str, Any]:
    row = {c: getattr(case, c) for c in ("id", "number", "title", "category", "status", "lat", "lng",
                                         "address", "grid_code", "owner_system", "department",
                                         "deadline", "reported_at", "updated_at", "description")}
    row["systems"] = systems
    row["ticket_count"] = count
    return row


def _ticket_row(ticket: Ticket) -> dict[str, Any]:
    row: dict[str, Any] = {c.key: getattr(ticket, c.key) for c in Ticket.__table__.columns}
    registry = hub_ctx().registry
    labels = registry.get(ticket.system_type).status_labels if ticket.system_type in registry else {}
    row["status_label"] = labels.get(ticket.status_code, ticket.status_code)
    row["aliases"] = ticket.aliases
    row["references"] = ticket.references
    return row


@blp.route("/cases")
class CaseList(MethodView):
    @require_role(*READERS)
    @blp.arguments(CaseListArgs, location="query")
    @blp.response(200, CasePageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List cases, newest first, with filters and paging."""
        q = _scoped(select(Case))
        if "status" in args:
            q = q.where(Case.status == args["status"])
        if "category" in args:
            q = q.where(Case.category == args["category"])
        if "grid" in args:
            q = q.where(Case.grid_code.startswith(args["grid"]))
        if "reported_from" in args:
            q = q.where(Case.reported_at >= args["reported_from"])
        if "reported_to" in args:
            q = q.where(Case.reported_at < args["reported_to"])
        if "system" in args:
            q = q.where(Case.id.in_(select(Ticket.case_id).where(Ticket.system_key == args["system"])))
        if args.get("multi_system"):
            multi = (select(Ticket.case_id).where(Ticket.case_id.is_not(None)).group_by(Ticket.case_id)
                     .having(func.count(func.distinct(Ticket.system_key)) > 1))
            q = q.where(Case.id.in_(multi))
        page, size = args["page"], args["page_size"]
        with hub_ctx().db.read_session() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            cases = list(s.scalars(q.order_by(Case.reported_at.desc(), Case.id.desc())
                                   .offset((page - 1) * size).limit(size)))
            ids = [c.id for c in cases]
            systems = _systems_of(s, ids)
            counts = dict(s.execute(select(Ticket.case_id, func.count(Ticket.id))
                                    .where(Ticket.case_id.in_(ids)).group_by(Ticket.case_id)).all())
            items = [_case_row(c, systems.get(c.id, []), counts.get(c.id, 0)) for c in cases]
        return {"total": total, "page": page, "page_size": size, "items": items}


@blp.route("/cases/<int(max=2147483647):case_id>")
class CaseDetail(MethodView):
    @require_role(*READERS)
    @blp.response(200, CaseDetailSchema)
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction)")
    def get(self, case_id: int) -> dict[str, Any]:
        """One case with its tickets (each in its system's words and canonical) and timeline."""
        with hub_ctx().db.read_session() as s:
            case = s.scalar(_scoped(select(Case).where(Case.id == case_id))
                            .options(selectinload(Case.tickets).selectinload(Ticket.aliases),
                                     selectinload(Case.tickets).selectinload(Ticket.references),
                                     selectinload(Case.events)))
            if case is None:
                fail(404, f"case {case_id} not found")
            tickets = [_ticket_row(t) for t in case.tickets]
            row = _case_row(case, sorted({t.system_key for t in case.tickets}), len(tickets))
            row["tickets"] = tickets
            row["timeline"] = list(case.events)
            return row


@blp.route("/tickets/<text:system>/<text:external_id>")
class TicketDetail(MethodView):
    @require_role(*READERS)
    @blp.response(200, TicketSchema)
    @blp.alt_response(404, description="no such ticket")
    def get(self, system: str, external_id: str) -> dict[str, Any]:
        """One ticket by its system key and its id in that system."""
        with hub_ctx().db.read_session() as s:
            ticket = s.scalar(select(Ticket).where(Ticket.system_key == system,
                                                   Ticket.external_id == external_id)
                              .options(selectinload(Ticket.aliases), selectinload(Ticket.references)))
            if ticket is None:
                fail(404, f"ticket {system}/{external_id} not found")
            scope = g.caller["scope"]
            if scope and ticket.case_id is not None:
                case = s.get(Case, ticket.case_id)
                if case is None or not case.grid_code.startswith(scope):
                    fail(404, f"ticket {system}/{external_id} not found")
            return _ticket_row(ticket)


OPERATORS = ("admin", "operator")
VERIFIERS = ("admin", "operator", "grid_worker")


def _locked_case(s: Session, case_id: int) -> Case:
    q = _scoped(select(Case).where(Case.id == case_id))
    if not hub_ctx().db.is_sqlite:
        q = q.with_for_update()
    case: Case | None = s.scalar(q)
    if case is None:
        fail(404, f"case {case_id} not found")
    if case.merged_into_id is not None:
        fail(409, f"case {case.number} was merged away; act on the case it went into")
    return case


@blp.route("/cases/<int(max=2147483647):case_id>/route")
class CaseRoute(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(RouteArgs)
    @blp.response(200, RoutedSchema)
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction), or no such system")
    @blp.alt_response(409, description="merged away, the system takes no new records, or its mapping cannot "
                                       "express the case (the message says which)")
    def post(self, args: dict[str, Any], case_id: int) -> dict[str, Any]:
        """Hand the case to a department system: it becomes the handling system, a record is
        opened there (数字城管 case, 综合执法 clue) unless the case has one, and the other linked
        systems are told it was taken (12345 签收, police 已接收)."""
        ctx = hub_ctx()
        with ctx.db.session() as s:
            case = _locked_case(s, case_id)
            before = case.owner_system
            try:
                routed = routing.route_case(ctx, s, case, args["system_key"], actor=str(g.caller["name"]),
                                            reason=args["reason"])
            except routing.RoutingError as exc:
                fail(404 if exc.kind == "unknown" else 409, str(exc))
            # the same audit line as the console's
            audited("case.route", "case", case.number, {"owner_system": before},
                    {"owner_system": routed.system_key, "message_id": routed.message_id,
                     "external_no": routed.external_no, "reason": args["reason"]}, s)
            planned = sync.take_planned(s)
            answer = {"case_id": case.id, "owner_system": case.owner_system, "message_id": routed.message_id,
                      "external_no": routed.external_no, "source": routed.source}
        outbox.nudge(ctx, planned)
        return answer


@blp.route("/cases/<int(max=2147483647):case_id>/verify")
class CaseVerify(MethodView):
    @require_role(*VERIFIERS)
    @blp.arguments(VerifyPhotosArgs)
    @blp.response(200, VerifiedPhotosSchema)
    @blp.alt_response(400, description="a photo is not a JPEG/PNG/WebP image, or larger than 5 MB")
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="the case is not waiting for verification (not RESOLVED), or merged away")
    def post(self, args: dict[str, Any], case_id: int) -> dict[str, Any]:
        """A grid worker's on-site verification (核查) of a resolved case: ``pass`` → VERIFIED,
        ``fail`` → REOPENED; every linked system is told in its own words (数字城管 VERIFY).
        Optional ``photos`` are kept as the case's ``verify`` attachments."""
        from hub.api.reports import photos_of

        ctx = hub_ctx()
        with ctx.db.session() as s:
            case = _locked_case(s, case_id)
            try:
                reports.check_verifiable(case)  # before the photos are decoded
                planned, attachments = reports.verify_case(s, case, result=args["result"], text=args["text"],
                                                           actor=str(g.caller["name"]),
                                                           photos=photos_of(args["photos"]))
            except reports.ReportError as exc:
                fail(exc.status, str(exc))
            audited("case.verify", "case", case.number, {"status": CanonicalStatus.RESOLVED.value},
                    {"status": case.status, "result": args["result"], "text": args["text"], "planned": planned,
                     "photos": attachments}, s)
            sync.take_planned(s)
            answer = {"case_id": case.id, "status": case.status, "planned": planned, "attachments": attachments}
        outbox.nudge(ctx, planned)
        return answer
