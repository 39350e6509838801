"""Plugins may add named transforms to the mapping language (hook ``hub_register_transforms``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from mappings import TRANSFORMS, register_transform


def install_plugin_transforms(pm: pluggy.PluginManager) -> None:
    """Register every plugin's transforms; the same function registered again (a second app in
    one process) is fine, a different function under a taken name is an error."""

    def register(name: str, fn: Callable[..., Any], arg_schema: Any = None) -> None:
        existing = TRANSFORMS.get(name)
        if existing is not None and getattr(existing, "fn", None) is fn:
            return
        register_transform(name, fn, arg_schema)

    pm.hook.hub_register_transforms(register=register)
