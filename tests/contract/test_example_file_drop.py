"""Contract of the example file-drop plugin: a file in a folder → poll → ticket + case.

The plugin is not installed through GridHub's entry points; the test registers it the way a
deployment's own package would be loaded, with ``build_context(extra_plugins=…)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import plugins.example_file_drop
from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.models import Case, InboundEvent, InboundStatus, PollCursor, SyncLog, Ticket
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from hub.workers.poller import poll_once

pytestmark = pytest.mark.timeout(60)

SYSTEM = "legacy_inbox"


@pytest.fixture
def inbox_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "outbox"
    folder.mkdir()
    return folder


@pytest.fixture
def ctx(hub_config: HubConfig, inbox_dir: Path) -> Iterator[HubContext]:
    context = build_context(hub_config, extra_plugins=(plugins.example_file_drop,))
    with context.db.session() as s:
        system = upsert_system(context, s, {
            "key": SYSTEM, "plugin": "example_file_drop", "name": "旧系统文件投递", "base_url": "",
            "settings": {"inbox_dir": str(inbox_dir), "batch_size": 2}})
        ensure_default_mapping(context, s, system)
    yield context
    context.close()


def drop(folder: Path, name: str, **fields: Any) -> dict[str, Any]:
    record = {"id": "XF-000123", "version": 1, "title": "流动摊贩占道", "text": "早高峰有流动摊贩占用人行道",
              "category": "0301", "time": "2026-11-23 09:15:02", "lng": 121.4365, "lat": 31.1880,
              "status": "NEW", "address": "徐汇区斜土路1200号", **fields}
    temporary = folder / (name + ".part")
    temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    temporary.rename(folder / name)  # the legacy system's atomic hand-over
    return record


def tickets(ctx: HubContext) -> dict[str, Ticket]:
    with ctx.db.read_session() as s:
        return {t.external_id: t for t in s.scalars(select(Ticket).where(Ticket.system_key == SYSTEM))}


def test_not_registered_by_default(hub_ctx: HubContext) -> None:
    assert "example_file_drop" not in hub_ctx.registry
    assert "city_management" in hub_ctx.registry


def test_a_dropped_file_becomes_a_ticket_and_a_case(ctx: HubContext, inbox_dir: Path) -> None:
    drop(inbox_dir, "20261123-091502-XF-000123-v1.json")
    report = poll_once(ctx, SYSTEM)
    assert (report.read, report.stored) == (1, 1)
    ticket = tickets(ctx)["XF-000123"]
    assert (ticket.seq, ticket.status, ticket.status_code) == (1, "REPORTED", "NEW")
    assert (ticket.category, ticket.category_code) == ("street_vending", "0301")
    assert ticket.title == "流动摊贩占道" and ticket.description == "早高峰有流动摊贩占用人行道"
    assert ticket.lat == pytest.approx(31.1880) and ticket.lng == pytest.approx(121.4365)
    assert ticket.reported_at.isoformat().startswith("2026-11-23T01:15:02")  # Beijing time → UTC
    with ctx.db.read_session() as s:
        case = s.get(Case, ticket.case_id)
        assert case is not None and case.category == "street_vending"
        assert [t.external_id for t in case.tickets] == ["XF-000123"]
    assert poll_once(ctx, SYSTEM).stored == 0  # nothing new: the folder is not re-read
    assert list(inbox_dir.iterdir()) != []  # nothing moved or deleted


def test_newer_versions_win_and_older_ones_arriving_late_do_not(ctx: HubContext, inbox_dir: Path) -> None:
    drop(inbox_dir, "20261123-091502-a.json", status="NEW")
    drop(inbox_dir, "20261123-101502-b.json", version=3, status="DONE")
    drop(inbox_dir, "20261123-101503-c.json", version=2, status="DOING")  # written late by the system
    drop(inbox_dir, "20261123-101504-d.json", id="XF-000124", category="0999", status="VOID")
    poll_once(ctx, SYSTEM)  # batch_size 2: two transactions, the cursor moves with each
    found = tickets(ctx)
    assert (found["XF-000123"].seq, found["XF-000123"].status) == (3, "RESOLVED")
    assert (found["XF-000124"].category, found["XF-000124"].status) == ("other", "CANCELLED")
    with ctx.db.read_session() as s:
        statuses = sorted(e.status for e in s.scalars(select(InboundEvent).where(
            InboundEvent.system_key == SYSTEM)))
        cursor = s.scalar(select(PollCursor.value).where(PollCursor.system_key == SYSTEM))
    assert statuses == sorted([InboundStatus.PROCESSED] * 3 + [InboundStatus.STALE])
    assert cursor == "20261123-101504-d.json"
    assert len({t.case_id for t in found.values()}) == 2


def test_unidentifiable_files_are_quarantined_and_the_rest_goes_on(ctx: HubContext, inbox_dir: Path) -> None:
    (inbox_dir / "20261123-090000-broken.json").write_text("{not json", encoding="utf-8")
    (inbox_dir / "20261123-090001-gbk.json").write_bytes('{"id": "编码"}'.encode("gbk"))
    (inbox_dir / "20261123-090002-notes.txt").write_text("ignored", encoding="utf-8")
    drop(inbox_dir, "20261123-090003-ok.json")
    poll_once(ctx, SYSTEM)
    with ctx.db.read_session() as s:
        quarantined = [e.error_reason for e in s.scalars(select(InboundEvent).where(
            InboundEvent.status == InboundStatus.QUARANTINED))]
    assert len(quarantined) == 2 and any("UTF-8" in reason for reason in quarantined)
    assert set(tickets(ctx)) == {"XF-000123"}


def test_a_missing_folder_is_a_transient_failure_and_nothing_is_lost(ctx: HubContext, inbox_dir: Path,
                                                                     tmp_path: Path) -> None:
    away = tmp_path / "away"
    inbox_dir.rename(away)  # the network share is gone
    poll_once(ctx, SYSTEM)
    with ctx.db.read_session() as s:
        log = s.scalars(select(SyncLog).where(SyncLog.system_key == SYSTEM)).one()
    assert not log.ok and log.error_kind == "transient"
    away.rename(inbox_dir)
    drop(inbox_dir, "20261123-091502-a.json")
    poll_once(ctx, SYSTEM)
    assert set(tickets(ctx)) == {"XF-000123"}


def test_fetch_and_test_connection(ctx: HubContext, inbox_dir: Path) -> None:
    from hub.services.systems import connector_for, get_system

    drop(inbox_dir, "a.json", version=1)
    drop(inbox_dir, "b.json", version=4, status="DOING")
    with ctx.db.read_session() as s:
        connector: Any = connector_for(ctx, get_system(s, SYSTEM))
    record = connector.fetch("XF-000123")
    assert record is not None and record.version == 4 and record.event_id == "XF-000123@4"
    assert connector.fetch("XF-999999") is None
    report = connector.test_connection()
    assert report.ok and report.detail["files"] == 2
