"""Sandbox simulator of the 12345 市民服务热线 work-order open API v2 (shared/world/hotline12345.md).

``create_app(**options)`` serves the open API under ``/openapi/v2`` (signed requests, change
feed, actions with ``X-Request-Id`` idempotency, business errors in HTTP 200 envelopes) and
the control endpoints of ``sandbox/README.md``. The simulator object is
``app.extensions["sandbox"]`` (:class:`HotlineSimulator`).

Fault extras (``PUT /_sandbox/faults``): ``internal_error_rate`` (share of open API requests
answered ``code`` 5000, nothing done) and ``lost_answer_rate`` (share of actions that are
carried out but whose answer is lost: HTTP 504 from the gateway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.faults import FaultSwitches, install
from sandbox.hotline12345_auth import HotlineError, RateLimiter, SignatureGuard, raw_path_and_query
from sandbox.hotline12345_calendar import SHANGHAI, format_local
from sandbox.hotline12345_store import ControlError, HotlineSimulator, envelope

__all__ = ["ControlError", "HotlineError", "HotlineSimulator", "create_app"]

BASE = "/openapi/v2"
DEFAULT_UNITS = ("斜土路街道", "徐汇区城管执法局")
log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(SHANGHAI)


def create_app(*, app_key: str = "demo-app", app_secret: str = "demo-secret-0001",
               units: Sequence[str] = DEFAULT_UNITS, clock: Callable[[], datetime] | None = None,
               rate_limit_per_s: float = 20) -> Flask:
    """Build the 12345 simulator app (demo credentials by default)."""
    app = Flask(__name__)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    clock = clock or _now
    simulator = HotlineSimulator(app_key=app_key, units=units, clock=clock)
    faults = FaultSwitches()
    guard = SignatureGuard(app_key, app_secret, clock)
    limiter = RateLimiter(rate_limit_per_s)
    app.extensions["sandbox"] = simulator
    app.extensions["faults"] = faults
    install(app, faults)

    @app.before_request
    def rate_limit() -> Response | None:
        if request.path.startswith(BASE) and not limiter.allow(request.headers.get("X-App-Key", "")):
            return Response("Too Many Requests", 429, headers={"Retry-After": "1"},
                            content_type="text/plain")
        return None

    def answer(work: Callable[[str], Any]) -> Response:
        """Authenticate, then run ``work(app_key)``; every business outcome is HTTP 200."""
        try:
            app_key_used = guard.check(request.headers, request.method,
                                       raw_path_and_query(request.environ), request.get_data())
            if faults.chance(float(faults.extra.get("internal_error_rate", 0))):
                raise HotlineError(5000, "系统内部错误")
            result = work(app_key_used)
        except HotlineError as refusal:
            result = envelope(None, refusal.code, refusal.message)
        except Exception:  # the real system answers 5000 for anything unexpected
            log.exception("hotline12345 simulator failed")
            result = envelope(None, 5000, "系统内部错误")
        return jsonify(result)

    @app.get(f"{BASE}/workorders/changes")
    def changes() -> Response:
        def work(_: str) -> dict[str, Any]:
            raw_limit = request.args.get("limit", "")
            try:
                limit = int(raw_limit) if raw_limit else 100
            except ValueError:
                raise HotlineError(4001, "参数错误: limit") from None
            if not 1 <= limit <= 200:
                raise HotlineError(4001, "参数错误: limit")
            return envelope(simulator.changes(request.args.get("cursor"), limit))
        return answer(work)

    @app.get(f"{BASE}/workorders/<gdbh>")
    def get_order(gdbh: str) -> Response:
        return answer(lambda _: envelope(simulator.get(gdbh)))

    @app.post(f"{BASE}/workorders/<gdbh>/actions")
    def act(gdbh: str) -> Response:
        body = request.get_json(silent=True)
        request_id = request.headers.get("X-Request-Id", "")
        outcome: dict[str, Any] = {}

        def work(app_key_used: str) -> dict[str, Any]:
            if not request_id:
                raise HotlineError(4001, "参数错误: X-Request-Id")
            result = simulator.perform_action(app_key_used, request_id, gdbh, body)
            outcome["done"] = True
            return result

        response = answer(work)
        simulator.log_write({
            "at": format_local(clock()), "method": "POST", "path": raw_path_and_query(request.environ),
            "gdbh": gdbh, "appKey": request.headers.get("X-App-Key", ""), "requestId": request_id,
            "body": body if body is not None else request.get_data(as_text=True),
            "code": (response.get_json() or {}).get("code"),
        })
        if outcome and faults.chance(float(faults.extra.get("lost_answer_rate", 0))):
            return Response("Gateway Timeout", 504, content_type="text/plain")
        return response

    _register_control(app, simulator)
    return app


def _register_control(app: Flask, simulator: HotlineSimulator) -> None:
    """The hotline side: operators take calls, dispatch, visit back; plus the state dump."""

    def control(work: Callable[[], Any], status: int = 200) -> Response | tuple[Response, int]:
        try:
            return jsonify(work()), status
        except ControlError as refusal:
            return jsonify({"error": refusal.message}), refusal.status

    @app.post("/_sandbox/workorders")
    def take_call() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "JSON object expected"}), 400
        fields = {k: v for k, v in body.items() if k not in ("cbdw", "dispatch")}
        return control(lambda: simulator.take_call(fields, cbdw=body.get("cbdw"),
                                                   dispatch=bool(body.get("dispatch", True))), 201)

    @app.post("/_sandbox/workorders/<gdbh>/hotline")
    def hotline_step(gdbh: str) -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "JSON object expected"}), 400
        return control(lambda: simulator.hotline_step(gdbh, body))

    @app.get("/_sandbox/state")
    def state() -> Response | tuple[Response, int]:
        return control(simulator.state)
