"""GridHub plugin: 12345 市民服务热线工单系统 (shared/world/hotline12345.md).

Registers the ``hotline12345`` system type (pulled: signed change feed; written: status effects
become gateway actions, see ``outbound``) and the explicit reference a 重复件 carries to its
master work order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mappings
from hub.facade import ExternalRef, SystemType, SystemTypeRegistry, TicketView, hookimpl
from plugins.hotline12345.connector import factory
from plugins.hotline12345.outbound import OPERATIONS, STATUS_LABELS

__version__ = "1.0.0"

SYSTEM_TYPE = "hotline12345"
DUPLICATE_STATUS = "80"


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the 12345 work-order system."""
    registry.register(SystemType(
        key=SYSTEM_TYPE,
        title="12345 市民服务热线工单系统",
        connector_factory=factory,
        default_mapping=Path(mappings.__file__).parent / "defaults" / f"{SYSTEM_TYPE}.yaml",
        pull=True,
        push=False,
        credential_fields=("app_key", "app_secret"),
        status_labels=STATUS_LABELS,
        description="12345 工单开放接口 v2：签名请求读取变更流，回写签收/延期/办结/退单/重复件（承办单位网关）",
        version=__version__,
        operations=OPERATIONS,
    ))


@hookimpl
def hub_ticket_references(ticket: TicketView) -> Sequence[ExternalRef] | None:
    """A 重复件 (``zt`` 80) names its master work order in ``zgdbh``: it joins the master's case."""
    if ticket.system_type != SYSTEM_TYPE:
        return None
    master = ticket.payload.get("zgdbh")
    if ticket.payload.get("zt") != DUPLICATE_STATUS or not isinstance(master, str) or not master.strip():
        return None
    return [ExternalRef(system_type=SYSTEM_TYPE, external_id=master.strip(), relation="duplicate_of")]
