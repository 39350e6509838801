from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.services.inbox import Inbox
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from tests.conftest import make_token
from tests.support.fake_system import FakePlugin, raw


def make_fake_ctx(config: HubConfig, *extra: Any) -> HubContext:
    ctx = build_context(config, extra_plugins=(FakePlugin(), *extra))
    add_fake_system(ctx, "fake", "测试", secret="fake-secret-value")
    return ctx


def add_fake_system(ctx: HubContext, key: str, name: str, *, secret: str | None = None) -> None:
    """One more system of the fake plugin (another department's, for cases that span two)."""
    with ctx.db.session() as s:
        system = upsert_system(ctx, s, {"key": key, "plugin": "fakesys", "name": name,
                                        "credentials": {"secret": secret or f"{key}-secret"}})
        ensure_default_mapping(ctx, s, system)


@pytest.fixture
def fake_ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    ctx = make_fake_ctx(hub_config)
    yield ctx
    ctx.close()


@pytest.fixture
def fake_client(fake_ctx: HubContext) -> Any:
    return create_app(context=fake_ctx).test_client()


@pytest.fixture
def fake_headers(fake_ctx: HubContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(fake_ctx)}"}


def ingest(ctx: HubContext, *records: dict[str, Any]) -> int:
    return Inbox(ctx, "fake").store_many([raw(r) for r in records])
