"""The police connector: verifies and stores pushed 警情 events, reconciles by polling, and
delivers status effects as feedback (``deliver``; the feedback logic is in ``outbound``).

Police push every change of a 警情 as a signed webhook, at least once and in no order
(shared/world/police_patrol.md). The receiver only verifies and stores (the police want an
answer within 5 s); workers map. Each event is stored as ``{JJDBH}@{seq}``, the same id a
reconciliation row of that snapshot gets, so whichever comes first wins and the other is a
no-op; the hub keeps the newest ``seq`` of a ticket.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from adapters.base import AdapterError, PermanentError, SignatureError, StaleRequestError, Transport
from adapters.http import HttpTransport, raise_for_transport
from adapters.webhook import verify_signature
from hub.facade import (
    ConnectionReport,
    CursorStore,
    DeliveryResult,
    InboundSink,
    OutboundEffect,
    PollReport,
    RawRecord,
    SystemConfig,
    WebhookReply,
    WebhookRequest,
)
from plugins.police_patrol.outbound import DEFAULT_UNIT, SHANGHAI, FeedbackWriter

GXSJ_CURSOR = "gxsj"
RUN_CURSOR = "reconciled_at"
LIST_PATH = "/ldpt/api/jq"
PROBE_ID = "__gridhub_probe__"
PAGE_SIZE = 100  # the police maximum
MAX_PAGES_PER_RUN = 50
DEFAULT_INTERVAL_S = 600.0
DEFAULT_LOOKBACK_S = 3600.0
DEFAULT_TIMEOUT_S = 10.0


class Unidentified(ValueError):
    """An authentic body that cannot be stored as an event (the message names the field)."""


def event_record(body: bytes) -> RawRecord:
    """A verified webhook body as a raw record, text exactly as received; raise ``Unidentified``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unidentified("body is not UTF-8") from None
    try:
        event = json.loads(text)
    except ValueError:
        raise Unidentified("body is not JSON") from None
    if not isinstance(event, dict):
        raise Unidentified("body is not a JSON object")
    event_id = event.get("eventId")
    if not isinstance(event_id, str) or not event_id.strip():
        raise Unidentified("eventId missing")
    jjdbh, seq = _identity(event)
    kind = event.get("eventType")
    return RawRecord(event_id=f"{jjdbh}@{seq}", external_id=jjdbh, version=seq, raw=text,
                     kind=kind[:32] if isinstance(kind, str) and kind else "snapshot")


def row_record(row: Any) -> RawRecord:
    """A reconciliation row ``{"seq", "jq"}`` as a raw record; raise ``Unidentified``."""
    if not isinstance(row, dict):
        raise Unidentified("row is not a JSON object")
    jjdbh, seq = _identity(row)
    raw = json.dumps({"seq": seq, "jq": row["jq"]}, ensure_ascii=False, sort_keys=True)
    return RawRecord(event_id=f"{jjdbh}@{seq}", external_id=jjdbh, version=seq, raw=raw,
                     kind="reconciled")


def _identity(container: Mapping[str, Any]) -> tuple[str, int]:
    seq = container.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise Unidentified("seq missing or not a positive integer")
    jq = container.get("jq")
    if not isinstance(jq, dict):
        raise Unidentified("jq missing")
    jjdbh = jq.get("JJDBH")
    if not isinstance(jjdbh, str) or not jjdbh.strip():
        raise Unidentified("jq.JJDBH missing")
    return jjdbh, seq


def parse_instant(text: Any) -> datetime | None:
    """An ISO-8601 time with its offset (``GXSJ``, our cursors); None otherwise."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def iso_shanghai(moment: datetime) -> str:
    """``2026-11-23T09:00:00+08:00``: the police wire format."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def newest_gxsj(current: str, rows: list[Any]) -> str:
    """The latest of ``current`` and every row's ``jq.GXSJ``, compared as instants."""
    best, best_at = current, parse_instant(current)
    for row in rows:
        jq = row.get("jq") if isinstance(row, dict) else None
        text = jq.get("GXSJ") if isinstance(jq, dict) else None
        moment = parse_instant(text)
        if moment is not None and (best_at is None or moment > best_at):
            best, best_at = str(text), moment
    return best


def _float_setting(settings: Mapping[str, Any], name: str, default: float) -> float:
    value = settings.get(name)
    return default if value is None or value == "" else float(value)


class PoliceConnector:
    """Push connector with reconciliation of one police linkage gateway.

    Credentials: ``webhook_secret`` (verifies pushes), ``feedback_token`` (Bearer for the API).
    Settings: ``reconcile_interval_s`` (600), ``reconcile_lookback_s`` (3600), ``timeout_s`` (10),
    ``feedback_unit`` (``FKDW`` of the feedback, default ``网格化综合管理中心``).
    """

    def __init__(self, config: SystemConfig, transport: Transport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = config.base_url.rstrip("/")
        self._webhook_secret = str(config.credentials.get("webhook_secret", ""))
        self._token = str(config.credentials.get("feedback_token", ""))
        settings = config.settings
        self.reconcile_interval_s = _float_setting(settings, "reconcile_interval_s", DEFAULT_INTERVAL_S)
        self.reconcile_lookback_s = _float_setting(settings, "reconcile_lookback_s", DEFAULT_LOOKBACK_S)
        timeout = _float_setting(settings, "timeout_s", DEFAULT_TIMEOUT_S)
        self.transport = transport if transport is not None else HttpTransport(timeout=timeout)
        self.clock = clock
        self.writer = FeedbackWriter(self._call, str(settings.get("feedback_unit") or DEFAULT_UNIT),
                                     secrets=[self._token])

    def __repr__(self) -> str:
        return f"PoliceConnector({self.base_url!r})"

    # ----- push ---------------------------------------------------------------------------------
    def handle_webhook(self, request: WebhookRequest, sink: InboundSink) -> WebhookReply:
        """Verify, then store one pushed event; never map here (answer within 5 s).

        401: not authentic or stale, nothing kept. 400: authentic but unidentifiable, kept
        quarantined. 200: stored, or already stored (a redelivery is a success too).
        """
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not self._webhook_secret:
            return WebhookReply(401, {"success": False, "error": "webhook secret not configured"})
        received = request.received_at
        if received.tzinfo is None:  # the hub hands aware UTC; a naive one would be read as local time
            received = received.replace(tzinfo=UTC)
        try:
            verify_signature(self._webhook_secret, headers.get("x-police-timestamp"), request.body,
                             headers.get("x-police-signature"), now=received.timestamp())
        except StaleRequestError as exc:
            return WebhookReply(401, {"success": False, "error": f"stale request: {exc.message}"})
        except SignatureError as exc:
            return WebhookReply(401, {"success": False, "error": f"bad signature: {exc.message}"})
        try:
            record = event_record(request.body)
        except Unidentified as exc:
            sink.reject(f"police webhook: {exc}", request.body.decode("utf-8", errors="replace"))
            return WebhookReply(400, {"success": False, "error": str(exc)})
        sink.store(record)
        return WebhookReply(200, {"success": True})

    # ----- reconciliation -------------------------------------------------------------------------
    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        """Catch up on changed 警情 at most once per ``reconcile_interval_s``.

        Reads from cursor ``gxsj`` (inclusive; first run: now − lookback) and moves it with
        every page. Pages are walked by moving ``gxsjFrom`` to the newest ``GXSJ`` read
        rather than by page number: an incident changing during the run moves to the end
        of the list, which would shift a numbered page and skip a row.
        """
        started = self.clock()
        last_run = parse_instant(cursors.get(RUN_CURSOR))
        if last_run is not None and started - last_run.timestamp() < self.reconcile_interval_s:
            return PollReport(notes=["reconciliation not due"])
        report = PollReport()
        since = cursors.get(GXSJ_CURSOR) or iso_shanghai(
            datetime.fromtimestamp(started - self.reconcile_lookback_s, SHANGHAI))
        page_no = 1
        while True:
            rows, total = self._list_page(since, page_no)
            records: list[RawRecord] = []
            for row in rows:
                try:
                    records.append(row_record(row))
                except Unidentified as exc:
                    sink.reject(f"police reconciliation: {exc}", json.dumps(row, ensure_ascii=False))
            newest = newest_gxsj(since, rows)
            report.stored += sink.store_many(records, cursor=(GXSJ_CURSOR, newest))
            report.read += len(rows)
            report.pages += 1
            if len(rows) < PAGE_SIZE or page_no * PAGE_SIZE >= total:
                break
            if report.pages >= MAX_PAGES_PER_RUN:
                report.notes.append(f"stopped after {report.pages} pages; the next run continues")
                log.info("police reconciliation: %d pages read, more waiting", report.pages)
                break
            # a full page within one second cannot move the cursor: page within that second
            page_no, since = (page_no + 1, since) if newest == since else (1, newest)
        sink.store_many([], cursor=(RUN_CURSOR, iso_shanghai(datetime.fromtimestamp(started, SHANGHAI))))
        return report

    def _list_page(self, since: str, page_no: int) -> tuple[list[Any], int]:
        resp = self._get(LIST_PATH, {"gxsjFrom": since, "pageNo": page_no, "pageSize": PAGE_SIZE})
        raise_for_transport(resp, secrets=[self._token])
        data = _json(resp)
        rows, total = data.get("rows"), data.get("total")
        if not isinstance(rows, list) or not isinstance(total, int):
            raise PermanentError(f"GET {LIST_PATH}: answer without rows/total")
        return rows, total

    def fetch(self, external_id: str) -> RawRecord | None:
        """The current snapshot of 警情 ``external_id`` (JJDBH); None when unknown."""
        path = f"{LIST_PATH}/{quote(external_id, safe='')}"
        resp = self._get(path)
        if resp.status_code == 404 and _error_code(resp) == "JQ_NOT_FOUND":
            return None
        raise_for_transport(resp, secrets=[self._token])
        try:
            return row_record(_json(resp))
        except Unidentified as exc:
            raise PermanentError(f"GET {LIST_PATH}/…: {exc}") from None

    # ----- writing ---------------------------------------------------------------------------------
    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """Apply one ``status`` effect as feedback (``hub.facade.Deliverer``): ``JS``/``CZ``/``BJ``
        on a 警情 in 06, ``FKSJ`` = the hub change's time so a retry is ``DUPLICATE_FEEDBACK``;
        ``INVALID_STATE`` is decided on the re-read 警情. See ``outbound``.
        """
        return self.writer.deliver(effect)

    def test_connection(self) -> ConnectionReport:
        """Ask for an incident that cannot exist: JQ_NOT_FOUND proves the Bearer token works."""
        detail: dict[str, Any] = {"webhook_secret_set": bool(self._webhook_secret)}
        try:
            resp = self._get(f"{LIST_PATH}/{PROBE_ID}")
        except AdapterError as exc:
            return ConnectionReport(False, f"无法连接公安联动平台：{exc}", {**detail, "kind": exc.kind})
        detail["http_status"] = resp.status_code
        if resp.status_code in (401, 403):
            return ConnectionReport(False, "反馈令牌被拒绝（HTTP 401）", detail)
        if resp.status_code == 404 and _error_code(resp) == "JQ_NOT_FOUND":
            note = "" if self._webhook_secret else "；尚未设置推送签名密钥"
            return ConnectionReport(True, f"连接正常：令牌有效（探测警情不存在）{note}", detail)
        return ConnectionReport(False, f"意外的应答：HTTP {resp.status_code}", detail)

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        return self.transport.request("GET", self.base_url + path, params=params, headers=self._headers())

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> requests.Response:
        """One request of the feedback writer (``outbound.Call``), with the same token."""
        return self.transport.request(method, self.base_url + path, json=body, headers=self._headers())

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise PermanentError(f"HTTP {resp.status_code}: answer is not JSON") from None
    if not isinstance(data, dict):
        raise PermanentError(f"HTTP {resp.status_code}: answer is not a JSON object")
    return data


def _error_code(resp: requests.Response) -> str | None:
    try:
        data = resp.json()
    except ValueError:
        return None
    code = data.get("errorCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def factory(config: SystemConfig) -> PoliceConnector:
    """``SystemType.connector_factory``."""
    return PoliceConnector(config)
