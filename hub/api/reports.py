"""Grid workers' reports, photos and on-site verification (核查).

A report names its reporter, and a reporter is a console user (``GridReport.reporter_id``): an API
token reports **as the console user whose username is the token's name** (an active user of a
reporting role). The jurisdiction is the token's scope, which must lie within the user's own; a
token that does not belong to such a user gets 403. Verification and photos follow the token's
role and scope like every other API call.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from hub.api.auth import fail, hub_ctx, load_caller, require_role
from hub.api.schemas import (
    NearbyArgs,
    NearbySchema,
    ReportArgs,
    ReportOutSchema,
    VerificationListSchema,
)
from hub.models import User
from hub.services import reports

blp = Blueprint("reports", __name__, url_prefix="/api/v1",
                description="Grid workers' reports, photos and on-site verification")
blp.before_request(load_caller)

REPORTERS = ("admin", "operator", "grid_worker")


def _reporter() -> User:
    """The console user the calling token reports as, with the token's (narrower) scope."""
    caller = g.caller
    with hub_ctx().db.read_session() as s:
        user = s.scalar(select(User).where(User.username == str(caller["name"]), User.active.is_(True)))
        if user is None or user.role not in REPORTERS:
            fail(403, "a report needs a reporter: this token's name is not an active console user "
                      "who may report (create the token with the grid worker's username)")
        if not str(caller["scope"]).startswith(user.scope):
            fail(403, f"the token's scope {caller['scope']!r} is outside its user's jurisdiction")
        s.expunge(user)
    user.scope = str(caller["scope"])  # detached: the token's scope applies to this call only
    return user


def photos_of(items: list[dict[str, Any]]) -> list[reports.Photo]:
    return [reports.decode_base64_photo(p["data"], p.get("mime", ""), p.get("filename", "")) for p in items]


@blp.route("/reports")
class ReportCreate(MethodView):
    @require_role(*REPORTERS)
    @blp.arguments(ReportArgs)
    @blp.response(201, ReportOutSchema)
    @blp.alt_response(200, schema=ReportOutSchema, description="a repeat of the same client_id: the first result")
    @blp.alt_response(202, schema=ReportOutSchema, description="stored but quarantined by its mapping "
                                                              "(inbound_id names the record)")
    @blp.alt_response(400, description="bad category, text, coordinates or photos")
    @blp.alt_response(403, description="the point is outside the caller's jurisdiction, or no reporter")
    @blp.alt_response(404, description="attach_to names no case the caller can see")
    @blp.alt_response(409, description="attach_to names a finished case")
    def post(self, args: dict[str, Any]) -> Any:
        """Report a problem found in the grid. It becomes a ticket of the hub's ``grid`` system and
        opens a case, or joins ``attach_to``'s case, or is linked by de-duplication."""
        user = _reporter()
        try:
            result = reports.submit_report(
                hub_ctx(), user, client_id=args["client_id"], category=args["category"], text=args["text"],
                lat=args["lat"], lng=args["lng"], location_source=args["location_source"],
                photos=photos_of(args["photos"]), attach_to=args["attach_to"])
        except reports.ReportError as exc:
            fail(exc.status, str(exc), errors={"json": {exc.field or "_schema": [str(exc)]}})
        status = 200 if result.repeat else 202 if result.outcome in ("quarantined", "pending") else 201
        return result.as_dict(), status


@blp.route("/reports/nearby")
class ReportNearby(MethodView):
    @require_role(*REPORTERS)
    @blp.arguments(NearbyArgs, location="query")
    @blp.response(200, NearbySchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open cases of a compatible category within 200 m, nearest first (is it reported already?)."""
        try:
            reports.check_point(args["lat"], args["lng"])
        except reports.ReportError as exc:
            fail(400, str(exc))
        with hub_ctx().db.read_session() as s:
            found = reports.nearby_open_cases(s, lat=args["lat"], lng=args["lng"], category=args["category"],
                                              scope=str(g.caller["scope"]))
            return {"items": [{"id": c.id, "number": c.number, "title": c.title, "category": c.category,
                               "status": c.status, "grid_code": c.grid_code, "distance_m": round(d, 1)}
                              for c, d in found]}


@blp.route("/attachments/<int(max=2147483647):attachment_id>")
class AttachmentFile(MethodView):
    @require_role("admin", "operator", "department", "grid_worker", "auditor")
    @blp.response(200, description="the file's bytes")
    @blp.alt_response(404, description="no such attachment, or outside the caller's jurisdiction")
    def get(self, attachment_id: int) -> Response:
        """A photo of a report or a verification, within the caller's jurisdiction."""
        with hub_ctx().db.read_session() as s:
            a = reports.attachment_in_scope(s, attachment_id, str(g.caller["scope"]))
            if a is None:
                fail(404, f"attachment {attachment_id} not found")
            return attachment_response(a.data, a.mime)


def attachment_response(data: bytes, mime: str) -> Response:
    response = Response(data, mimetype=mime)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Disposition"] = "inline"
    return response


@blp.route("/verifications")
class Verifications(MethodView):
    @require_role(*REPORTERS)
    @blp.response(200, VerificationListSchema)
    def get(self) -> dict[str, Any]:
        """Cases in the caller's jurisdiction waiting for on-site verification (RESOLVED), oldest
        first, with the systems that asked (数字城管 at 05 处置完成待核查). Verify with
        ``POST /cases/{id}/verify``."""
        ctx = hub_ctx()
        with ctx.db.read_session() as s:
            rows = reports.waiting_verification(ctx, s, str(g.caller["scope"]))
            return {"items": [{**{k: getattr(r["case"], k) for k in ("id", "number", "title", "category",
                                                                     "grid_code", "address", "lat", "lng",
                                                                     "updated_at")},
                               "asked_by": r["asked_by"], "status_codes": r["status_codes"]} for r in rows]}
