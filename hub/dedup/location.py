"""Location evidence: points to WGS-84, distances, spatial cells, and weak-location detection.

Spatial cells: H3 (PyPI ``h3`` 4.x, Uber, well kept, binary wheels that installed cleanly)
at resolution 9 (cells of ~174 m edge): ``cell_of`` + ``neighbours`` (``grid_disk`` k=1)
are what blocking uses (chosen over geohash: equal-area hexagons have one ring of neighbours at
one distance, where geohash cells stretch with latitude and have corner neighbours).

Weak location: a missing pin (``no_pin``), a point shared by many unrelated tickets, which
is what a system stores when it only knows the district or street (``shared_point``), and
an address that names only a road (``road_only_address``). Scoring lowers the weight of
location for such tickets instead of trusting a meaningless distance of 0 m.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import h3

from mappings.datum import DATUMS, to_wgs84

H3_RESOLUTION = 9
EARTH_RADIUS_M = 6_371_008.8
# metres per degree for local, flat drawings and bounding boxes (WGS-84 ellipsoid, near 31° N the
# latitude figure is within 0.2 %): a degree of longitude is the equator's figure × cos(latitude)
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LNG_EQUATOR = 111_320.0


def metres_per_degree(lat: float) -> tuple[float, float]:
    """(metres per degree of longitude, of latitude) at ``lat``."""
    return M_PER_DEG_LNG_EQUATOR * math.cos(math.radians(lat)), M_PER_DEG_LAT

NO_PIN = "no_pin"
SHARED_POINT = "shared_point"
ROAD_ONLY_ADDRESS = "road_only_address"


@dataclass(frozen=True, slots=True)
class Location:
    """A WGS-84 point (``None`` without a pin) and why it is weak evidence, if it is."""

    lat: float | None
    lng: float | None
    weak_reason: str | None = None


def normalize_point(datum: str | None, a: float | None, b: float | None) -> tuple[float, float] | None:
    """A point in ``datum`` (``a, b`` = ``lng, lat``, or ``x, y`` for epsg4549) → WGS-84 ``(lat, lng)``.

    Note the order of the result: ``(lat, lng)``, as ``Location`` and the cell functions
    take it. ``None`` for no pin: a missing or non-finite coordinate, ``0, 0`` (a common
    placeholder), an unknown datum, or a result that is not on Earth.
    """
    datum = (datum or "wgs84").lower()
    if a is None or b is None or datum not in DATUMS:
        return None
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(fa) and math.isfinite(fb)) or (fa == 0.0 and fb == 0.0):
        return None
    try:
        lng, lat = to_wgs84(datum, fa, fb)
    except (ValueError, ArithmeticError):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        return None
    return lat, lng


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cell_of(lat: float, lng: float, resolution: int = H3_RESOLUTION) -> str:
    """The H3 cell of a point (the blocking key)."""
    return str(h3.latlng_to_cell(lat, lng, resolution))


def neighbours(cell: str) -> frozenset[str]:
    """An H3 cell and its ring of adjacent cells (``grid_disk`` k=1, 7 cells)."""
    return frozenset(str(c) for c in h3.grid_disk(cell, 1))


_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {c: i for i, c in enumerate(_BASE32)}


class CentroidDetector:
    """Flags points shared by many unrelated tickets (district/street centroids).

    A point is rounded to ``decimals`` (5 → 1e-5°, about 1 m); for each rounded point the
    detector keeps the *distinct* address keys seen there (capped at ``threshold``, so
    memory stays bounded). Several reports of one incident rarely land on the very same
    metre from different systems and datums, while a centroid collects tickets with all
    kinds of addresses. Points within ``radius_m`` of a ``known`` centroid are always weak.
    Thread-safe: workers may share one detector.
    """

    def __init__(
        self,
        threshold: int = 5,
        *,
        decimals: int = 5,
        known: Iterable[tuple[float, float]] = (),
        radius_m: float = 15.0,
    ) -> None:
        self.threshold = max(2, threshold)
        self.decimals = decimals
        self.known = tuple((float(lat), float(lng)) for lat, lng in known)
        self.radius_m = radius_m
        self._seen: dict[tuple[float, float], set[str]] = {}
        self._lock = threading.Lock()

    def _key(self, lat: float, lng: float) -> tuple[float, float]:
        return round(lat, self.decimals), round(lng, self.decimals)

    def observe(self, lat: float, lng: float, address_key: str) -> None:
        """Record that a ticket with ``address_key`` was pinned at this point."""
        key = self._key(lat, lng)
        with self._lock:
            keys = self._seen.setdefault(key, set())
            if len(keys) < self.threshold:
                keys.add(address_key)

    def is_shared(self, lat: float, lng: float) -> bool:
        """True if the point is a known centroid or holds ≥ ``threshold`` distinct addresses."""
        if any(haversine_m(lat, lng, k_lat, k_lng) <= self.radius_m for k_lat, k_lng in self.known):
            return True
        with self._lock:
            return len(self._seen.get(self._key(lat, lng), ())) >= self.threshold


def assess_location(
    point: tuple[float, float] | None, address_level: str, detector: CentroidDetector | None = None
) -> Location:
    """A ``Location`` with its weak reason: ``no_pin`` > ``shared_point`` > ``road_only_address``."""
    if point is None:
        return Location(None, None, NO_PIN)
    lat, lng = point
    if detector is not None and detector.is_shared(lat, lng):
        return Location(lat, lng, SHARED_POINT)
    if address_level == "road":
        return Location(lat, lng, ROAD_ONLY_ADDRESS)
    return Location(lat, lng, None)
