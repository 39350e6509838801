"""Configuration from the environment (12-factor), overridable by a dict in tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_VAR_DIR = "var"


@dataclass(frozen=True)
class HubConfig:
    database_url: str = ""
    broker_url: str = ""
    var_dir: str = DEFAULT_VAR_DIR
    # Fernet key (urlsafe base64 of 32 bytes): encrypts credentials and reporter identity.
    secret_key: str = ""
    # "queue": inbound events are processed by workers through kombu (default);
    # "inline": processed right after they are stored, in the same process (tests, tools).
    ingest_mode: str = "queue"
    blocked_plugins: tuple[str, ...] = ()
    public_url: str = "http://127.0.0.1:8000"
    # Worker sweep: re-queue pending inbound events older than this (a lost message).
    sweep_after_s: int = 30
    # a trained dedup model (``hub dedup train --out``); empty: the shipped default
    dedup_model: str = ""
    # the 单元网格 layer (GeoJSON) that gives a grid to records with a point and no grid code;
    # empty: {var}/grid_layer.geojson when it exists (hub.gridlayer)
    grid_layer: str = ""
    # bearer token Prometheus sends to GET /metrics; empty: the endpoint does not exist (404)
    metrics_token: str = ""
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never shows the secret key
        return f"HubConfig(database_url={self.database_url!r}, broker_url={self.broker_url!r})"

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> HubConfig:
        env = os.environ
        var_dir = env.get("GRIDHUB_VAR_DIR", DEFAULT_VAR_DIR)
        cfg = cls(
            database_url=env.get("GRIDHUB_DATABASE_URL", ""),
            broker_url=env.get("GRIDHUB_BROKER_URL", ""),
            var_dir=var_dir,
            secret_key=env.get("GRIDHUB_SECRET_KEY", ""),
            ingest_mode=env.get("GRIDHUB_INGEST_MODE", "queue"),
            blocked_plugins=tuple(p for p in env.get("GRIDHUB_BLOCKED_PLUGINS", "").split(",") if p),
            public_url=env.get("GRIDHUB_PUBLIC_URL", "http://127.0.0.1:8000"),
            sweep_after_s=int(env.get("GRIDHUB_SWEEP_AFTER_S", "30")),
            dedup_model=env.get("GRIDHUB_DEDUP_MODEL", ""),
            grid_layer=env.get("GRIDHUB_GRID_LAYER", ""),
            metrics_token=env.get("GRIDHUB_METRICS_TOKEN", ""),
        )
        if overrides:
            names = {f.name for f in fields(cls)}
            known = {k: v for k, v in overrides.items() if k in names}
            extra = {k: v for k, v in overrides.items() if k not in names}
            cfg = replace(cfg, **known, extra={**cfg.extra, **extra})
        return cfg.with_defaults()

    def with_defaults(self) -> HubConfig:
        """Embedded defaults: SQLite (WAL) and kombu's filesystem transport under var/."""
        var = Path(self.var_dir)
        db = self.database_url or f"sqlite:///{(var / 'gridhub.db').resolve()}"
        broker = self.broker_url or "filesystem://"
        return replace(self, database_url=db, broker_url=broker)
