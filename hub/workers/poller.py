"""The poller: one thread per enabled pulled system, each on its own interval."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import select

from hub.context import HubContext
from hub.facade import PollReport, error_kind
from hub.models import SyncLog, System, utcnow
from hub.services.inbox import Inbox
from hub.services.systems import connector_for, system_type_of

log = logging.getLogger("hub.poller")


def poll_once(ctx: HubContext, system_key: str) -> PollReport:
    """Run one poll of one system, record the result in the sync log."""
    started: datetime = utcnow()
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == system_key))
        if system is None:
            raise KeyError(system_key)
        connector = connector_for(ctx, system)
    inbox = Inbox(ctx, system_key)
    report = PollReport()
    ok, kind, detail = True, "", ""
    try:
        report = connector.poll(inbox, inbox, log)  # type: ignore[attr-defined]
        detail = f"read {report.read}, new {report.stored}"
    except Exception as exc:  # connectors raise adapters' classified errors; anything else is a bug
        ok, kind, detail = False, error_kind(exc), f"{type(exc).__name__}: {exc}"
        log.warning("poll %s failed (%s): %s", system_key, kind, detail)
    with ctx.db.session() as s:
        s.add(SyncLog(system_key=system_key, operation="poll", ok=ok, stored=report.stored,
                      detail=detail[:1000], error_kind=kind, started_at=started, finished_at=utcnow()))
    return report


def pulled_systems(ctx: HubContext) -> list[str]:
    with ctx.db.read_session() as s:
        systems = list(s.scalars(select(System).where(System.enabled.is_(True)).order_by(System.key)))
        return [x.key for x in systems if system_type_of(ctx, x).pull]


def _loop(ctx: HubContext, system_key: str, stop: threading.Event) -> None:
    while not stop.is_set():
        interval = 30.0
        try:
            with ctx.db.read_session() as s:
                system = s.scalar(select(System).where(System.key == system_key))
                interval = float(system.poll_interval_s) if system else 30.0
            report = poll_once(ctx, system_key)
            if report.more:
                interval = 0.2  # catch up before waiting
        except Exception:  # keep the loop alive whatever one run does; it is logged
            log.exception("poll loop of %s", system_key)
        stop.wait(interval)


SWEEP_INTERVAL_S = 60.0


def _sweep_loop(ctx: HubContext, stop: threading.Event) -> None:
    """The deadline sweep (escalation, overdue and due-soon notices) rides along with the poller."""
    from hub.services.escalation import sweep_quietly

    while not stop.wait(SWEEP_INTERVAL_S):
        sweep_quietly(ctx)


METRICS_INTERVAL_S = 60.0


def _metrics_loop(ctx: HubContext, stop: threading.Event) -> None:
    """The metrics rollup's incremental refresh rides along too (days touched since its watermark)."""
    from hub.services.metrics import refresh_quietly

    while not stop.wait(METRICS_INTERVAL_S):
        refresh_quietly(ctx)


def run_poller(ctx: HubContext, stop: threading.Event, only: list[str] | None = None) -> list[threading.Thread]:
    threads = []
    if not only:
        sweeper = threading.Thread(target=_sweep_loop, args=(ctx, stop), name="deadline-sweep", daemon=True)
        sweeper.start()
        threads.append(sweeper)
        rollup = threading.Thread(target=_metrics_loop, args=(ctx, stop), name="metrics-rollup", daemon=True)
        rollup.start()
        threads.append(rollup)
    for key in only or pulled_systems(ctx):
        t = threading.Thread(target=_loop, args=(ctx, key, stop), name=f"poll-{key}", daemon=True)
        t.start()
        threads.append(t)
    return threads
