"""Sandbox simulator of the 公安巡防联动警情 system (shared/world/police_patrol.md).

``create_app(**options)`` serves the hub-facing API (``/ldpt/api/feedback``, ``/ldpt/api/jq``)
and the control endpoints of ``sandbox/README.md``, and pushes every 警情 change to the hub's
webhook (``sandbox/police_patrol_webhook.py``). The simulator object is
``app.extensions["sandbox"]`` (:class:`PoliceSimulator`); its dispatcher is
``simulator.dispatcher`` (``deliver_due()``, ``stop()``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.faults import FaultSwitches, install
from sandbox.police_patrol_state import SHANGHAI, ControlError, PoliceSimulator, iso, parse_instant
from sandbox.police_patrol_webhook import WebhookDispatcher, signature

__all__ = ["ControlError", "PoliceSimulator", "WebhookDispatcher", "create_app", "signature"]

UNAUTHORIZED = {"success": False, "errorCode": "UNAUTHORIZED"}
MAX_PAGE_SIZE = 100


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def create_app(*, webhook_url: str | None = None, webhook_secret: str = "police-demo-secret",
               feedback_token: str = "police-demo-token", time_scale: float = 1.0,
               clock: Callable[[], datetime] | None = None, reconcile_min_interval_s: float = 60,
               dispatch_thread: bool = True) -> Flask:
    """Build the police simulator app (demo credentials by default).

    ``dispatch_thread=False`` leaves delivery to ``deliver_due()`` / ``POST /_sandbox/deliver``.
    """
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    clock = clock or _now
    faults = FaultSwitches()
    dispatcher = WebhookDispatcher(url=webhook_url, secret=webhook_secret, clock=clock, faults=faults,
                                   time_scale=time_scale, run_thread=dispatch_thread)
    simulator = PoliceSimulator(dispatcher=dispatcher, clock=clock, feedback_token=feedback_token,
                                reconcile_min_interval_s=reconcile_min_interval_s)
    app.extensions["sandbox"] = simulator
    app.extensions["faults"] = faults
    install(app, faults)
    _register_api(app, simulator)
    _register_control(app, simulator)
    return app


def _invalid(field: str) -> tuple[Response, int]:
    return jsonify({"success": False, "errorCode": "INVALID_PARAM", "field": field}), 400


def _positive_int(name: str, default: int) -> int | None:
    raw = request.args.get(name) or str(default)
    return int(raw) if raw.isdigit() and int(raw) >= 1 else None


def _register_api(app: Flask, simulator: PoliceSimulator) -> None:
    """What the hub calls: feedback and reconciliation, all behind the Bearer token."""

    @app.post("/ldpt/api/feedback")
    def feedback() -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if simulator.authorized(request.headers.get("Authorization")):
            status, answer = simulator.feedback(body)
        else:
            status, answer = 401, UNAUTHORIZED
        simulator.log_write({"at": iso(simulator.clock()), "method": "POST", "path": request.path,
                             "body": body if body is not None else request.get_data(as_text=True),
                             "httpStatus": status, "answer": answer})
        return jsonify(answer), status

    @app.get("/ldpt/api/jq/<jjdbh>")
    def one_incident(jjdbh: str) -> tuple[Response, int]:
        if not simulator.authorized(request.headers.get("Authorization")):
            return jsonify(UNAUTHORIZED), 401
        row = simulator.current(jjdbh)
        if row is None:
            return jsonify({"success": False, "errorCode": "JQ_NOT_FOUND"}), 404
        return jsonify(row), 200

    @app.get("/ldpt/api/jq")
    def changed_incidents() -> Response | tuple[Response, int]:
        header = request.headers.get("Authorization")
        if not simulator.authorized(header):
            return jsonify(UNAUTHORIZED), 401
        since = parse_instant(request.args.get("gxsjFrom"))
        if since is None:
            return _invalid("gxsjFrom")
        page_no = _positive_int("pageNo", 1)
        if page_no is None:
            return _invalid("pageNo")
        page_size = _positive_int("pageSize", MAX_PAGE_SIZE)
        if page_size is None:
            return _invalid("pageSize")
        wait = simulator.reconcile_wait(str(header))
        if wait > 0:  # for catching up after an outage, not for routine polling
            return Response("Too Many Requests", 429, headers={"Retry-After": str(math.ceil(wait))},
                            content_type="text/plain")
        return jsonify(simulator.changed_since(since, page_no, min(page_size, MAX_PAGE_SIZE)))


def _register_control(app: Flask, simulator: PoliceSimulator) -> None:
    """The police side: calls taken, incidents moved, webhook pointed, delivery forced."""

    def control(work: Callable[[dict[str, Any]], Any], status: int = 200) -> tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "JSON object expected"}), 400
        try:
            return jsonify(work(body)), status
        except ControlError as refusal:
            return jsonify({"error": refusal.message}), refusal.status

    @app.post("/_sandbox/jq")
    def report() -> tuple[Response, int]:
        return control(simulator.report, 201)

    @app.post("/_sandbox/jq/<jjdbh>/status")
    def move(jjdbh: str) -> tuple[Response, int]:
        return control(lambda body: simulator.move(jjdbh, body))

    @app.put("/_sandbox/webhook")
    def webhook() -> tuple[Response, int]:
        def configure(body: dict[str, Any]) -> dict[str, Any]:
            simulator.dispatcher.configure(body.get("url"), body.get("secret"))
            return {"url": simulator.dispatcher.url}
        return control(configure)

    @app.post("/_sandbox/deliver")
    def deliver() -> Response:
        return jsonify({"attempted": simulator.dispatcher.deliver_due()})

    @app.get("/_sandbox/state")
    def state() -> Response:
        return jsonify(simulator.state())
