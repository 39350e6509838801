"""Example plugin: a legacy system that drops one JSON file per record into a folder.

Copy this package to start a plugin for a fifth system (README.md walks through it). It is
deliberately not registered in GridHub's own pyproject: a deployment that wants it adds the
entry point in its own package, tests pass it to ``build_context(config, extra_plugins=…)``.
"""

from __future__ import annotations

from pathlib import Path

from hub.facade import SystemType, SystemTypeRegistry, hookimpl
from plugins.example_file_drop.connector import FileDropConnector

__version__ = "1.0.0"

SYSTEM_TYPE = "example_file_drop"

# The legacy system's own status codes, in its own words (shown next to canonical statuses).
STATUS_LABELS = {"NEW": "新登记", "DOING": "处理中", "DONE": "已办结", "VOID": "已作废"}


@hookimpl
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Offer the file-drop system type."""
    registry.register(SystemType(
        key=SYSTEM_TYPE,
        title="文件投递式旧系统（示例）",
        connector_factory=FileDropConnector,
        default_mapping=Path(__file__).parent / "mapping.yaml",
        pull=True,
        push=False,
        credential_fields=(),
        status_labels=STATUS_LABELS,
        description="每条记录一个 JSON 文件，按文件名顺序读取；示例插件。",
        version=__version__,
    ))
