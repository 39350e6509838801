"""Contract tests check what each plugin delivers: every record becomes exactly one ticket at its
newest version, explicit references link, faults lose nothing. Whether two *different* sandbox
records describe the same incident is the similarity matcher's business (tests/unit/hub/dedup and
the integration suite); the sandbox's random traffic can put two look-alike incidents side by
side, so here the dedup matcher is blocked and every record keeps its own case."""

from __future__ import annotations

import dataclasses

import pytest

from hub.config import HubConfig
from hub.context import DEDUP_PLUGIN


@pytest.fixture
def hub_config(hub_config: HubConfig) -> HubConfig:
    return dataclasses.replace(hub_config, blocked_plugins=(*hub_config.blocked_plugins, DEDUP_PLUGIN))
