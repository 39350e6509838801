"""Helpers the plugin contract tests share: configure one sandbox system, switch its faults."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import Case, InboundEvent, SyncLog, Ticket
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from tests.conftest import demo_systems


def configure_system(ctx: HubContext, cluster: Any, key: str, settings: dict[str, Any] | None = None,
                     **changes: Any) -> None:
    """(Re)configure one system from sandbox/systems.demo.yaml, pointed at the cluster;
    ``settings`` are merged into the demo settings, ``changes`` replace top-level keys."""
    item = next(i for i in demo_systems(cluster.urls) if i["key"] == key)
    item["settings"] = {**(item.get("settings") or {}), **(settings or {})}
    item.update(changes)
    with ctx.db.session() as s:
        ensure_default_mapping(ctx, s, upsert_system(ctx, s, item))


def put_faults(cluster: Any, key: str, **faults: Any) -> None:
    """Switch a simulator's faults (none given: reset them)."""
    url = f"{cluster.control_urls[key]}/_sandbox/faults"
    answer = requests.put(url, json=faults, timeout=5) if faults else requests.delete(url, timeout=5)
    assert answer.status_code == 200


def held_tickets(ctx: HubContext, key: str) -> dict[str, dict[str, Any]]:
    """The hub's tickets of one system by external id, with what contract tests compare."""
    with ctx.db.read_session() as s:
        rows = s.scalars(select(Ticket).where(Ticket.system_key == key))
        return {t.external_id: {"seq": t.seq, "status": t.status, "status_code": t.status_code,
                                "category": t.category, "description": t.description, "address": t.address,
                                "case_id": t.case_id, "raw": t.raw_payload,
                                "aliases": sorted((a.kind, a.value) for a in t.aliases)} for t in rows}


def inbound_rows(ctx: HubContext, key: str) -> list[tuple[str, str, str]]:
    """(event id, status, reason) of every inbox row of one system, in arrival order."""
    with ctx.db.read_session() as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.system_key == key).order_by(InboundEvent.id))
        return [(e.event_id, e.status, e.error_reason) for e in rows]


def case_count(ctx: HubContext) -> int:
    with ctx.db.read_session() as s:
        return s.scalar(select(func.count(Case.id))) or 0


def sync_failures(ctx: HubContext, key: str) -> list[tuple[str, str]]:
    """(error kind, detail) of every failed poll of one system."""
    with ctx.db.read_session() as s:
        rows = s.scalars(select(SyncLog).where(SyncLog.system_key == key, SyncLog.ok.is_(False)))
        return [(r.error_kind, r.detail) for r in rows]
