"""HubContext: everything a service needs, built once per app or worker, no module globals."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hub.config import HubConfig
from hub.crypto import SecretBox
from hub.db import Database
from hub.facade import SystemTypeRegistry
from hub.gridlayer import GridLayer, layer_for
from hub.plugin.manager import build_plugin_manager, build_registry

log = logging.getLogger(__name__)

# the streaming dedup matcher registers under this name; blocking it leaves explicit references only
DEDUP_PLUGIN = "gridhub.dedup"


@dataclass
class HubContext:
    config: HubConfig
    db: Database
    pm: pluggy.PluginManager
    registry: SystemTypeRegistry
    box: SecretBox
    bus: Any = None  # hub.workers.bus.Bus, set by build_context
    dedup: Any = None  # hub.dedup.engine.DedupEngine, unless the "gridhub.dedup" plugin is blocked
    cache: dict[str, Any] = field(default_factory=dict)

    def grids(self) -> GridLayer:
        """The grid layer, read once per process (``hub.gridlayer``)."""
        layer = self.cache.get("grid_layer")
        if layer is None:
            layer = self.cache["grid_layer"] = layer_for(self.config.var_path, self.config.grid_layer)
        assert isinstance(layer, GridLayer)
        return layer

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
        self.db.dispose()


def build_context(config: HubConfig, extra_plugins: tuple[Any, ...] = ()) -> HubContext:
    """Build the plugin manager, registry, store and bus for one process (app or worker)."""
    from hub.services.transforms import install_plugin_transforms
    from hub.workers.bus import Bus

    config.var_path.mkdir(parents=True, exist_ok=True)
    pm = build_plugin_manager(blocked=config.blocked_plugins, extra=extra_plugins)
    registry = build_registry(pm)
    install_plugin_transforms(pm)
    ctx = HubContext(config=config, db=Database(config.database_url), pm=pm, registry=registry,
                     box=SecretBox(config.secret_key))
    ctx.bus = Bus(config.broker_url, config.var_path)
    if DEDUP_PLUGIN not in config.blocked_plugins:
        from pathlib import Path

        from hub.dedup.engine import DedupEngine
        from hub.dedup.model import load_model
        from mappings import load_taxonomy

        model = load_model(Path(config.dedup_model) if config.dedup_model else None)
        ctx.dedup = DedupEngine(model, load_taxonomy(), ctx.box.keyed_hash)
        pm.register(ctx.dedup, name=DEDUP_PLUGIN)
    return ctx
