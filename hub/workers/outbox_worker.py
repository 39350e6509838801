"""The delivery worker: runs ``outbox.deliver_due`` when nudged over kombu and on a periodic sweep.

A nudge (``Bus.publish_outbound``, sent by ingest after a transaction that planned effects) only
says "look now": the outbox rows are the truth. The sweep runs every ``sweep_every_s`` seconds
whatever the broker does, so an effect whose nudge was lost (broker down, worker restarted) or
whose retry comes due later (backoff) is delivered without waiting for another nudge. Several
workers may run at once: ``deliver_due`` claims rows so each is attempted by one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kombu.connection import Connection
from kombu.mixins import ConsumerMixin

from hub.context import HubContext
from hub.services import outbox, reconcile

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3.0


def deliver_once(ctx: HubContext, limit: int = 100) -> dict[str, int]:
    """One delivery pass (a nudge or a sweep); never raises: the next pass retries."""
    try:
        counts = outbox.deliver_due(ctx, limit=limit)
    except Exception:  # the store may be briefly unavailable; the next pass tries again
        log.exception("outbound delivery pass failed")
        return {}
    if any(counts.values()):
        log.info("outbound delivery: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    _reconcile_in_background(ctx)
    return counts


_reconciling = threading.Lock()


def _reconcile_in_background(ctx: HubContext) -> None:
    """A system whose breaker closed again is re-read (``hub.services.reconcile``) in a thread of
    its own: a slow system's sweep (综合执法: ~0.8 s a call) must not hold up delivery. One
    sweep at a time per process."""
    if not _reconciling.acquire(blocking=False):
        return

    def run() -> None:
        try:
            reconcile.reconcile_flagged(ctx)
        except Exception:  # logged; the flag was cleared, an admin can run it by hand
            log.exception("reconciliation sweep failed")
        finally:
            _reconciling.release()

    try:
        if not reconcile.any_flagged(ctx):
            _reconciling.release()
            return
        threading.Thread(target=run, name="reconcile", daemon=True).start()
    except Exception:
        _reconciling.release()
        log.exception("could not look for systems to reconcile")


class OutboxWorker(ConsumerMixin):
    def __init__(self, ctx: HubContext, connection: Connection, stop: threading.Event | None = None,
                 sweep_every_s: float = SWEEP_EVERY_S) -> None:
        self.ctx = ctx
        self.connection = connection
        self.stop = stop or threading.Event()
        self.sweep_every_s = sweep_every_s
        self._last_pass = 0.0
        self.passes = 0

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [consumer_cls(queues=[self.ctx.bus.outbound_queue], callbacks=[self.on_message],
                             accept=["json"], prefetch_count=20)]

    def on_message(self, body: dict[str, Any], message: Any) -> None:
        message.ack()  # a nudge carries nothing to lose: the rows stay in the outbox until sent
        self._pass()

    def on_iteration(self) -> None:
        if self.stop.is_set():
            self.should_stop = True
            return
        if time.monotonic() - self._last_pass >= self.sweep_every_s:
            self._pass()

    def _pass(self) -> None:
        self._last_pass = time.monotonic()
        self.passes += 1
        deliver_once(self.ctx)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        log.warning("broker connection error (%s); retrying in %.1fs", type(exc).__name__, interval)


def run_outbox_worker(ctx: HubContext, stop: threading.Event | None = None,
                      sweep_every_s: float = SWEEP_EVERY_S) -> None:
    """Consume outbound nudges until ``stop``. While the broker is unreachable the sweep still runs
    (kombu retries the connection in between), so delivery never depends on the broker."""
    stop = stop or threading.Event()
    sweeper = threading.Thread(target=_sweep_while_disconnected, args=(ctx, stop, sweep_every_s),
                               name="outbox-sweep", daemon=True)
    sweeper.start()
    with ctx.bus.connection() as conn:
        OutboxWorker(ctx, conn, stop, sweep_every_s).run()


def _sweep_while_disconnected(ctx: HubContext, stop: threading.Event, every_s: float) -> None:
    """A slow independent sweep (10x the interval): covers a broker that stays down, when the
    consumer loop above is stuck reconnecting and never reaches ``on_iteration``."""
    while not stop.wait(every_s * 10):
        deliver_once(ctx)
