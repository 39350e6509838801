"""综合执法 (law_enforcement) simulator: the GBK XML exchange of shared/world/law_enforcement.md.

One endpoint, ``POST /zfba/ws/exchange``, read and answered in GBK whatever the headers say; slow
(median ``latency_s``), rate limited per account (code 1003), down for maintenance every night
01:00–02:00 local time (HTTP 503, code 3001; also fault extra ``maintenance``). Control endpoints as
in sandbox/README.md. State lives in :class:`LawEnforcement` (``app.extensions["sandbox"]``).
"""

from __future__ import annotations

import math
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.faults import FaultSwitches, install
from sandbox.law_enforcement_store import CASE_ELEMENTS, Clock, LawEnforcement, parse_time
from sandbox.law_enforcement_xml import (
    CONTENT_TYPE,
    ExchangeRequest,
    PlatformError,
    bad_parameter,
    child_text,
    element,
    parse_request,
    response_bytes,
)

MAX_COUNT = 100
WRITE_METHODS = ("TransferClue", "AddRemark")
LATENCY_SPREAD = 0.35  # sigma of the log-normal around the median latency


def create_app(user: str = "wgzx", password: str = "zf-demo-pass", clock: Clock | None = None,
               latency_s: float = 0.8, rate_limit_per_s: float = 5,
               faults: FaultSwitches | None = None) -> Flask:
    """Build the 综合执法 simulator app (demo account by default; tests pass ``latency_s=0``)."""
    app = Flask("sandbox.law_enforcement")
    sim = LawEnforcement(user, password, clock, rate_limit_per_s)
    switches = faults or FaultSwitches()
    app.extensions["sandbox"] = sim
    app.extensions["faults"] = switches
    install(app, switches)
    rng = random.Random()

    def answer(code: int, message: str | None = None, children: list[ET.Element] | None = None,
               http_status: int = 200) -> Response:
        return Response(response_bytes(code, message, children), http_status, content_type=CONTENT_TYPE)

    @app.post("/zfba/ws/exchange")
    def exchange() -> Response:
        if switches.extra.get("maintenance") or sim.in_maintenance():
            return answer(3001, http_status=503)
        exchange_request: ExchangeRequest | None = None
        children: list[ET.Element] = []
        try:
            exchange_request = parse_request(request.get_data())
            sim.authenticate(exchange_request.user, exchange_request.password)
            sim.admit(exchange_request.user)
            handler = METHODS.get(exchange_request.method)
            if handler is None:
                raise bad_parameter("Method")
            children = handler(sim, exchange_request)
            code, message = 0, None
        except PlatformError as exc:
            code, message = exc.code, exc.message
        if exchange_request is not None and exchange_request.method in WRITE_METHODS:
            sim.record_write({
                "time": sim.local_time(), "method": exchange_request.method,
                "requestId": exchange_request.request_id, "user": exchange_request.user,
                "body": _as_data(exchange_request.body), "code": code, "message": message or "",
            })
        if latency_s > 0:  # the platform has done the work already; only the answer is slow
            time.sleep(min(latency_s * math.exp(rng.gauss(0.0, LATENCY_SPREAD)), latency_s * 10))
        return answer(code, message, children)

    _register_control(app, sim)
    return app


def _case_element(case: dict[str, str]) -> ET.Element:
    node = ET.Element("Case")
    node.extend(element(name, case.get(name, "")) for name in CASE_ELEMENTS)
    return node


def _query_cases(sim: LawEnforcement, req: ExchangeRequest) -> list[ET.Element]:
    since = req.text("ModifiedSince") or None
    if since is not None:
        parse_time(since, "ModifiedSince")
    after = req.text("AfterClueNo") or None
    if after is not None and since is None:
        raise bad_parameter("AfterClueNo")
    raw_count = req.text("MaxCount")
    if raw_count and (not raw_count.isdigit() or not 1 <= int(raw_count) <= MAX_COUNT):
        raise bad_parameter("MaxCount")
    rows, more = sim.query_cases(since, after, int(raw_count) if raw_count else MAX_COUNT)
    cases = ET.Element("Cases")
    cases.extend(_case_element(row) for row in rows)
    # with no rows the cursor comes back as sent, so the caller can keep it
    last_modified = rows[-1]["Modified"] if rows else since or ""
    last_clue_no = rows[-1]["ClueNo"] if rows else after or ""
    return [cases, element("More", "1" if more else "0"), element("LastModified", last_modified),
            element("LastClueNo", last_clue_no)]


def _query_case(sim: LawEnforcement, req: ExchangeRequest) -> list[ET.Element]:
    clue_no = req.text("ClueNo")
    if not clue_no:
        raise bad_parameter("ClueNo")
    return [_case_element(sim.query_case(clue_no))]


def _transfer_clue(sim: LawEnforcement, req: ExchangeRequest) -> list[ET.Element]:
    clue = req.body.find("Clue")
    if clue is None:
        raise bad_parameter("Clue")
    values: dict[str, Any] = {
        name: child_text(clue, name)
        for name in ("ExternalNo", "Source", "Category", "Content", "Address", "Lng", "Lat", "ReportTime",
                     "Reporter")
    }
    attachments = clue.find("Attachments")
    values["Attachments"] = [] if attachments is None else [
        (url.text or "").strip() for url in attachments.findall("Url") if (url.text or "").strip()
    ]
    return [element("ClueNo", sim.transfer_clue(values))]


def _add_remark(sim: LawEnforcement, req: ExchangeRequest) -> list[ET.Element]:
    case = sim.add_remark(req.text("ClueNo"), req.text("Text"))
    return [element("ClueNo", case["ClueNo"])]


METHODS: dict[str, Callable[[LawEnforcement, ExchangeRequest], list[ET.Element]]] = {
    "QueryCases": _query_cases,
    "QueryCase": _query_case,
    "TransferClue": _transfer_clue,
    "AddRemark": _add_remark,
}


def _as_data(node: ET.Element) -> Any:
    """An XML element as JSON-ready data for the write log (repeated children become lists)."""
    children = list(node)
    if not children:
        return node.text or ""
    data: dict[str, Any] = {}
    for child in children:
        value = _as_data(child)
        if child.tag in data:
            previous = data[child.tag]
            data[child.tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[child.tag] = value
    return data


_CONTROL_STATUS = {1002: 422, 2001: 404, 2002: 409, 2003: 409}


def _register_control(app: Flask, sim: LawEnforcement) -> None:
    def refused(exc: PlatformError) -> tuple[Response, int]:
        return jsonify({"code": exc.code, "message": exc.message}), _CONTROL_STATUS.get(exc.code, 400)

    def json_body() -> dict[str, Any]:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {}

    @app.post("/_sandbox/cases")
    def file_case() -> tuple[Response, int]:
        try:
            return jsonify(sim.file_case(json_body())), 201
        except PlatformError as exc:
            return refused(exc)

    @app.post("/_sandbox/cases/<clue_no>/advance")
    def advance(clue_no: str) -> tuple[Response, int]:
        body = json_body()
        details = {name: body.get(name) for name in ("Result", "Penalty", "Handler", "CaseNo")}
        try:
            return jsonify(sim.advance(clue_no, str(body.get("Status", "")), **details)), 200
        except PlatformError as exc:
            return refused(exc)

    @app.get("/_sandbox/state")
    def state() -> Response:
        return jsonify(sim.state())
