"""The sandbox district's grid layer (单元网格) as GeoJSON, the file a centre gives GridHub.

The 数字城管 simulator assigns grid codes by its own deterministic rule over 100 m cells of
EPSG:4549 (``city_management_rules.grid_code``); this writes the same cells as WGS-84 polygons,
so the hub gives a 12345 order or a police 警情 at a point the grid 数字城管 would give it.

    python -m sandbox.gridlayer --out var/grid_layer.geojson
"""

from __future__ import annotations

import argparse
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from pyproj import Transformer

from sandbox.city_management_rules import grid_code
from sandbox.geo import BOUNDS, wgs84_to_epsg4549

CELL_M = 100.0
MARGIN_M = 500.0


@lru_cache(maxsize=1)
def _to_wgs84() -> Transformer:
    return Transformer.from_crs("EPSG:4549", "EPSG:4326", always_xy=True)


def _corner(x_northing: float, y_easting: float) -> list[float]:
    lng, lat = _to_wgs84().transform(y_easting, x_northing)
    return [round(lng, 7), round(lat, 7)]


def grid_layer(bounds: tuple[float, float, float, float] = BOUNDS, margin_m: float = MARGIN_M) -> dict[str, Any]:
    """A FeatureCollection of every 100 m grid cell covering ``bounds`` (WGS-84) plus a margin."""
    corners = [wgs84_to_epsg4549(lng, lat) for lng in (bounds[0], bounds[2]) for lat in (bounds[1], bounds[3])]
    x0 = math.floor((min(c[0] for c in corners) - margin_m) / CELL_M) * CELL_M
    x1 = math.ceil((max(c[0] for c in corners) + margin_m) / CELL_M) * CELL_M
    y0 = math.floor((min(c[1] for c in corners) - margin_m) / CELL_M) * CELL_M
    y1 = math.ceil((max(c[1] for c in corners) + margin_m) / CELL_M) * CELL_M
    features = []
    x = x0
    while x < x1:
        y = y0
        while y < y1:
            code = grid_code(x + CELL_M / 2, y + CELL_M / 2)
            ring = [_corner(x, y), _corner(x, y + CELL_M), _corner(x + CELL_M, y + CELL_M), _corner(x + CELL_M, y)]
            features.append({"type": "Feature", "properties": {"code": code},
                             "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}})
            y += CELL_M
        x += CELL_M
    return {"type": "FeatureCollection", "name": "sandbox 单元网格", "features": features}


def write(path: Path) -> int:
    data = grid_layer()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return len(data["features"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(f"{write(args.out)} grids written to {args.out}")


if __name__ == "__main__":
    main()
