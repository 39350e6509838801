"""Helpers the plugin contract tests share: configure one sandbox system, switch its faults."""

from __future__ import annotations

from typing import Any

import requests

from hub.context import HubContext
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
