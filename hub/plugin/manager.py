"""Builds the plugin manager per app: internal plugins, entry points, checks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from hub.facade import SystemTypeRegistry
from hub.plugin import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gridhub.plugins"
# Core behaviour shipped as plugins of the hub itself (datasette's DEFAULT_PLUGINS idea).
INTERNAL_PLUGINS = ("hub.plugin.builtin_matchers", "hub.plugin.builtin_systems")


def build_plugin_manager(blocked: Iterable[str] = (), extra: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A fresh manager: internal plugins, then entry points, then ``extra`` objects (tests).

    ``blocked`` names entry points (or internal module names) that must not load.
    """
    pm = pluggy.PluginManager("gridhub")
    pm.add_hookspecs(hookspecs)
    blocked_set = set(blocked)
    for name in INTERNAL_PLUGINS:
        if name not in blocked_set:
            module = __import__(name, fromlist=["_"])
            pm.register(module, name=name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked_set:
            pm.set_blocked(ep.name)
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        module = ep.load()
        pm.register(module, name=ep.name)
    for obj in extra:
        pm.register(obj)
    pm.check_pending()
    return pm


def build_registry(pm: pluggy.PluginManager) -> SystemTypeRegistry:
    """Collect every plugin's system types; a duplicate key fails start-up."""
    registry = SystemTypeRegistry()
    for impl in pm.hook.hub_register_system_types.get_hookimpls():
        impl.function(registry=_OwnedRegistry(registry, impl.plugin_name))
    return registry


class _OwnedRegistry:
    """Remembers which plugin registered which type (shown by ``hub plugins list``)."""

    def __init__(self, registry: SystemTypeRegistry, owner: str) -> None:
        self._registry = registry
        self._owner = owner

    def register(self, system_type: Any) -> None:
        self._registry.register(system_type, owner=self._owner)


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Name, version and implemented hooks of every registered plugin."""
    dists = {plugin: dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda p: p[0]):
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = dists.get(plugin)
        version = getattr(plugin, "__version__", None) or (dist.version if dist else "")
        rows.append({"name": name, "version": version, "hooks": hooks,
                     "module": plugin.__name__ if isinstance(plugin, ModuleType) else repr(plugin)})
    return rows
