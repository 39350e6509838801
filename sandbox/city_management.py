"""数字城管 (city_management) simulator: the HTTP interface of shared/world/city_management.md.

OAuth2 client credentials, offset paging over a moving set, case creation with the platform's
validation and duplicate answer, operations (SUPPLEMENT / VERIFY / CANCEL), and the control
endpoints of sandbox/README.md. State lives in :class:`CityManagement` (``app.extensions["sandbox"]``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, g, jsonify, request

from sandbox.city_management_rules import FieldError, fmt, local_now, parse_time
from sandbox.city_management_store import CityManagement, Clock, Refusal, invalid_field
from sandbox.faults import FaultSwitches, install

API_PREFIX = "/dcm/api/"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


def create_app(client_id: str = "gridhub", client_secret: str = "dcm-demo-secret",
               clock: Clock | None = None, token_ttl_s: int = 7200, close_after_s: int = 30,
               faults: FaultSwitches | None = None) -> Flask:
    """Build the 数字城管 simulator app (demo credentials by default).

    ``close_after_s``: how long a 06 case waits before the platform closes it to 07 (≤ 60).
    Fault extra ``revoke_tokens`` (true): every issued token is revoked once, at the next API call.
    """
    app = Flask("sandbox.city_management")
    sim = CityManagement(client_id, client_secret, clock, token_ttl_s, close_after_s)
    switches = faults or FaultSwitches()
    app.extensions["sandbox"] = sim
    app.extensions["faults"] = switches
    install(app, switches)

    @app.errorhandler(Refusal)
    def refused(exc: Refusal) -> tuple[Response, int]:
        return jsonify(exc.body), exc.http_status

    @app.before_request
    def authenticate() -> tuple[Response, int] | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if switches.extra.pop("revoke_tokens", False):
            sim.revoke_tokens()
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        client = sim.client_of(token.strip()) if scheme.lower() == "bearer" else None
        if client is None:
            return jsonify({"error": "invalid_token"}), 401
        g.client_id = client
        return None

    @app.after_request
    def log_write(response: Response) -> Response:
        if request.method == "POST" and request.path.startswith(API_PREFIX):
            sim.record_write({
                "time": fmt(local_now(sim.clock)), "method": request.method, "path": request.path,
                "client": g.get("client_id"), "body": request.get_json(silent=True),
                "status": response.status_code, "response": response.get_json(silent=True),
            })
        return response

    _register_oauth(app, sim)
    _register_api(app, sim)
    _register_control(app, sim)
    return app


def _basic_credentials() -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None


def _register_oauth(app: Flask, sim: CityManagement) -> None:
    @app.post("/oauth/token")
    def token() -> tuple[Response, int]:
        if request.form.get("grant_type") != "client_credentials":
            return jsonify({"error": "unsupported_grant_type"}), 400
        credentials = _basic_credentials() or (request.form.get("client_id", ""),
                                               request.form.get("client_secret", ""))
        issued = sim.issue_token(*credentials)
        if issued is None:
            return jsonify({"error": "invalid_client"}), 401
        return jsonify(issued), 200


def _int_arg(name: str, default: int, low: int, high: int | None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise invalid_field(name)
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise invalid_field(name)
    return value


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_field("body")
    return body


def _register_api(app: Flask, sim: CityManagement) -> None:
    @app.get("/dcm/api/cases")
    def list_cases() -> Response:
        updated_from = None
        if "updatedFrom" in request.args:
            try:
                updated_from = parse_time(request.args["updatedFrom"], "updatedFrom")
            except FieldError as exc:
                raise invalid_field(exc.field) from None
        page_no = _int_arg("pageNo", 1, 1, None)
        page_size = _int_arg("pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        return jsonify(sim.list_cases(updated_from, page_no, page_size))

    @app.get("/dcm/api/cases/<case_id>")
    def get_case(case_id: str) -> Response:
        return jsonify(sim.get_case(case_id))

    @app.post("/dcm/api/cases")
    def create_case() -> tuple[Response, int]:
        return jsonify(sim.create_case(_json_body(), g.client_id)), 201

    @app.post("/dcm/api/cases/<case_id>/operations")
    def operate(case_id: str) -> Response:
        return jsonify(sim.operate(case_id, _json_body(), g.client_id))


def _register_control(app: Flask, sim: CityManagement) -> None:
    @app.post("/_sandbox/cases")
    def file_case() -> tuple[Response, int]:
        return jsonify(sim.file_case(_json_body())), 201

    @app.post("/_sandbox/cases/<case_id>/advance")
    def advance(case_id: str) -> Response:
        body = _json_body()
        return jsonify(sim.advance(case_id, str(body.get("status", "")), body.get("deptName"),
                                   body.get("handleResult")))

    @app.post("/_sandbox/revoke-tokens")
    def revoke_tokens() -> Response:
        return jsonify({"revoked": sim.revoke_tokens()})

    @app.get("/_sandbox/state")
    def state() -> Response:
        return jsonify(sim.state())
