"""The hub's own system type: grid workers' reports (网格上报) made in the hub itself.

A report is stored in the inbox as a record of the ``grid`` system and mapped, de-duplicated and
quarantined like any department record (``hub.services.reports``), so this type exists only to
give those records a mapping document and a name. Nothing is pulled from or delivered to it:
``pull``/``push`` are off and ``operations`` is empty, so the sync planner never plans an effect
for it; its connector refuses every call clearly instead of pretending.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mappings
from hub.facade import (
    GRID_REPORT_TYPE,
    HUB_SYSTEM_TYPE,
    ConnectionReport,
    Connector,
    ExternalRef,
    HubError,
    RawRecord,
    SystemConfig,
    SystemType,
    SystemTypeRegistry,
    TicketView,
    hookimpl,
)

GRID_SYSTEM_KEY = "grid"
"""The key of the one ``System`` row of this type (created on the first report, and by the demo)."""
GRID_SYSTEM_NAME = "网格上报"


class GridReportConnector:
    """Reports arrive through ``hub.services.reports``, never through a connector."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config

    def test_connection(self) -> ConnectionReport:
        return ConnectionReport(ok=True, message="网格上报由中枢自身生成，无需连接 (built in, nothing to connect)")

    def fetch(self, external_id: str) -> RawRecord | None:
        # reconciliation has nothing to ask: the hub's inbox already holds the verbatim report
        return None

    def poll(self, *_: object) -> None:
        raise HubError("grid reports are not polled: they are submitted in the hub (hub.services.reports)")


def _connector(config: SystemConfig) -> Connector:
    return GridReportConnector(config)


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the built-in grid report type."""
    registry.register(SystemType(
        key=GRID_REPORT_TYPE,
        title=GRID_SYSTEM_NAME,
        connector_factory=_connector,
        default_mapping=Path(mappings.__file__).parent / "defaults" / "grid_report.yaml",
        pull=False,
        push=False,
        status_labels={"new": "已上报"},
        description="网格员在中枢内上报的问题（手机页面或接口），与各部门记录同样存档、映射、去重。",
        version="1",
        operations=(),
    ))


@hookimpl
def hub_ticket_references(ticket: TicketView) -> Sequence[ExternalRef] | None:
    """A report the worker chose to add to an existing case (``attach_to``, mapped to
    ``external_ref``) points at that hub case, so the cross-reference matcher links it there."""
    if ticket.system_type != GRID_REPORT_TYPE:
        return None
    number = str(ticket.fields.get("external_ref") or "").strip()
    return [ExternalRef(HUB_SYSTEM_TYPE, number, "attached_by_worker")] if number else []
