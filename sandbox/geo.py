"""The sandbox district: a few km² of 徐汇区 around 斜土路, and the datums its systems speak.

Every place is given in WGS-84 (lng 121.435–121.475, lat 31.180–31.205). The forward
conversions below (WGS-84 → GCJ-02 → BD-09, WGS-84 → EPSG:4549) are written here on purpose,
independently of ``mappings/``: the simulators' records are produced with them, so they
cross-check the hub's own inverse transforms.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pyproj import Transformer

DISTRICT = "徐汇区"
CITY = "上海市"
BOUNDS = (121.435, 31.180, 121.475, 31.205)  # min lng, min lat, max lng, max lat (WGS-84)

# --- datum conversions -------------------------------------------------------------------------

_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def _out_of_china(lng: float, lat: float) -> bool:
    return not (73.66 < lng < 135.05 and 3.86 < lat < 53.55)


def _gcj_dlat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_dlng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (the published 国测局 obfuscation formula); identity outside China."""
    if _out_of_china(lng, lat):
        return lng, lat
    dlat = _gcj_dlat(lng - 105.0, lat - 35.0)
    dlng = _gcj_dlng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _KRASOVSKY_EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_KRASOVSKY_A * (1 - _KRASOVSKY_EE)) / (magic * sqrtmagic) * math.pi)
    dlng = (dlng * 180.0) / (_KRASOVSKY_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lng + dlng, lat + dlat


def gcj02_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → BD-09 (Baidu's published forward formula)."""
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def wgs84_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    """WGS-84 → BD-09, through GCJ-02."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lng, lat))


@lru_cache(maxsize=1)
def _to_4549() -> Transformer:
    # WGS-84 and CGCS2000 agree to a few centimetres: the datum step is a null transform here.
    return Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True)


def wgs84_to_epsg4549(lng: float, lat: float) -> tuple[float, float]:
    """WGS-84 → CGCS2000 3-degree Gauss-Krüger, CM 120°E. Returns (x_northing, y_easting)."""
    easting, northing = _to_4549().transform(lng, lat)
    return northing, easting


# --- distances and jitter ----------------------------------------------------------------------

_EARTH_R = 6371008.8


def distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_R * math.asin(math.sqrt(h))


def offset_m(lng: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    """Move a point by metres east and north (small distances)."""
    dlat = math.degrees(north_m / _EARTH_R)
    dlng = math.degrees(east_m / (_EARTH_R * math.cos(math.radians(lat))))
    return lng + dlng, lat + dlat


def jitter(lng: float, lat: float, metres: float, rng: random.Random) -> tuple[float, float]:
    """A point uniformly inside a disc of ``metres`` around (lng, lat)."""
    r = metres * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return offset_m(lng, lat, r * math.cos(a), r * math.sin(a))


# --- places ------------------------------------------------------------------------------------

PlaceKind = Literal["road", "compound"]


@dataclass(frozen=True)
class Place:
    """A road segment with its house numbers, or a residential compound (小区)."""

    name: str
    kind: PlaceKind
    street: str  # 街道
    community: str  # 居委会
    lng: float  # WGS-84; a road's segment starts here (house number ``numbers[0]``)
    lat: float
    end: tuple[float, float] | None = None  # a road segment's far end (house number ``numbers[1]``)
    numbers: tuple[int, int] = (1, 1)
    buildings: int = 0  # a compound's 号楼
    cross: str = ""  # a cross street, for "近…路" wordings

    def point(self, number: int | None = None) -> tuple[float, float]:
        """WGS-84 point of a house number along a road (linear); a compound's centre."""
        if self.end is None or number is None:
            return self.lng, self.lat
        lo, hi = self.numbers
        f = min(max((number - lo) / max(hi - lo, 1), 0.0), 1.0)
        return self.lng + f * (self.end[0] - self.lng), self.lat + f * (self.end[1] - self.lat)


_XT = "斜土路街道"
_FL = "枫林路街道"
_XJH = "徐家汇街道"
_LH = "龙华街道"

def _road(name: str, street: str, community: str, start: tuple[float, float],
          end: tuple[float, float], numbers: tuple[int, int], cross: str) -> Place:
    return Place(name, "road", street, community + "居委会", start[0], start[1], end, numbers, cross=cross)


def _compound(name: str, street: str, community: str, centre: tuple[float, float],
              buildings: int) -> Place:
    return Place(name, "compound", street, community + "居委会", centre[0], centre[1], buildings=buildings)


# Roads run from (lng, lat) at numbers[0] to end at numbers[1]; north of 斜土路 is 枫林路街道,
# south of it 斜土路街道, west of 宛平南路 徐家汇街道, south of 中山南二路 龙华街道.
PLACES: tuple[Place, ...] = (
    _road("斜土路", _XT, "大木桥", (121.4740, 31.1855), (121.4600, 31.1899), (480, 860), "瑞金南路"),
    _road("斜土路", _XT, "日晖新城", (121.4600, 31.1899), (121.4500, 31.1931), (860, 1290), "东安路"),
    _road("斜土路", _FL, "宛平南路", (121.4500, 31.1931), (121.4440, 31.1950), (1290, 1460), "宛平南路"),
    _road("中山南二路", _XT, "日晖四村", (121.4730, 31.1838), (121.4580, 31.1843), (400, 800), "小木桥路"),
    _road("中山南二路", _LH, "龙华", (121.4580, 31.1843), (121.4400, 31.1850), (800, 1200), "宛平南路"),
    _road("宛平南路", _FL, "宛平南路", (121.4440, 31.2020), (121.4444, 31.1950), (1, 180), "肇嘉浜路"),
    _road("宛平南路", _XJH, "宛平", (121.4444, 31.1950), (121.4450, 31.1810), (180, 620), "零陵路"),
    _road("零陵路", _XT, "零陵", (121.4450, 31.1902), (121.4555, 31.1888), (1, 500), "东安路"),
    _road("零陵路", _XT, "东安三村", (121.4555, 31.1888), (121.4600, 31.1880), (500, 800), "大木桥路"),
    _road("大木桥路", _FL, "枫林", (121.4612, 31.2030), (121.4610, 31.1896), (1, 300), "肇嘉浜路"),
    _road("大木桥路", _XT, "大木桥", (121.4610, 31.1896), (121.4606, 31.1845), (300, 560), "斜土路"),
    _road("肇嘉浜路", _FL, "枫林", (121.4700, 31.2030), (121.4560, 31.2022), (200, 560), "瑞金南路"),
    _road("肇嘉浜路", _FL, "小木桥", (121.4560, 31.2022), (121.4410, 31.2012), (560, 900), "枫林路"),
    _road("小木桥路", _FL, "小木桥", (121.4660, 31.2010), (121.4658, 31.1882), (1, 420), "斜土路"),
    _road("小木桥路", _XT, "日晖四村", (121.4658, 31.1882), (121.4655, 31.1840), (420, 681), "中山南二路"),
    _road("东安路", _FL, "东安一村", (121.4545, 31.2000), (121.4540, 31.1917), (1, 240), "斜土路"),
    _road("东安路", _XT, "东安三村", (121.4540, 31.1917), (121.4535, 31.1850), (240, 560), "零陵路"),
    _road("瑞金南路", _FL, "瑞金南路", (121.4712, 31.2030), (121.4718, 31.1870), (1, 480), "斜土路"),
    _road("枫林路", _FL, "枫林", (121.4575, 31.2035), (121.4570, 31.1925), (1, 420), "医学院路"),
    _road("医学院路", _FL, "枫林", (121.4525, 31.2020), (121.4520, 31.1960), (1, 180), "东安路"),
    _road("天钥桥路", _XJH, "天钥", (121.4380, 31.2000), (121.4385, 31.1830), (300, 800), "零陵路"),
    _road("日晖东路", _XT, "日晖一村", (121.4735, 31.1935), (121.4740, 31.1830), (1, 320), "斜土路"),
    _compound("日晖新城", _XT, "日晖新城", (121.4532, 31.1921), 18),
    _compound("日晖一村", _XT, "日晖一村", (121.4712, 31.1880), 32),
    _compound("日晖四村", _XT, "日晖四村", (121.4668, 31.1862), 24),
    _compound("日晖六村", _XT, "日晖四村", (121.4690, 31.1848), 20),
    _compound("斜土小区", _XT, "大木桥", (121.4590, 31.1880), 12),
    _compound("东安三村", _XT, "东安三村", (121.4560, 31.1873), 40),
    _compound("东安一村", _FL, "东安一村", (121.4555, 31.1955), 16),
    _compound("宛南新村", _XT, "宛南", (121.4462, 31.1895), 28),
    _compound("零陵小区", _XT, "零陵", (121.4500, 31.1880), 10),
    _compound("枫林新苑", _FL, "枫林", (121.4590, 31.1985), 8),
    _compound("小木桥路馨苑", _FL, "小木桥", (121.4645, 31.1960), 6),
    _compound("大木桥公寓", _FL, "枫林", (121.4625, 31.1990), 5),
    _compound("瑞金南苑", _FL, "瑞金南路", (121.4700, 31.1965), 9),
    _compound("天钥新村", _XJH, "天钥", (121.4400, 31.1925), 22),
    _compound("龙华苑", _LH, "龙华", (121.4520, 31.1822), 14),
    _compound("中山南二路小区", _LH, "龙华", (121.4610, 31.1828), 11),
    _compound("肇嘉浜路公寓", _FL, "小木桥", (121.4500, 31.2005), 4),
    _compound("斜土东苑", _XT, "日晖一村", (121.4720, 31.1908), 15),
)

STREETS: tuple[str, ...] = (_XT, _FL, _XJH, _LH)


def communities() -> dict[str, list[str]]:
    """街道 → its 居委会 names, as used by :data:`PLACES`."""
    out: dict[str, list[str]] = {}
    for p in PLACES:
        names = out.setdefault(p.street, [])
        if p.community not in names:
            names.append(p.community)
    return out


@dataclass(frozen=True)
class Spot:
    """One concrete spot in the district: a house number on a road, or a building of a compound."""

    place: Place
    number: int  # house number (road) or building number (compound)
    lng: float  # WGS-84
    lat: float

    @property
    def street(self) -> str:
        return self.place.street

    @property
    def community(self) -> str:
        return self.place.community


def random_spot(rng: random.Random, kind: PlaceKind | None = None) -> Spot:
    """Pick a road house number or a compound building; a few metres off the reference line.

    Every house number and every building is equally likely (a place is weighted by its size):
    a four-building compound does not collect as many incidents as a forty-building one."""
    candidates = [p for p in PLACES if kind is None or p.kind == kind]
    sizes = [max(1, p.buildings) if p.kind == "compound" else p.numbers[1] - p.numbers[0] + 1 for p in candidates]
    place = rng.choices(candidates, weights=sizes)[0]
    if place.kind == "road":
        number = rng.randint(*place.numbers)
        lng, lat = jitter(*place.point(number), 12.0, rng)
    else:
        number = rng.randint(1, max(place.buildings, 1))
        lng, lat = jitter(place.lng, place.lat, 90.0, rng)
    return Spot(place, number, lng, lat)


def spot_at(name: str, number: int) -> Spot:
    """The spot of a house number on a named road, or of a building of a named compound."""
    for place in PLACES:
        if place.name != name:
            continue
        if place.kind == "compound":
            return Spot(place, number, place.lng, place.lat)
        lo, hi = place.numbers
        if lo <= number <= hi:
            return Spot(place, number, *place.point(number))
    raise KeyError(f"no place {name} {number}")


# --- address wordings --------------------------------------------------------------------------

ROAD_WORDINGS = ("gate", "near", "district", "plain", "opposite", "cross", "full")
COMPOUND_WORDINGS = ("building", "downstairs", "district", "gate", "inside", "full")


def format_address(spot: Spot, wording: str = "plain") -> str:
    """One way people write the spot's address.

    Roads: gate ``斜土路1175号门口``, near ``斜土路1175号附近``, district ``徐汇区斜土路1175号``,
    plain ``斜土路1175号``, opposite ``斜土路1175号对面``, cross ``斜土路近东安路``,
    full ``上海市徐汇区斜土路街道斜土路1175号``.
    Compounds: building ``日晖新城小区3号楼旁``, downstairs ``日晖新城3号楼楼下``,
    district ``徐汇区日晖新城小区``, gate ``日晖新城小区门口``, inside ``日晖新城小区内``,
    full ``上海市徐汇区日晖新城3号楼``.
    """
    p, n = spot.place, spot.number
    if p.kind == "road":
        forms = {
            "gate": f"{p.name}{n}号门口",
            "near": f"{p.name}{n}号附近",
            "district": f"{DISTRICT}{p.name}{n}号",
            "plain": f"{p.name}{n}号",
            "opposite": f"{p.name}{n}号对面",
            "cross": f"{p.name}近{p.cross}" if p.cross else f"{p.name}{n}号附近",
            "full": f"{CITY}{DISTRICT}{p.street}{p.name}{n}号",
        }
    else:
        compound = p.name if p.name.endswith(("村", "苑", "公寓", "小区")) else f"{p.name}小区"
        forms = {
            "building": f"{compound}{n}号楼旁",
            "downstairs": f"{p.name}{n}号楼楼下",
            "district": f"{DISTRICT}{compound}",
            "plain": f"{compound}{n}号楼",
            "gate": f"{compound}门口",
            "inside": f"{compound}内",
            "full": f"{CITY}{DISTRICT}{p.name}{n}号楼",
        }
    if wording not in forms:
        raise ValueError(f"unknown address wording {wording!r}")
    return forms[wording]


def canonical_address(spot: Spot) -> str:
    """The ground-truth address: ``徐汇区斜土路1175号`` or ``徐汇区日晖新城3号楼``."""
    if spot.place.kind == "road":
        return format_address(spot, "district")
    return f"{DISTRICT}{spot.place.name}{spot.number}号楼"


def random_address(spot: Spot, rng: random.Random) -> str:
    """A randomly chosen wording of the spot's address."""
    wordings = ROAD_WORDINGS if spot.place.kind == "road" else COMPOUND_WORDINGS
    return format_address(spot, rng.choice(wordings))
