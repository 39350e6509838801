"""Shanghai-style street addresses to a comparable form (district / street / road + number /
compound + building) and a banded similarity between two of them.

Why regexes and not jionlp: jionlp (on PyPI) is a heavy dependency whose address parser
targets the administrative levels (province / city / county / town) and has no notion of
road + house number or compound + building, which is exactly what tells two street
incidents apart. The department systems all report inside one city, so a handful of
patterns for 路/街/大道 + 号/弄 and 小区/新村/村/苑/城 + 号楼/栋/幢 does the job, fast
and with no data files.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Level = Literal["number", "compound", "road", "none"]

_HAN = "\u4e00-\u9fff"
# The 16 districts of Shanghai; a generic "XX区" is accepted only at the start, never "小区".
_DISTRICTS = "黄浦|徐汇|长宁|静安|普陀|虹口|杨浦|闵行|宝山|嘉定|浦东新|浦东|金山|松江|青浦|奉贤|崇明"
_CITY = re.compile(r"^(?:中国)?上海市?")
_DISTRICT = re.compile(rf"(?P<district>(?:{_DISTRICTS})区|^[{_HAN}]{{2}}(?<!小)区)")
_STREET = re.compile(rf"(?P<street>[{_HAN}]{{2,6}}?(?:街道|镇))")
_ROAD = re.compile(rf"(?P<road>[{_HAN}]{{1,10}}?(?:大道|公路|路|大街|街))")
# After a road: optional lane (弄) and house number (号, but not 号楼 which is a building).
_ROAD_NUMBER = re.compile(r"^(?:(?P<lane>\d+)弄(?:(?P<sub>\d+)号(?!楼))?|(?P<number>\d+)号(?!楼))")
_COMPOUND = re.compile(rf"(?P<compound>[{_HAN}]{{1,10}}?(?:新村|花园|公寓|小区|村|苑|城|坊|里))(?:小区)?")
_ROAD_NAMED_COMPOUND = re.compile(rf"^[{_HAN}]{{0,4}}?(?:新村|花园|公寓|小区|苑)")
_BUILDING = re.compile(r"(?P<building>\d+)(?:号楼|号|栋|幢|座)")
_LEADING_NOISE = re.compile(rf"^(?:位于|靠近|近|在)(?=[{_HAN}])")
_CN_DIGITS = {c: str(i) for i, c in enumerate("零一二三四五六七八九")}
_CN_NUMBER = re.compile(r"([一二三四五六七八九十]{1,3})(?=号楼|栋|幢)")


@dataclass(frozen=True, slots=True)
class Address:
    """A normalized address; ``level`` says how specific it is (``number`` > ``compound``
    > ``road`` > ``none``); a ``road`` address alone is weak location evidence."""

    district: str | None = None
    street: str | None = None
    road: str | None = None
    number: str | None = None
    compound: str | None = None
    building: str | None = None
    level: Level = "none"

    @property
    def key(self) -> str:
        """A compact string identifying the place (empty for ``none``), e.g. for counting."""
        if self.level == "number":
            return f"{self.road}{self.number}"
        if self.level == "compound":
            return f"{self.compound}#{self.building or ''}"
        if self.level == "road":
            return self.road or ""
        return ""


def _cn_small_number(text: str) -> str:
    """一..九十九 → digits (only used before 号楼/栋/幢, where grid workers write 三号楼)."""
    if "十" not in text:
        return "".join(_CN_DIGITS.get(c, c) for c in text)
    tens, _, ones = text.partition("十")
    return str(int(_CN_DIGITS.get(tens, "1") if tens else "1") * 10 + int(_CN_DIGITS.get(ones, "0") or 0))


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\s+", "", text)
    text = _CN_NUMBER.sub(lambda m: _cn_small_number(m.group(1)), text)
    return _CITY.sub("", text)


def _take(pattern: re.Pattern[str], text: str, group: str) -> tuple[str | None, str]:
    """The first match of ``group`` and the text with that match removed."""
    match = pattern.search(text)
    if match is None:
        return None, text
    return match.group(group), text[: match.start()] + text[match.end():]


def normalize_address(text: str | None) -> Address:
    """Parse free address text (NFKC, full-width digits, 弄/号/栋/号楼/幢); never raises."""
    if not text:
        return Address()
    rest = _clean(text)
    district, rest = _take(_DISTRICT, rest, "district")
    street, rest = _take(_STREET, rest, "street")
    rest = _LEADING_NOISE.sub("", rest)
    road: str | None = None
    number: str | None = None
    road_match = _ROAD.search(rest)
    named = _ROAD_NAMED_COMPOUND.match(rest[road_match.end():]) if road_match is not None else None
    if road_match is not None and named is not None:
        # 中山南二路小区, 小木桥路馨苑: a compound named after its road, not a road address
        rest = rest[: road_match.start()] + "\0" + road_match.group("road") + rest[road_match.end():]
        road_match = None
    if road_match is not None:
        road = road_match.group("road")
        tail = rest[road_match.end():]
        num_match = _ROAD_NUMBER.match(tail)
        if num_match is not None:
            lane, sub, plain = num_match.group("lane", "sub", "number")
            number = plain if plain else (f"{lane}弄{sub}" if sub else f"{lane}弄")
            tail = tail[num_match.end():]
        rest = rest[: road_match.start()] + tail
    compound, rest = _take(_COMPOUND, rest, "compound")
    building = None
    if compound is not None:
        if compound.endswith("小区") and len(compound) > 3:
            compound = compound[:-2]
        building, rest = _take(_BUILDING, rest, "building")
    level: Level = "none"
    if road and number:
        level = "number"
    elif compound:
        level = "compound"
    elif road:
        level = "road"
    return Address(district, street, road, number, compound, building, level)


def complete_address(address: Address, text: str | None) -> Address:
    """Fill a missing house number or building from free text that names the same road or
    compound: callers say "日晖四村19号楼路边" in the description while the operator typed
    only "日晖四村内" as the address. Only details anchored on the address's own road or
    compound are taken, so a second place mentioned in passing changes nothing."""
    if not text or address.level == "none":
        return address
    clean = _clean(text)
    if address.compound and not address.building:
        match = re.search(re.escape(address.compound) + r"(?:小区)?(\d+)(?:号楼|栋|幢|座|号)", clean)
        if match is not None:
            return Address(address.district, address.street, address.road, address.number,
                           address.compound, match.group(1), address.level)
    if address.road and not address.number and not address.compound:
        match = re.search(re.escape(address.road) + r"(\d+)号(?!楼)", clean)
        if match is not None:
            return Address(address.district, address.street, address.road, match.group(1),
                           None, None, "number")
    return address


def _leading_int(number: str | None) -> int | None:
    match = re.match(r"\d+", number or "")
    return int(match.group()) if match else None
