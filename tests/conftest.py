"""Shared fixtures. The store is SQLite by default; set GRIDHUB_TEST_DATABASE_URL (PostgreSQL) and
GRIDHUB_TEST_BROKER_URL (RabbitMQ) to run the same tests against real services (.ci/run does)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.crypto import generate_key
from hub.migrate import upgrade
from hub.models import Base

# Property tests check behaviour, not speed: on a busy 2-core machine a first call that builds
# pyproj's transformer or jieba's dictionary easily exceeds hypothesis' 200 ms default deadline.
settings.register_profile("gridhub", deadline=None)
settings.load_profile("gridhub")

REPO = Path(__file__).resolve().parent.parent
TEST_DB = os.environ.get("GRIDHUB_TEST_DATABASE_URL", "")
TEST_BROKER = os.environ.get("GRIDHUB_TEST_BROKER_URL", "")
# fast simulators: no artificial latency, no rate limits, police retries 3600x faster
SANDBOX_TEST_OPTIONS: dict[str, Any] = {
    "time_scale": 3600.0,
    "law_latency_s": 0.0,
    "options": {
        "law_enforcement": {"rate_limit_per_s": 0},
        "hotline12345": {"rate_limit_per_s": 0},
        "police_patrol": {"reconcile_min_interval_s": 0},
    },
}


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per session: a SQLite file to copy, or the PostgreSQL database itself."""
    if TEST_DB:
        engine = create_engine(TEST_DB)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        upgrade(TEST_DB)
        return TEST_DB
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def db_url(_template_db: str, tmp_path: Path) -> Iterator[str]:
    if TEST_DB:
        engine = create_engine(TEST_DB)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        yield TEST_DB
    else:
        target = tmp_path / "hub.db"
        shutil.copy(_template_db, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def hub_config(db_url: str, tmp_path: Path) -> HubConfig:
    return HubConfig(database_url=db_url, broker_url=TEST_BROKER or "memory://", var_dir=str(tmp_path / "var"),
                     secret_key=generate_key(), ingest_mode="inline", testing=True, sweep_after_s=0,
                     blocked_plugins=tuple(p for p in os.environ.get("GRIDHUB_BLOCKED_PLUGINS", "").split(",") if p))


@pytest.fixture
def hub_ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    ctx = build_context(hub_config)
    yield ctx
    ctx.close()


@pytest.fixture
def app(hub_ctx: HubContext) -> Any:
    return create_app(context=hub_ctx)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def make_token(ctx: HubContext, role: str = "admin", scope: str = "", name: str = "test") -> str:
    from hub.services.tokens import create_token

    with ctx.db.session() as s:
        return create_token(s, name, role, scope)


@pytest.fixture
def admin_headers(hub_ctx: HubContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(hub_ctx)}"}


GRID_LAYER: dict[str, Any] = {}  # the sandbox's grid layer, built once per test session


class ServedApp:
    """A WSGI app on 127.0.0.1 with an ephemeral port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub_server(app: Any) -> Iterator[ServedApp]:
    served = ServedApp(app)
    yield served
    served.stop()


@pytest.fixture
def sandbox() -> Iterator[Any]:
    """The four simulators in-process on ephemeral ports, fast settings (no latency, no limits)."""
    from sandbox.run import start_all

    cluster = start_all("127.0.0.1", 0, **SANDBOX_TEST_OPTIONS)
    yield cluster
    cluster.stop()


def demo_systems(urls: dict[str, str]) -> list[dict[str, Any]]:
    """sandbox/systems.demo.yaml, re-pointed at the cluster's real URLs."""
    data = yaml.safe_load((REPO / "sandbox" / "systems.demo.yaml").read_text(encoding="utf-8"))
    items = data.get("systems", []) if isinstance(data, dict) else data
    for item in items:
        item["base_url"] = urls[item["key"]]
    return list(items)


def connect_systems(ctx: HubContext, urls: dict[str, str]) -> None:
    from hub.services.mapping_versions import ensure_default_mapping
    from hub.services.systems import upsert_system

    with ctx.db.session() as s:
        for item in demo_systems(urls):
            ensure_default_mapping(ctx, s, upsert_system(ctx, s, item))


@pytest.fixture
def connected(hub_ctx: HubContext, sandbox: Any, hub_server: ServedApp) -> Any:
    """Hub + sandbox wired: every system imported; police pushes to the served hub."""
    connect_systems(hub_ctx, sandbox.urls)
    sandbox.set_police_webhook(f"{hub_server.url}/hooks/police_patrol")
    from hub.gridlayer import GridLayer
    from sandbox.gridlayer import grid_layer

    hub_ctx.cache["grid_layer"] = GRID_LAYER.setdefault("layer", GridLayer.from_geojson(grid_layer()))
    return sandbox
