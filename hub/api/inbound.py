"""The inbox seen by admins: quarantined records with their reason, and replay."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import func, select

from hub.api.auth import ADMINS, audited, fail, hub_ctx, load_caller, require_role
from hub.api.schemas import (
    InboundArgs,
    InboundEventSchema,
    InboundEventSummarySchema,
    InboundPageSchema,
    ReplayArgs,
    ReplayResultSchema,
)
from hub.models import InboundEvent
from hub.services.ingest import process_event, replay_quarantined
from hub.services.payloads import masked_payload

blp = Blueprint("inbound", __name__, url_prefix="/api/v1",
                description="Inbound events: what every system sent, quarantine and replay")
blp.before_request(load_caller)


@blp.route("/inbound-events")
class InboundList(MethodView):
    @require_role(*ADMINS, "auditor")
    @blp.arguments(InboundArgs, location="query")
    @blp.response(200, InboundPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Inbound events, newest first; ``status=quarantined`` lists what needs a mapping fix."""
        q = select(InboundEvent)
        if "status" in args:
            q = q.where(InboundEvent.status == args["status"])
        if "system" in args:
            q = q.where(InboundEvent.system_key == args["system"])
        page, size = args["page"], args["page_size"]
        with hub_ctx().db.read_session() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            items = list(s.scalars(q.order_by(InboundEvent.id.desc()).offset((page - 1) * size).limit(size)))
        return {"total": total, "page": page, "page_size": size, "items": items}


@blp.route("/inbound-events/<int(max=2147483647):event_id>")
class InboundDetail(MethodView):
    @require_role(*ADMINS, "auditor")
    @blp.response(200, InboundEventSchema)
    @blp.alt_response(404, description="no such event")
    def get(self, event_id: int) -> dict[str, Any]:
        """One inbound event with its raw payload (reporter identity masked)."""
        ctx = hub_ctx()
        with ctx.db.read_session() as s:
            ev = s.get(InboundEvent, event_id)
            if ev is None:
                fail(404, f"inbound event {event_id} not found")
            row = {c.key: getattr(ev, c.key) for c in InboundEvent.__table__.columns}
            row["payload"] = masked_payload(ctx, s, ev)
            return row


@blp.route("/inbound-events/<int(max=2147483647):event_id>/replay")
class InboundReplayOne(MethodView):
    @require_role(*ADMINS)
    @blp.response(200, InboundEventSummarySchema)
    @blp.alt_response(404, description="no such event")
    @blp.alt_response(409, description="the event is not quarantined")
    def post(self, event_id: int) -> InboundEvent:
        """Re-process one quarantined event with the active mapping."""
        ctx = hub_ctx()
        with ctx.db.read_session() as s:
            ev = s.get(InboundEvent, event_id)
            if ev is None:
                fail(404, f"inbound event {event_id} not found")
            if ev.status != "quarantined":
                fail(409, f"inbound event {event_id} is {ev.status}, not quarantined")
        process_event(ctx, event_id, replay=True)
        with ctx.db.read_session() as s:
            fresh = s.get(InboundEvent, event_id)
            assert fresh is not None
            audited("inbound.replay", "inbound_event", str(event_id), {"status": "quarantined"},
                    {"status": fresh.status})
            return fresh


@blp.route("/inbound-events/replay")
class InboundReplayMany(MethodView):
    @require_role(*ADMINS)
    @blp.arguments(ReplayArgs)
    @blp.response(200, ReplayResultSchema)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Re-process quarantined events in bulk (by ids, by system, or all)."""
        counts = replay_quarantined(hub_ctx(), ids=args.get("ids") or None, system_key=args.get("system"))
        audited("inbound.replay", "inbound_event", args.get("system") or "*", {"ids": args.get("ids") or None},
                {"counts": counts})
        return {"counts": counts}
