"""Inbound webhooks: ``POST /hooks/{system_key}``, verified by the system's own plugin."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from hub.api.auth import hub_ctx
from hub.facade import WebhookRequest
from hub.models import System, utcnow
from hub.services.inbox import Inbox
from hub.services.systems import connector_for, system_type_of

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/hooks")

MAX_BODY = 2 * 1024 * 1024


@bp.post("/<text:system_key>")
def receive(system_key: str) -> tuple[Response, int]:
    ctx = hub_ctx()
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == system_key, System.enabled.is_(True)))
        if system is None or not system_type_of(ctx, system).push:
            return jsonify({"success": False, "error": "unknown webhook"}), 404
        connector = connector_for(ctx, system)
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        return jsonify({"success": False, "error": "body too large"}), 413
    req = WebhookRequest(method=request.method, path=request.path, headers=dict(request.headers),
                         body=body, received_at=utcnow())
    reply = connector.handle_webhook(req, Inbox(ctx, system_key))  # type: ignore[attr-defined]
    if reply.status >= 400:
        log.warning("webhook %s refused with %s: %s", system_key, reply.status, reply.body.get("error"))
    return jsonify(reply.body), reply.status
