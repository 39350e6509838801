"""Configured systems: import/export, decrypted configs for connectors, connector cache."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import Connector, HubError, SystemConfig, SystemType
from hub.models import System
from hub.services import txcache

log = logging.getLogger(__name__)

SECRET_PLACEHOLDER = "***"
EDITABLE = ("name", "base_url", "enabled", "poll_interval_s", "settings")


class SystemNotFound(HubError):
    pass


def get_system(session: Session, key: str) -> System:
    system = session.scalar(select(System).where(System.key == key))
    if system is None:
        raise SystemNotFound(f"no system {key!r}")
    return system


def upsert_system(ctx: HubContext, session: Session, data: dict[str, Any]) -> System:
    """Create or update a system from a config dict (the YAML of ``hub systems import``).

    Credentials given as ``***`` keep the stored value: exported files can be re-imported.
    """
    key = str(data["key"])
    plugin = str(data.get("plugin", key))
    ctx.registry.get(plugin)  # fails clearly when no plugin offers this type
    txcache.forget(session)
    system = session.scalar(select(System).where(System.key == key))
    if system is None:
        system = System(key=key, plugin=plugin, name=str(data.get("name", key)))
        session.add(system)
    system.plugin = plugin
    for attr in EDITABLE:
        if attr in data:
            setattr(system, attr, data[attr])
    creds = data.get("credentials")
    if creds:
        current = ctx.box.open_json(system.credentials_encrypted) or {}
        merged = {k: (current.get(k, "") if v == SECRET_PLACEHOLDER else str(v)) for k, v in creds.items()}
        system.credentials_encrypted = ctx.box.seal_json(merged)
    session.flush()
    ctx.cache.pop(f"connector:{key}", None)
    return system


def export_system(ctx: HubContext, system: System) -> dict[str, Any]:
    """A config dict with credentials masked (secrets never leave the hub)."""
    creds = ctx.box.open_json(system.credentials_encrypted) or {}
    return {
        "key": system.key, "plugin": system.plugin, "name": system.name, "base_url": system.base_url,
        "enabled": system.enabled, "poll_interval_s": system.poll_interval_s,
        "settings": system.settings or {},
        "credentials": {k: SECRET_PLACEHOLDER for k in sorted(creds)},
    }


def system_config(ctx: HubContext, system: System) -> SystemConfig:
    return SystemConfig(
        key=system.key, plugin=system.plugin, name=system.name, base_url=system.base_url,
        credentials=ctx.box.open_json(system.credentials_encrypted) or {},
        settings=dict(system.settings or {}), poll_interval_s=system.poll_interval_s,
    )


def system_type_of(ctx: HubContext, system: System) -> SystemType:
    return ctx.registry.get(system.plugin)


def connector_for(ctx: HubContext, system: System) -> Connector:
    """One connector per system and process (it holds tokens and HTTP sessions)."""
    cache_key = f"connector:{system.key}"
    stamp = system.updated_at
    cached = ctx.cache.get(cache_key)
    if cached is not None and cached[0] == stamp:
        return cached[1]  # type: ignore[no-any-return]
    connector = system_type_of(ctx, system).connector_factory(system_config(ctx, system))
    ctx.cache[cache_key] = (stamp, connector)
    return connector


def list_systems(session: Session) -> list[System]:
    return list(session.scalars(select(System).order_by(System.key)))
