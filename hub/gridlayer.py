"""The grid layer (单元网格): which unit grid a point lies in, for records that carry no grid code.

Why: jurisdiction is a grid-code prefix (district → street → community → grid). 数字城管 gives
its cases their grid, but a 12345 work order, a police 警情 or a 综合执法 clue only has a point;
without a grid such a case is invisible to every street's operators and cannot be routed by
place. The centre holds its grid layer (the 单元网格 polygons the 数字城管 platform is built on);
GridHub reads it as GeoJSON: a ``FeatureCollection`` of ``Polygon``/``MultiPolygon`` features in
WGS-84 with the 15-digit code in ``properties.code`` (``name`` optional). The file is named by
``GRIDHUB_GRID_LAYER`` (default ``{var}/grid_layer.geojson``; none: grids stay as the systems
give them). An admin updates the layer by replacing the file; workers read it at start.

Lookup: polygons are bucketed by a 0.005° cell of their bounding box, so a point is tested only
against the few polygons of its bucket (even-odd ray casting; a point on a shared edge goes to one
of the two grids, deterministically).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUCKET_DEG = 0.005
Ring = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Grid:
    code: str
    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]  # outer rings of its polygons (holes ignored)
    bbox: tuple[float, float, float, float]


def _inside(lng: float, lat: float, ring: Ring) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lng < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


class GridLayer:
    def __init__(self, grids: Iterable[Grid]) -> None:
        self.grids = sorted(grids, key=lambda g: g.code)
        self._buckets: dict[tuple[int, int], list[Grid]] = defaultdict(list)
        for grid in self.grids:
            x0, y0, x1, y1 = grid.bbox
            for bx in range(math.floor(x0 / BUCKET_DEG), math.floor(x1 / BUCKET_DEG) + 1):
                for by in range(math.floor(y0 / BUCKET_DEG), math.floor(y1 / BUCKET_DEG) + 1):
                    self._buckets[(bx, by)].append(grid)

    def __len__(self) -> int:
        return len(self.grids)

    def locate(self, lng: float | None, lat: float | None) -> str:
        """The code of the grid holding the point (WGS-84), or "" outside the layer."""
        if lng is None or lat is None or not (math.isfinite(lng) and math.isfinite(lat)):
            return ""
        for grid in self._buckets.get((math.floor(lng / BUCKET_DEG), math.floor(lat / BUCKET_DEG)), ()):
            x0, y0, x1, y1 = grid.bbox
            if x0 <= lng <= x1 and y0 <= lat <= y1 and any(_inside(lng, lat, r) for r in grid.rings):
                return grid.code
        return ""

    @classmethod
    def from_geojson(cls, data: dict[str, Any]) -> GridLayer:
        grids = []
        for n, feature in enumerate(data.get("features") or []):
            props = feature.get("properties") or {}
            code = str(props.get("code") or "").strip()
            geometry = feature.get("geometry") or {}
            kind, coords = geometry.get("type"), geometry.get("coordinates")
            polygons: list[Any] | None = ([coords] if kind == "Polygon" and coords
                                          else list(coords) if kind == "MultiPolygon" and coords else None)
            if not code or not polygons:
                raise ValueError(f"grid layer feature {n}: needs properties.code and a Polygon/MultiPolygon")
            rings = tuple(tuple((float(x), float(y)) for x, y, *_ in polygon[0]) for polygon in polygons)
            xs = [p[0] for r in rings for p in r]
            ys = [p[1] for r in rings for p in r]
            grids.append(Grid(code, str(props.get("name") or ""), rings, (min(xs), min(ys), max(xs), max(ys))))
        return cls(grids)

    @classmethod
    def load(cls, path: Path) -> GridLayer:
        layer = cls.from_geojson(json.loads(path.read_text(encoding="utf-8")))
        log.info("grid layer %s: %d grids", path, len(layer))
        return layer


EMPTY = GridLayer(())


def layer_for(var_dir: Path, configured: str = "") -> GridLayer:
    """The configured layer file, or ``{var}/grid_layer.geojson``, or an empty layer. A broken
    file is logged and treated as no layer (ingestion must not stop over it)."""
    path = Path(configured) if configured else var_dir / "grid_layer.geojson"
    if not path.exists():
        if configured:
            log.warning("grid layer %s does not exist: grids stay as the systems give them", path)
        return EMPTY
    try:
        return GridLayer.load(path)
    except (ValueError, OSError, json.JSONDecodeError, TypeError, IndexError) as exc:
        log.error("grid layer %s cannot be read (%s): grids stay as the systems give them", path, exc)
        return EMPTY


__all__ = ["EMPTY", "Grid", "GridLayer", "layer_for"]
