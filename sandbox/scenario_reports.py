"""One report of an incident as a canonical ticket (docs/dedup-jsonl.md), per system and reporter.

Each builder returns a ticket dict without ``external_id``/``cluster``/``reported_at`` (the
scenario assigns those once every ticket is known and sorted); ``_at`` carries the report time.
Coordinates are written in the system's own datum with the forward conversions of
:mod:`sandbox.geo`; codes come from each system's taxonomy in ``../shared/world/``.
"""

from __future__ import annotations

import math
import random
from datetime import datetime
from typing import Any

from sandbox import geo
from sandbox.traffic_kinds import JQLB_NAMES, Kind
from sandbox.traffic_reports import phone_number
from sandbox.traffic_texts import CALLER_EXTRAS, TEXTS

SYSTEMS = ("hotline12345", "police_patrol", "city_management", "law_enforcement", "grid")

# Each system's code tables, in spec order (a mistyped code is a neighbour in its table).
WTFL_CODES = ("0101", "0102", "0201", "0202", "0203", "0301", "0302", "0401", "0402", "0403",
              "0501", "0502", "0503", "0601", "0602", "0603", "0701", "0801", "0901")
JQLB_CODES = tuple(JQLB_NAMES)
DCM_SMALL: dict[str, tuple[str, ...]] = {
    "01": ("0101", "0102", "0103", "0104", "0106"), "02": ("0201", "0203"),
    "03": ("0301", "0302", "0304"), "04": ("0401", "0402", "0406"),
    "05": ("0501", "0504", "0505", "0506", "0510", "0511"),
    "11": ("1101", "1102", "1105"), "12": ("1201",), "14": ("1401",),
}
ZF_CODES = ("CG-0101", "CG-0201", "CG-0301", "CG-0401", "CG-0501", "CG-0502", "CG-0601", "CG-0701")
MISTYPE_RATE = 0.05
NO_PIN_HOTLINE = 0.30
NULL_POLICE = 0.15
ROAD_ONLY_RATE = 0.07

_STATUS: dict[str, tuple[str, ...]] = {
    "hotline12345": ("20", "30", "30", "40", "50", "50", "50"),
    "police_patrol": ("05", "06", "06", "09", "09"),
    "city_management": ("01", "02", "03", "04", "05", "07", "07"),
    "law_enforcement": ("XSDJ", "HC", "LA", "BYLA", "JA"),
}


def _centroid(places: list[geo.Place]) -> tuple[float, float]:
    return (sum(p.lng for p in places) / len(places), sum(p.lat for p in places) / len(places))


# Weak evidence: operators who do not find the spot click the street or the district centre.
STREET_CENTROIDS: dict[str, tuple[float, float]] = {
    s: _centroid([p for p in geo.PLACES if p.street == s]) for s in geo.STREETS}
DISTRICT_CENTROID = ((geo.BOUNDS[0] + geo.BOUNDS[2]) / 2, (geo.BOUNDS[1] + geo.BOUNDS[3]) / 2)
CENTROIDS: tuple[tuple[float, float], ...] = (DISTRICT_CENTROID, *STREET_CENTROIDS.values())


def _neighbour(table: tuple[str, ...], code: str, rng: random.Random) -> str:
    i = table.index(code)
    near = [table[j] for j in (i - 1, i + 1) if 0 <= j < len(table)]
    return rng.choice(near) if near else code


def wtfl_code(kind: Kind, rng: random.Random) -> str:
    """12345 (and grid) code, mistyped as one of the kind's neighbour codes ~5 % of the time."""
    return rng.choice(kind.wtfl_near) if rng.random() < MISTYPE_RATE else kind.wtfl


def _code(table: tuple[str, ...], code: str, rng: random.Random) -> str:
    return _neighbour(table, code, rng) if rng.random() < MISTYPE_RATE else code


def noisy_point(spot: geo.Spot, rng: random.Random, lo: float, hi: float) -> tuple[float, float]:
    """The reported WGS-84 point: ``lo``–``hi`` metres off the true spot, any direction."""
    r, a = rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)
    return geo.offset_m(spot.lng, spot.lat, r * math.cos(a), r * math.sin(a))


def centroid_pin(spot: geo.Spot, rng: random.Random) -> tuple[float, float]:
    """A street centroid (or, less often, the district's) instead of the spot."""
    return DISTRICT_CENTROID if rng.random() < 0.25 else STREET_CENTROIDS[spot.street]


def address(spot: geo.Spot, rng: random.Random, road_only: float = ROAD_ONLY_RATE) -> str:
    """An address wording; sometimes only the road (or compound) name, which is weak evidence."""
    if rng.random() < road_only:
        return rng.choice((spot.place.name, geo.DISTRICT + spot.place.name))
    return geo.random_address(spot, rng)


def _fill(template: str, spot: geo.Spot, rng: random.Random) -> str:
    return template.format(addr=geo.random_address(spot, rng))


def _status(system: str, rng: random.Random) -> str:
    return rng.choice(_STATUS[system])


def _wgs(point: tuple[float, float] | None, datum: str) -> dict[str, Any]:
    """The point in ``datum`` as ticket fields (``lng``/``lat``, or ``x``/``y`` for EPSG:4549)."""
    if point is None:
        return {"lng": None, "lat": None} if datum != "epsg4549" else {}
    if datum == "bd09":
        lng, lat = geo.wgs84_to_bd09(*point)
    elif datum == "gcj02":
        lng, lat = geo.wgs84_to_gcj02(*point)
    elif datum == "epsg4549":
        x, y = geo.wgs84_to_epsg4549(*point)
        return {"x": round(x, 2), "y": round(y, 2)}
    else:
        lng, lat = point
    return {"lng": round(lng, 6), "lat": round(lat, 6)}


def hotline_call(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime,
                 phone: str | None = None) -> dict[str, Any]:
    """A citizen's call: BD-09 pin (none ~30 %, a centroid sometimes), rambling text, phone."""
    words = TEXTS[kind.key]
    phone = phone or phone_number(rng)
    roll = rng.random()
    pin = None if roll < NO_PIN_HOTLINE else (
        centroid_pin(spot, rng) if roll < NO_PIN_HOTLINE + 0.07 else noisy_point(spot, rng, 10, 80))
    text = _fill(rng.choice(words.citizen), spot, rng) + rng.choice(CALLER_EXTRAS).format(phone=phone)
    return {"system": "hotline12345", "_at": at, "category_code": wtfl_code(kind, rng),
            "title": rng.choice(words.titles), "description": text, "address": address(spot, rng),
            "datum": "bd09", **_wgs(pin, "bd09"), "phone": phone,
            "status_code": _status("hotline12345", rng), "_pin": pin}


def police_report(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A police linkage incident: WGS-84 (null ~15 %), ``报警人称…``; no reporter data leaves."""
    code = _code(JQLB_CODES, kind.jqlbdm or "LD07", rng)
    roll = rng.random()
    pin = None if roll < NULL_POLICE else (
        centroid_pin(spot, rng) if roll < NULL_POLICE + 0.04 else noisy_point(spot, rng, 5, 60))
    return {"system": "police_patrol", "_at": at, "category_code": code, "title": JQLB_NAMES[code],
            "description": _fill(rng.choice(TEXTS[kind.key].police), spot, rng),
            "address": address(spot, rng), "datum": "wgs84", **_wgs(pin, "wgs84"),
            "status_code": _status("police_patrol", rng), "_pin": pin}


def _dcm_code(kind: Kind, rng: random.Random) -> str:
    big, small = kind.dcm or ("01", "0102")
    return _code(DCM_SMALL[big], small, rng)


def inspector_case(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A 数字城管 inspector's case (source 01): EPSG:4549 x/y, terse text, full address."""
    pin = noisy_point(spot, rng, 5, 30)
    return {"system": "city_management", "_at": at, "category_code": _dcm_code(kind, rng),
            "description": _fill(rng.choice(TEXTS[kind.key].inspector), spot, rng),
            "address": address(spot, rng, 0.02), "datum": "epsg4549", **_wgs(pin, "epsg4549"),
            "status_code": _status("city_management", rng), "_pin": pin}


def transfer_case(kind: Kind, order: dict[str, Any], rng: random.Random, at: datetime) -> dict[str, Any]:
    """12345 → 数字城管 (source 03): the order's text, address and pin; ``externalNo`` = its gdbh."""
    pin = order["_pin"]
    return {"system": "city_management", "_at": at, "category_code": _dcm_code(kind, rng),
            "description": order["description"], "address": order["address"], "datum": "epsg4549",
            **_wgs(pin, "epsg4549"), "status_code": _status("city_management", rng), "_pin": pin}


def patrol_case(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A 综合执法 patrol clue: GCJ-02, 执法 language."""
    pin = noisy_point(spot, rng, 5, 40)
    return {"system": "law_enforcement", "_at": at, "category_code": _code(ZF_CODES, kind.zf or "CG-0201", rng),
            "description": _fill(rng.choice(TEXTS[kind.key].patrol), spot, rng),
            "address": address(spot, rng), "datum": "gcj02", **_wgs(pin, "gcj02"),
            "status_code": _status("law_enforcement", rng), "_pin": pin}


def grid_report(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A grid worker's phone report: phone GPS (WGS-84), 12345 codes, short text."""
    words = TEXTS[kind.key]
    pin = noisy_point(spot, rng, 5, 25)
    return {"system": "grid", "_at": at, "category_code": wtfl_code(kind, rng),
            "title": rng.choice(words.titles),
            "description": _fill(rng.choice(words.inspector), spot, rng).replace("监督员", "网格员"),
            "address": address(spot, rng, 0.02), "datum": "wgs84", **_wgs(pin, "wgs84"), "_pin": pin}
