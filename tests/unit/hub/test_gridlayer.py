"""The grid layer gives a grid (and so a jurisdiction) to records that only carry a point."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.gridlayer import EMPTY, GridLayer, layer_for
from hub.models import Case
from sandbox.city_management_rules import grid_code
from sandbox.geo import BOUNDS, wgs84_to_epsg4549
from sandbox.gridlayer import grid_layer, write
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest, make_fake_ctx


@pytest.fixture(scope="module")
def layer() -> GridLayer:
    return GridLayer.from_geojson(grid_layer())


def test_a_point_gets_the_grid_数字城管_would_give_it(layer: GridLayer) -> None:
    rng = random.Random(7)
    for _ in range(500):
        lng, lat = rng.uniform(BOUNDS[0], BOUNDS[2]), rng.uniform(BOUNDS[1], BOUNDS[3])
        assert layer.locate(lng, lat) == grid_code(*wgs84_to_epsg4549(lng, lat))
    assert layer.locate(116.4, 39.9) == "" and layer.locate(None, None) == ""
    assert layer.locate(float("nan"), 31.19) == ""


def test_a_broken_or_missing_layer_changes_nothing(tmp_path: Path) -> None:
    assert layer_for(tmp_path) is EMPTY
    (tmp_path / "grid_layer.geojson").write_text(json.dumps({"features": [{"properties": {}}]}))
    assert layer_for(tmp_path) is EMPTY
    with pytest.raises(ValueError, match=r"properties\.code"):
        GridLayer.from_geojson({"features": [{"properties": {"code": "1"}, "geometry": {"type": "Point"}}]})


def test_ingest_gives_a_pinned_record_without_a_grid_its_grid(hub_config: HubConfig, tmp_path: Path) -> None:
    write(Path(hub_config.var_dir) / "grid_layer.geojson")
    ctx = make_fake_ctx(hub_config)
    try:
        ingest(ctx, record("P1", lng=121.4550, lat=31.1920, grid=""), record("P2", grid="310104001001001"))
        with ctx.db.read_session() as s:
            cases = {c.title: c.grid_code for c in s.scalars(select(Case))}
        assert cases["标题P1"] == grid_code(*wgs84_to_epsg4549(121.4550, 31.1920))
        assert cases["标题P2"] == "310104001001001"  # a system's own grid is kept
    finally:
        ctx.close()
