"""Coordinate datums of the department systems, to and from WGS-84.

Geographic functions take and return ``(lng, lat)`` in degrees. The plane datum
EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E, the 数字城管 ``x``/``y``) uses the
surveying convention: ``x`` is the northing, ``y`` the easting (500 000 m false easting).

- GCJ-02 (国测局 "Mars" offset, used by 综合执法 and most Chinese web maps): the
  published forward formula (Krasovsky ellipsoid constants, as in googollee/eviltransform
  and wandergis/coordtransform). Points outside the China box are not offset. The
  inverse has no closed form; it is solved by fixed-point iteration to < 1e-9 degrees.
- BD-09 (Baidu, used by 12345): the Baidu formula on top of GCJ-02; the usual
  closed-form inverse is only approximate, so it is refined by the same iteration.
- EPSG:4549 via pyproj. CGCS2000 and WGS-84 agree to a few centimetres, which pyproj's
  ballpark transformation reflects; that is far below what a street incident needs.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from pyproj import Transformer

Point = tuple[float, float]

DATUMS = ("wgs84", "gcj02", "bd09", "epsg4549")

# Plausible EPSG:4549 values as the 数字城管 spec checks them (x = northing, y = easting):
# a point outside is refused, which also catches swapped axes.
EPSG4549_X_RANGE = (2_000_000.0, 6_000_000.0)
EPSG4549_Y_RANGE = (340_000.0, 660_000.0)

# GCJ-02 constants: semi-major axis and eccentricity squared of the Krasovsky 1940 ellipsoid.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
# The box inside which GCJ-02 offsets apply (the same box the published implementations use).
_CHINA_BOX = (72.004, 137.8347, 0.8293, 55.8271)  # lng min, lng max, lat min, lat max

_TOLERANCE = 1e-9  # degrees, about 0.1 mm: well inside the 1e-7 the hub needs
_MAX_ITERATIONS = 30


def out_of_china(lng: float, lat: float) -> bool:
    """True where GCJ-02 applies no offset."""
    lng_min, lng_max, lat_min, lat_max = _CHINA_BOX
    return not (lng_min <= lng <= lng_max and lat_min <= lat <= lat_max)


def _offset_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _offset_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: float, lat: float) -> Point:
    """WGS-84 → GCJ-02; identity outside China."""
    if out_of_china(lng, lat):
        return lng, lat
    d_lat = _offset_lat(lng - 105.0, lat - 35.0)
    d_lng = _offset_lng(lng - 105.0, lat - 35.0)
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return lng + d_lng, lat + d_lat


def _invert(forward: Callable[[float, float], Point], target: Point, start: Point) -> Point:
    """Solve ``forward(p) == target`` by fixed-point iteration from ``start``.

    The offsets vary slowly (their derivative is ~1e-5), so each step shrinks the
    error by about that factor: three or four steps reach the tolerance.
    """
    lng, lat = start
    for _ in range(_MAX_ITERATIONS):
        f_lng, f_lat = forward(lng, lat)
        d_lng, d_lat = f_lng - target[0], f_lat - target[1]
        lng, lat = lng - d_lng, lat - d_lat
        if abs(d_lng) < _TOLERANCE and abs(d_lat) < _TOLERANCE:
            break
    return lng, lat


def gcj02_to_wgs84(lng: float, lat: float) -> Point:
    """GCJ-02 → WGS-84 (iterative inverse); identity outside China."""
    if out_of_china(lng, lat):
        return lng, lat
    return _invert(wgs84_to_gcj02, (lng, lat), (lng, lat))


def gcj02_to_bd09(lng: float, lat: float) -> Point:
    """GCJ-02 → BD-09 (Baidu's published formula)."""
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _bd09_to_gcj02_approx(lng: float, lat: float) -> Point:
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_gcj02(lng: float, lat: float) -> Point:
    """BD-09 → GCJ-02: the closed-form approximation refined to an exact inverse."""
    return _invert(gcj02_to_bd09, (lng, lat), _bd09_to_gcj02_approx(lng, lat))


def wgs84_to_bd09(lng: float, lat: float) -> Point:
    """WGS-84 → BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


def bd09_to_wgs84(lng: float, lat: float) -> Point:
    """BD-09 → WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lng, lat))


# pyproj Transformers are costly to build; keep one per thread and direction so worker
# threads never share one (cheap insurance whatever pyproj's own thread-safety guarantees).
_local = threading.local()
_CGCS2000_GK_CM120 = "EPSG:4549"
_WGS84 = "EPSG:4326"


def _transformer(source: str, target: str) -> Transformer:
    cache: dict[tuple[str, str], Transformer] | None = getattr(_local, "transformers", None)
    if cache is None:
        cache = _local.transformers = {}
    key = (source, target)
    if key not in cache:
        # always_xy: (lng, lat) and (easting, northing) whatever the CRS's declared axis order.
        cache[key] = Transformer.from_crs(source, target, always_xy=True)
    return cache[key]


def _finite(a: float, b: float) -> Point:
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError("coordinate cannot be projected")
    return a, b


def epsg4549_to_wgs84(x_northing: float, y_easting: float) -> Point:
    """EPSG:4549 plane metres (x = northing, y = easting) → WGS-84 ``(lng, lat)``."""
    return _finite(*_transformer(_CGCS2000_GK_CM120, _WGS84).transform(y_easting, x_northing))


def wgs84_to_epsg4549(lng: float, lat: float) -> Point:
    """WGS-84 → EPSG:4549 ``(x_northing, y_easting)``."""
    easting, northing = _transformer(_WGS84, _CGCS2000_GK_CM120).transform(lng, lat)
    return _finite(northing, easting)


_TO_WGS84: dict[str, Callable[[float, float], Point]] = {
    "wgs84": lambda a, b: (a, b),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
    "epsg4549": epsg4549_to_wgs84,
}
_FROM_WGS84: dict[str, Callable[[float, float], Point]] = {
    "wgs84": lambda a, b: (a, b),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
    "epsg4549": wgs84_to_epsg4549,
}


def to_wgs84(datum: str, first: float, second: float) -> Point:
    """Any datum → WGS-84 ``(lng, lat)``; ``first, second`` are ``lng, lat`` or, for epsg4549, ``x, y``."""
    return _TO_WGS84[datum](first, second)


def from_wgs84(datum: str, lng: float, lat: float) -> Point:
    """WGS-84 → any datum; returns ``(lng, lat)`` or, for epsg4549, ``(x_northing, y_easting)``."""
    return _FROM_WGS84[datum](lng, lat)
