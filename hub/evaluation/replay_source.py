"""The evaluation replay source: an internal system type whose records are canonical JSONL
lines already normalized by the loader. It exists only inside ``hub dedup eval``'s own store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from hub.facade import (
    ConnectionReport,
    CursorStore,
    ExternalRef,
    InboundSink,
    PollReport,
    RawRecord,
    SystemConfig,
    SystemType,
    SystemTypeRegistry,
    TicketView,
    hookimpl,
)
from mappings import load_taxonomy

SYSTEM_TYPE = "jsonl_replay"


def mapping_document() -> dict[str, Any]:
    """Moves the loader's canonical values into place; categories through an identity table."""
    codes = sorted(load_taxonomy().codes)
    return {
        "system": SYSTEM_TYPE,
        "title": "评估回放（规范工单 JSONL）",
        "payload": "json",
        "fields": {
            "external_id": {"path": "id"},
            "title": {"path": "title", "transforms": ["clean_text"]},
            "description": {"path": "description", "transforms": ["clean_text"]},
            "category": {"path": "category", "code_table": "canonical"},
            "category_code": {"path": "category_code"},
            "status": {"const": "REPORTED"},
            "status_code": {"const": "-"},
            "reported_at": {"path": "reported_at", "transforms": ["iso_time"]},
            "address": {"path": "address", "transforms": ["clean_text"]},
            "reporter_phone": {"path": "phone"},
            "origin_system": {"path": "system"},
        },
        "location": {"paths": {"lng": "lng", "lat": "lat"}, "datum": "wgs84"},
        "code_tables": {"canonical": {code: code for code in codes}},
        "status_map": {"inbound": {}, "ignore": [], "outbound": {}},
        "system_vocabulary": {"statuses": [], "codes": {"canonical": codes}},
    }


class _NoConnector:
    """Records arrive from the loader, never from a remote system."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config

    def test_connection(self) -> ConnectionReport:
        return ConnectionReport(True, "replay source")

    def fetch(self, external_id: str) -> RawRecord | None:
        return None

    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        return PollReport()


class ReplaySourcePlugin:
    def __init__(self, mapping_path: Path) -> None:
        self.mapping_path = mapping_path
        mapping_path.write_text(yaml.safe_dump(mapping_document(), allow_unicode=True, sort_keys=False),
                                encoding="utf-8")

    @hookimpl
    def hub_register_system_types(self, registry: SystemTypeRegistry) -> None:
        registry.register(SystemType(key=SYSTEM_TYPE, title="评估回放", connector_factory=_NoConnector,
                                     default_mapping=self.mapping_path))

    @hookimpl
    def hub_ticket_references(self, ticket: TicketView) -> Sequence[ExternalRef] | None:
        if ticket.system_type != SYSTEM_TYPE:
            return None
        return [ExternalRef(SYSTEM_TYPE, f"{ref['system']}:{ref['external_id']}")
                for ref in ticket.payload.get("refs") or () if isinstance(ref, dict)]
