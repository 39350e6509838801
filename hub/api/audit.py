"""The audit log, read by auditors and admins: every change an admin made, before → after."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from hub.api.auth import hub_ctx, load_caller, require_role
from hub.api.schemas import AuditListArgs, AuditPageSchema
from hub.services import audit

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The audit log of admins' changes")
blp.before_request(load_caller)


@blp.route("/audit")
class AuditLog(MethodView):
    @require_role("admin", "auditor")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first; filter by ``target_type`` (user, mapping, system, outbound, inbound_event)
        or ``actor``. Secrets are never in it."""
        with hub_ctx().db.read_session() as s:
            total, rows = audit.list_entries(s, target_type=args.get("target_type"), actor=args.get("actor"),
                                             page=args["page"], per_page=args["page_size"])
            return {"total": total, "page": args["page"], "page_size": args["page_size"],
                    "items": [audit.entry_row(e) for e in rows]}
