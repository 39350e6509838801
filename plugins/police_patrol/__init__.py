"""GridHub plugin: 公安巡防联动警情系统 (shared/world/police_patrol.md).

Registers the ``police_patrol`` system type: pushed (signed webhooks, at least once, not
ordered) with reconciliation by polling the incident list; written: status effects become
feedback on handed-over 警情 (see ``outbound``).
"""

from __future__ import annotations

from pathlib import Path

import mappings
from hub.facade import OP_STATUS, SystemType, SystemTypeRegistry, hookimpl
from plugins.police_patrol.connector import factory
from plugins.police_patrol.outbound import STATUS_LABELS

__version__ = "1.0.0"

SYSTEM_TYPE = "police_patrol"


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the police linkage-incident system."""
    registry.register(SystemType(
        key=SYSTEM_TYPE,
        title="公安巡防联动警情系统",
        connector_factory=factory,
        default_mapping=Path(mappings.__file__).parent / "defaults" / f"{SYSTEM_TYPE}.yaml",
        pull=True,
        push=True,
        credential_fields=("webhook_secret", "feedback_token"),
        status_labels=STATUS_LABELS,
        description="联动类警情推送（签名 webhook，至少一次、无序）＋ 定时对账",
        version=__version__,
        operations=(OP_STATUS,),
    ))
