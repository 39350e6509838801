"""Outbound messages seen by people: delivery state, the dead-letter queue with its reasons,
and replay (one by one or in bulk)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from hub.api.auth import ADMINS, audited, hub_ctx, load_caller, require_role
from hub.api.schemas import OutboundArgs, OutboundPageSchema, OutboundReplayArgs, OutboundReplayResultSchema
from hub.models import OutboundMessage
from hub.services import outbox
from hub.services.redact import redact_text

blp = Blueprint("outbound", __name__, url_prefix="/api/v1",
                description="Outbound messages: delivery state, dead letters and replay")
blp.before_request(load_caller)

OUTBOUND_READERS = ("admin", "operator", "auditor")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _row(m: OutboundMessage) -> dict[str, Any]:
    row = {c.key: getattr(m, c.key) for c in OutboundMessage.__table__.columns}
    row["payload"] = _masked(m.payload or {})
    return row


@blp.route("/outbound")
class OutboundList(MethodView):
    @require_role(*OUTBOUND_READERS)
    @blp.arguments(OutboundArgs, location="query")
    @blp.response(200, OutboundPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Outbound messages, newest first; ``status=dead`` is the dead-letter queue, each with
        its reason (``error_kind``, ``last_error``)."""
        page, size = args["page"], args["page_size"]
        with hub_ctx().db.read_session() as s:
            total, items = outbox.list_messages(s, args.get("status"), args.get("system"), page, size,
                                                scope=str(g.caller["scope"] or ""))
            return {"total": total, "page": page, "page_size": size, "items": [_row(m) for m in items]}


@blp.route("/outbound/replay")
class OutboundReplay(MethodView):
    @require_role(*ADMINS)
    @blp.arguments(OutboundReplayArgs)
    @blp.response(200, OutboundReplayResultSchema)
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Put dead messages back to pending with a fresh attempt budget (by ids, by system, or
        all); the workers deliver them on their next round. Audited."""
        count = outbox.replay(hub_ctx(), ids=args.get("ids") or None, system_key=args.get("system"),
                              actor=str(g.caller["name"]), scope=str(g.caller["scope"] or ""))
        audited("outbound.replay", "outbound", args.get("system") or "*", {"ids": args.get("ids") or None},
                {"replayed": count})
        return {"replayed": count}
