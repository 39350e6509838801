"""Helpers the plugin contract tests share: configure one sandbox system, switch its faults."""

from __future__ import annotations

from typing import Any

import requests
from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import Case, InboundEvent, SyncLog, Ticket
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from mappings import DEFAULTS_DIR
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


def assert_quarantined_for_code(client: Any, headers: dict[str, str], key: str, event_ids: list[str],
                                code: str) -> None:
    """The API lists exactly these events of ``key`` as quarantined by a mapping error on ``code``."""
    listed = client.get(f"/api/v1/inbound-events?status=quarantined&system={key}", headers=headers)
    assert listed.status_code == 200
    items = listed.get_json()["items"]
    assert sorted(i["event_id"] for i in items) == sorted(event_ids)
    assert all(i["error_kind"] == "mapping" and "category" in i["error_reason"] and code in i["error_reason"]
               for i in items)


def add_code_and_replay(client: Any, headers: dict[str, str], key: str, *, after_line: str, new_line: str,
                        vocabulary: tuple[str, str], code: str, comment: str, replayed: int) -> None:
    """As an admin would: add ``new_line`` to the default mapping's category table and ``code``
    to its vocabulary, activate it as a new version, then replay the system's quarantine."""
    document = (DEFAULTS_DIR / f"{key}.yaml").read_text(encoding="utf-8")
    fixed = document.replace(after_line, f"{after_line}\n{new_line}", 1).replace(*vocabulary, 1)
    assert fixed.count(code) == document.count(code) + 2
    created = client.post(f"/api/v1/systems/{key}/mappings", headers=headers,
                          json={"document": fixed, "comment": comment, "activate": True})
    assert created.status_code == 201, created.get_data(as_text=True)
    answer = client.post("/api/v1/inbound-events/replay", headers=headers, json={"system": key})
    assert answer.status_code == 200 and answer.get_json()["counts"] == {"processed": replayed}
