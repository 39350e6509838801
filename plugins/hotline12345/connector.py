"""The 12345 connector: reads the signed change feed, fetches single work orders, and delivers
status effects as gateway actions (``deliver``; the action logic is in ``outbound``).

The hub is a handling-unit gateway of the hotline (shared/world/hotline12345.md). Every feed
item is the full snapshot of a work order as of one change, so each becomes one raw record
``{gdbh}@{version}``: re-reading a page (at-least-once, replay from an old cursor) stores
nothing new. The feed cursor moves in the same transaction as the page it was read with.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from adapters.base import AdapterError, AuthError, BusinessError, PermanentError, Transport
from adapters.http import HttpTransport
from adapters.signed_rest import SignedJsonClient
from hub.facade import (
    ConnectionReport,
    CursorStore,
    DeliveryResult,
    InboundSink,
    OutboundEffect,
    PollReport,
    RawRecord,
    SystemConfig,
)
from plugins.hotline12345.outbound import DEFAULT_YQ_DAYS, YQ_DAYS, StatusWriter

FEED_CURSOR = "feed"
FEED_PATH = "/workorders/changes"
DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 200  # the feed refuses more (4001)
DEFAULT_MAX_PAGES = 20
DEFAULT_TIMEOUT_S = 10.0
NOT_FOUND = "4004"
DEFAULT_OPERATOR = "GridHub"


def snapshot_record(item: Any) -> RawRecord | None:
    """One feed item (or GET answer) as a raw record; None when it cannot be identified.

    The text is re-serialized deterministically, so the same snapshot read twice is the
    same record with the same event id.
    """
    if not isinstance(item, dict):
        return None
    gdbh, version = item.get("gdbh"), item.get("version")
    if not isinstance(gdbh, str) or not gdbh.strip():
        return None
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    return RawRecord(event_id=f"{gdbh}@{version}", external_id=gdbh, version=version,
                     raw=json.dumps(item, ensure_ascii=False, sort_keys=True))


def unidentified_reason(item: Any) -> str:
    """Why ``snapshot_record`` refused an item, naming the field."""
    if not isinstance(item, dict):
        return f"12345 feed item is not a JSON object ({type(item).__name__})"
    gdbh = item.get("gdbh")
    if not isinstance(gdbh, str) or not gdbh.strip():
        return "12345 feed item without gdbh (工单编号)"
    return f"12345 work order {gdbh} without an integer version"


def _setting_int(settings: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = settings.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name} must be an integer, got {value!r}") from None
    return max(low, min(high, number))


class HotlineConnector:
    """Pulled connector of one 12345 gateway (``SystemConfig`` settings and credentials).

    Settings: ``units`` (the gateway's handling units, used by actions), ``page_limit``
    (1..200, default 100), ``max_pages_per_poll`` (default 20), ``timeout_s`` (default 10),
    ``operator`` (``czr`` of the actions, default ``GridHub``), ``yq_days`` (``yqts`` of a
    延期 when neither the effect nor the mapping gives one, 1..15, default 5).
    Credentials: ``app_key``, ``app_secret``.
    """

    def __init__(self, config: SystemConfig, transport: Transport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        settings = config.settings
        units = settings.get("units") or ()
        self.units: tuple[str, ...] = (units,) if isinstance(units, str) else tuple(str(u) for u in units)
        self.page_limit = _setting_int(settings, "page_limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
        self.max_pages = _setting_int(settings, "max_pages_per_poll", DEFAULT_MAX_PAGES, 1, 10_000)
        timeout = float(settings.get("timeout_s") or DEFAULT_TIMEOUT_S)
        self.client = SignedJsonClient(
            config.base_url, str(config.credentials.get("app_key", "")),
            str(config.credentials.get("app_secret", "")),
            transport if transport is not None else HttpTransport(timeout=timeout), clock=clock)
        self.writer = StatusWriter(
            self.client, self.units, str(settings.get("operator") or DEFAULT_OPERATOR), clock,
            _setting_int(settings, "yq_days", DEFAULT_YQ_DAYS, *YQ_DAYS))

    def __repr__(self) -> str:
        return f"HotlineConnector({self.client!r})"

    # ----- reading ----------------------------------------------------------------------------
    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        """Read the change feed from the stored cursor, one transaction per page.

        Stops after ``max_pages_per_poll`` pages with ``more=True`` so the poller comes back
        at once. Adapter errors propagate: what was stored so far stays stored.
        """
        report = PollReport()
        cursor = cursors.get(FEED_CURSOR)
        while True:
            items, next_cursor, has_more = self._read_page(cursor, self.page_limit)
            records: list[RawRecord] = []
            for item in items:
                record = snapshot_record(item)
                if record is None:
                    sink.reject(unidentified_reason(item), json.dumps(item, ensure_ascii=False,
                                                                      sort_keys=True))
                else:
                    records.append(record)
            report.stored += sink.store_many(records, cursor=(FEED_CURSOR, next_cursor))
            report.read += len(items)
            report.pages += 1
            cursor = next_cursor
            if not has_more:
                return report
            if report.pages >= self.max_pages:
                report.more = True
                report.notes.append(f"stopped after {report.pages} pages; more to read")
                log.info("12345 feed: %d pages read, more waiting", report.pages)
                return report

    def _read_page(self, cursor: str | None, limit: int) -> tuple[list[Any], str, bool]:
        # The spec's own example sends an empty cursor for "from the start of retention".
        data = self.client.request("GET", FEED_PATH, params=[("cursor", cursor or ""), ("limit", limit)])
        if not isinstance(data, dict):
            raise PermanentError(f"GET {FEED_PATH}: data is not an object")
        items, next_cursor = data.get("items"), data.get("nextCursor")
        if not isinstance(items, list):
            raise PermanentError(f"GET {FEED_PATH}: data.items is not a list")
        if not isinstance(next_cursor, str) or not next_cursor:
            raise PermanentError(f"GET {FEED_PATH}: data.nextCursor missing")
        return items, next_cursor, bool(data.get("hasMore"))

    def fetch(self, external_id: str) -> RawRecord | None:
        """The current snapshot of work order ``external_id`` (gdbh); None when 4004."""
        try:
            item = self.client.request("GET", f"/workorders/{external_id}")
        except BusinessError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise
        record = snapshot_record(item)
        if record is None:
            raise PermanentError(f"GET /workorders/{external_id}: {unidentified_reason(item)}")
        return record

    # ----- writing ----------------------------------------------------------------------------
    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """Apply one ``status`` effect to its work order (``hub.facade.Deliverer``).

        Reads the order, walks the steps the spec requires (``QS`` before ``BJ``/``YQ`` from
        ``20``), sends each with ``expectedVersion`` and ``X-Request-Id``; an order already at
        the target or beyond it is a success without a call. See ``outbound``.
        """
        return self.writer.deliver(effect)

    # ----- checking ---------------------------------------------------------------------------
    def test_connection(self) -> ConnectionReport:
        """One signed feed read (limit 1): proves base URL, clock, app key and secret."""
        try:
            items, _, has_more = self._read_page(None, 1)
        except AuthError as exc:
            return ConnectionReport(False, f"签名或应用密钥被拒绝：{exc}", _error_detail(exc))
        except AdapterError as exc:
            return ConnectionReport(False, f"无法读取变更流：{exc}", _error_detail(exc))
        first = items[0].get("gdbh") if items and isinstance(items[0], dict) else None
        seen = f"首条工单 {first}" if first else "变更流为空"
        return ConnectionReport(True, f"连接正常：签名通过，变更流可读（{seen}）",
                                {"items": len(items), "has_more": has_more, "first": first,
                                 "units": list(self.units)})


def _error_detail(exc: AdapterError) -> dict[str, Any]:
    return {"kind": exc.kind, "code": exc.code, "http_status": exc.http_status}


def factory(config: SystemConfig) -> HotlineConnector:
    """``SystemType.connector_factory``."""
    return HotlineConnector(config)


__all__ = ["FEED_CURSOR", "HotlineConnector", "factory", "snapshot_record",
                          "unidentified_reason"]
