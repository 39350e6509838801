"""The ingest worker: consumes inbox nudges from kombu and sweeps for lost ones."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from kombu.connection import Connection
from kombu.mixins import ConsumerMixin
from sqlalchemy import select

from hub.context import HubContext
from hub.models import InboundEvent, InboundStatus, utcnow
from hub.services.ingest import process_batch, process_event

log = logging.getLogger(__name__)


def sweep_pending(ctx: HubContext, older_than_s: float, limit: int = 500) -> int:
    """Process pending inbox rows whose message was lost (broker restart, crash)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with ctx.db.read_session() as s:
        ids = list(s.scalars(select(InboundEvent.id).where(InboundEvent.status == InboundStatus.PENDING,
                                                           InboundEvent.received_at <= cutoff)
                             .order_by(InboundEvent.id).limit(limit)))
    for inbound_id in ids:
        process_event(ctx, inbound_id)
    return len(ids)


class IngestWorker(ConsumerMixin):
    def __init__(self, ctx: HubContext, connection: Connection, stop: threading.Event | None = None,
                 sweep_every_s: float = 5.0) -> None:
        self.ctx = ctx
        self.connection = connection
        self.stop = stop or threading.Event()
        self.sweep_every_s = sweep_every_s
        self._last_sweep = 0.0
        self.processed = 0

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [consumer_cls(queues=[self.ctx.bus.ingest_queue], callbacks=[self.on_message],
                             accept=["json"], prefetch_count=20)]

    def on_message(self, body: dict[str, Any], message: Any) -> None:
        ids = [int(i) for i in body.get("ids", [])]
        try:
            self.processed += len(process_batch(self.ctx, ids))
        except Exception:  # keep consuming; the rows stay pending and the sweep retries them
            log.exception("processing inbound %s failed; left for the sweep", ids)
        message.ack()

    def on_iteration(self) -> None:
        if self.stop.is_set():
            self.should_stop = True
            return
        now = time.monotonic()
        if now - self._last_sweep >= self.sweep_every_s:
            self._last_sweep = now
            try:
                swept = sweep_pending(self.ctx, self.ctx.config.sweep_after_s)
                if swept:
                    log.info("sweep processed %d pending inbound events", swept)
            except Exception:  # the store may be briefly unavailable; try next iteration
                log.exception("sweep failed")

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker connection error (%s); retrying in %.1fs", type(exc).__name__, interval)


def run_worker(ctx: HubContext, stop: threading.Event | None = None) -> None:
    with ctx.bus.connection() as conn:
        IngestWorker(ctx, conn, stop).run()
