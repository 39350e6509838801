"""数字城管 (数字化城市管理信息系统): pulled over REST/JSON with OAuth2 client credentials.

Registers the ``city_management`` system type (status, create, note and merge effects are
delivered: ``outbound``) and the cross-references its cases carry (``source`` 03: the 12345 work
order it was transferred from; ``source`` 07: the hub's own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mappings
from hub.facade import HUB_SYSTEM_TYPE, ExternalRef, SystemType, SystemTypeRegistry, TicketView, hookimpl
from plugins.city_management.connector import CityManagementConnector
from plugins.city_management.outbound import OPERATIONS, STATUS_LABELS

__version__ = "1.0.0"

SYSTEM_TYPE = "city_management"

SOURCE_HOTLINE = "03"  # 12345转办: externalNo is the 12345 gdbh
SOURCE_GRID = "07"  # 网格上报: externalNo is the hub's own number


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the 数字城管 system type."""
    registry.register(SystemType(
        key=SYSTEM_TYPE,
        title="数字化城市管理信息系统（数字城管）",
        connector_factory=CityManagementConnector,
        default_mapping=Path(mappings.__file__).parent / "defaults" / f"{SYSTEM_TYPE}.yaml",
        pull=True,
        push=False,
        credential_fields=("client_id", "client_secret"),
        status_labels=STATUS_LABELS,
        description="案卷按 updateTime 增量拉取（OAuth2 客户端凭证，偏移分页的移动集合按时间键续读）；"
                    "网格上报建案、核查、作废与补充经接口写回。",
        version=__version__,
        operations=OPERATIONS,
    ))


@hookimpl
def hub_ticket_references(ticket: TicketView) -> Sequence[ExternalRef] | None:
    """A 12345 transfer (``source`` 03) points at its work order; a grid report (07) at the hub."""
    if ticket.system_type != SYSTEM_TYPE:
        return None
    source = str(ticket.payload.get("source") or "")
    external_no = str(ticket.payload.get("externalNo") or "").strip()
    if not external_no:
        return []
    if source == SOURCE_HOTLINE:
        return [ExternalRef("hotline12345", external_no, "transferred_from")]
    if source == SOURCE_GRID:
        return [ExternalRef(HUB_SYSTEM_TYPE, external_no, "created_by_hub")]
    return []
