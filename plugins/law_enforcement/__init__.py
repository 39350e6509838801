"""综合执法 (综合行政执法办案平台): pulled, XML over HTTP in GBK.

Registers the ``law_enforcement`` system type (it reads cases, transfers clues and adds remarks)
and the cross-references its cases carry (``Source`` 12345: the work order the clue came from;
``Source`` 网格: the hub's own transfer).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mappings
from hub.facade import HUB_SYSTEM_TYPE, ExternalRef, SystemType, SystemTypeRegistry, TicketView, hookimpl
from plugins.law_enforcement.connector import LawEnforcementConnector, decode_case
from plugins.law_enforcement.outbound import OPERATIONS

__version__ = "1.0.0"

SYSTEM_TYPE = "law_enforcement"

STATUS_LABELS = {
    "XSDJ": "线索登记",
    "HC": "核查中",
    "LA": "立案",
    "DCQZ": "调查取证",
    "SC": "审查",
    "CFJD": "处罚决定",
    "ZX": "执行",
    "JA": "结案",
    "BYLA": "不予立案",
    "YS": "移送其他部门",
}

SOURCE_HOTLINE = "12345"
SOURCE_GRID = "网格"


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the 综合执法 system type."""
    registry.register(SystemType(
        key=SYSTEM_TYPE,
        title="综合行政执法办案平台（综合执法）",
        connector_factory=LawEnforcementConnector,
        default_mapping=Path(mappings.__file__).parent / "defaults" / f"{SYSTEM_TYPE}.yaml",
        decode=decode_case,
        pull=True,
        push=False,
        credential_fields=("user", "password"),
        status_labels=STATUS_LABELS,
        description="QueryCases 按 Modified 增量拉取（GBK XML；每次从游标所在秒整秒重读，防同秒漏读）。",
        version=__version__,
        # TransferClue and AddRemark; nobody outside may change a case's status
        operations=OPERATIONS,
    ))


@hookimpl
def hub_ticket_references(ticket: TicketView) -> Sequence[ExternalRef] | None:
    """A clue from 12345 points at its work order; a clue the hub transferred (网格) at the hub."""
    if ticket.system_type != SYSTEM_TYPE:
        return None
    source = str(ticket.payload.get("Source") or "").strip()
    external_no = str(ticket.payload.get("ExternalNo") or "").strip()
    if not external_no:
        return []
    if source == SOURCE_HOTLINE:
        return [ExternalRef("hotline12345", external_no, "transferred_from")]
    if source == SOURCE_GRID:
        return [ExternalRef(HUB_SYSTEM_TYPE, external_no, "created_by_hub")]
    return []
