"""A test-only system type, ``fakesys``: records are handed to it in memory."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

from hub.facade import (
    OPERATIONS,
    ConnectionReport,
    CursorStore,
    DeliveryError,
    DeliveryResult,
    ExternalRef,
    InboundSink,
    OutboundEffect,
    PollReport,
    RawRecord,
    SystemConfig,
    SystemType,
    SystemTypeRegistry,
    TicketView,
    hookimpl,
)

MAPPING = Path(__file__).with_name("fakesys.yaml")


def record(ext_id: str, v: int = 1, **fields: Any) -> dict[str, Any]:
    """A fake record; different ids are different incidents (their own house number and a point
    hundreds of metres apart), so similarity dedup links them only when a test says so by
    giving them the same ``addr``/``lng``/``lat``."""
    h = zlib.crc32(ext_id.encode())
    base = {"id": ext_id, "v": v, "title": f"标题{ext_id}", "text": "门口有人摆摊", "cat": "A", "st": "NEW",
            "at": "2026-11-23 09:00:00", "addr": f"斜土路{1 + h % 1999}号",
            "lng": round(121.40 + (h // 97 % 89) * 0.003, 6), "lat": round(31.15 + h % 97 * 0.003, 6),
            "grid": "310104001001001"}
    base.update(fields)
    return base


def raw(rec: dict[str, Any]) -> RawRecord:
    return RawRecord(event_id=f"{rec['id']}@{rec['v']}", external_id=str(rec["id"]), version=int(rec["v"]),
                     raw=json.dumps(rec, ensure_ascii=False, sort_keys=True))


class FakeConnector:
    """Polls records from ``queue``; delivers outbound effects into ``applied`` (one per
    idempotency key, like a system that de-duplicates) after raising whatever ``failures``
    holds, one per call."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.queue: list[dict[str, Any]] = []
        self.calls: list[OutboundEffect] = []  # every deliver() call, failed ones included
        self.applied: dict[str, OutboundEffect] = {}  # idempotency key -> effect, in order applied
        self.failures: list[Exception] = []
        self.current: dict[str, dict[str, Any]] = {}  # what fetch() answers: the system's records now

    # -- telling it to fail
    def fail_transient(self, times: int = 1) -> None:
        self.failures.extend(DeliveryError("fake system unavailable (503)", "transient") for _ in range(times))

    def fail_permanent(self, message: str = "fake system refuses: INVALID_STATE") -> None:
        self.failures.append(DeliveryError(message, "permanent"))

    def rate_limit(self, retry_after: float) -> None:
        self.failures.append(DeliveryError("429 too many requests", "transient", retry_after=retry_after))

    def fail_with(self, *errors: Exception) -> None:
        self.failures.extend(errors)

    @property
    def delivered(self) -> list[OutboundEffect]:
        return list(self.applied.values())

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        self.calls.append(effect)
        if self.failures:
            raise self.failures.pop(0)
        if effect.idempotency_key in self.applied:
            return DeliveryResult(ok=True, detail="already applied", external_ref=f"F{effect.message_id}")
        self.applied[effect.idempotency_key] = effect
        return DeliveryResult(ok=True, detail="applied", external_ref=f"F{effect.message_id}")

    def test_connection(self) -> ConnectionReport:
        return ConnectionReport(ok=True, message="fake")

    def fetch(self, external_id: str) -> RawRecord | None:
        rec = self.current.get(external_id)
        return raw(rec) if rec is not None else None

    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        records = [raw(r) for r in self.queue]
        self.queue.clear()
        stored = sink.store_many(records, cursor=("pos", str(len(records))))
        return PollReport(read=len(records), stored=stored)


class FakePlugin:
    """Registers ``fakesys``; its records may name another record in ``ref``."""

    @hookimpl
    def hub_register_system_types(self, registry: SystemTypeRegistry) -> None:
        registry.register(SystemType(key="fakesys", title="测试系统", connector_factory=FakeConnector,
                                     default_mapping=MAPPING, credential_fields=("secret",),
                                     status_labels={"NEW": "新建", "DOING": "处理中", "HOLD": "挂起", "DONE": "完成"},
                                     operations=OPERATIONS))

    @hookimpl
    def hub_ticket_references(self, ticket: TicketView) -> list[ExternalRef] | None:
        if ticket.system_type != "fakesys" or not ticket.payload.get("ref"):
            return None
        return [ExternalRef("fakesys", str(ticket.payload["ref"]))]
