"""Request bodies for the simulators' control endpoints: one incident, told by each system.

Pure functions of (kind, spot, random source, time stamp): they pick the reporter's words,
the address wording, the datum and the quirks (empty map pins, mistyped codes, confidential
callers, null police coordinates) that real records have.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sandbox import geo
from sandbox.traffic_kinds import (
    DCM_DEPTS,
    GIVEN_NAMES,
    INSPECTORS,
    JQLB_NAMES,
    PATROL_GROUPS,
    POLICE_STATIONS,
    SURNAMES,
    ZF_SQUADS,
    Kind,
)
from sandbox.traffic_texts import (
    CALLER_EXTRAS,
    DCM_RESULTS,
    POLICE_HANDED,
    POLICE_INVALID,
    POLICE_SOLVED,
    TEXTS,
    ZF_RESULTS,
)

SHANGHAI = timezone(timedelta(hours=8))
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


# --- each system's clock format ------------------------------------------------------------

def hotline_time(t: datetime) -> str:
    """12345: ``yyyy-MM-dd HH:mm:ss``, Asia/Shanghai, no zone."""
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def police_time(t: datetime) -> str:
    """Police: ISO-8601 with ``+08:00``."""
    return t.astimezone(SHANGHAI).replace(microsecond=0).isoformat()


def dcm_time(t: datetime) -> str:
    """数字城管: ``yyyy-MM-ddTHH:mm:ss``, local, no zone."""
    return t.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M:%S")


def zf_time(t: datetime) -> str:
    """综合执法: ``yyyyMMddHHmmss``, local."""
    return t.astimezone(SHANGHAI).strftime("%Y%m%d%H%M%S")


# --- reporters -----------------------------------------------------------------------------

def caller_name(rng: random.Random) -> str:
    """A caller's name as operators type it: full name, 某先生/女士, or 匿名."""
    roll = rng.random()
    surname = rng.choice(SURNAMES)
    if roll < 0.12:
        return "匿名"
    if roll < 0.5:
        return surname + rng.choice(("先生", "女士", "阿姨", "老师"))
    return surname + rng.choice(GIVEN_NAMES)


def phone_number(rng: random.Random) -> str:
    """A mobile number, or a Shanghai landline ``021-6xxxxxxx``."""
    if rng.random() < 0.7:
        return rng.choice(("138", "139", "136", "150", "152", "186", "189", "177")) + \
            f"{rng.randrange(10**8):08d}"
    return f"021-{rng.choice('56')}{rng.randrange(10**7):07d}"


def _fill(template: str, spot: geo.Spot, rng: random.Random) -> str:
    return template.format(addr=geo.random_address(spot, rng))


# --- 12345 ---------------------------------------------------------------------------------

def hotline_order(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime,
                  pin: tuple[float, float] | None) -> dict[str, Any]:
    """A citizen's call as an operator records it; ``pin`` is the WGS-84 point clicked, if any."""
    words = TEXTS[kind.key]
    phone = phone_number(rng)
    content = _fill(rng.choice(words.citizen), spot, rng)
    extra = rng.choice(CALLER_EXTRAS).format(phone=phone)
    content = content + extra
    if rng.random() < 0.08:
        content = content.translate(_FULLWIDTH)  # typed on a phone with a full-width keyboard
    wtfl = kind.wtfl if rng.random() >= 0.15 else rng.choice(kind.wtfl_near)
    jjcd = "1"
    if kind.key == "manhole_cover":
        jjcd = rng.choice(("2", "2", "3"))
    elif rng.random() < 0.12:
        jjcd = "2"
    zb = ""
    if pin is not None:
        bd_lng, bd_lat = geo.wgs84_to_bd09(*pin)
        zb = f"{bd_lng:.6f},{bd_lat:.6f}"
    return {
        "sqbt": rng.choice(words.titles), "sqnr": content, "ldsj": hotline_time(at),
        "ldrxm": caller_name(rng), "ldrdh": phone, "bmbz": "1" if rng.random() < 0.12 else "0",
        "fsdz": geo.random_address(spot, rng), "zb": zb, "wtfl": wtfl, "jjcd": jjcd,
        "sqxz": kind.sqxz if rng.random() < 0.85 else rng.choice(("1", "2", "6")),
        "gdly": rng.choices(("1", "2", "3", "4"), weights=(70, 5, 15, 10))[0],
        "qx": geo.DISTRICT, "jd": spot.street if rng.random() < 0.7 else "", "cbdw": kind.unit,
    }


# --- police --------------------------------------------------------------------------------

def police_incident(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A linkage incident as the police command system records it (WGS-84, maybe null)."""
    code = kind.jqlbdm or "LD07"
    words = TEXTS[kind.key]
    station = POLICE_STATIONS.get(spot.street, POLICE_STATIONS["斜土路街道"])
    jd: float | None = None
    wd: float | None = None
    if rng.random() >= 0.2:
        lng, lat = geo.jitter(spot.lng, spot.lat, rng.uniform(5, 40), rng)
        digits = rng.choice((4, 5, 6))
        jd, wd = round(lng, digits), round(lat, digits)
    wording = rng.choice(("district", "district", "plain", "gate", "cross")) \
        if spot.place.kind == "road" else rng.choice(("district", "gate", "plain"))
    return {
        "BJSJ": police_time(at), "JQLBDM": code, "JQLBMC": JQLB_NAMES[code],
        "JYQK": _fill(rng.choice(words.police), spot, rng),
        "SFDD": geo.format_address(spot, wording), "JD": jd, "WD": wd,
        "GXDWDM": station[0], "GXDWMC": station[1],
    }


def police_steps(kind: Kind, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    """The police side's later moves: (minutes after the previous one, status body)."""
    group = rng.choice(PATROL_GROUPS)
    steps: list[tuple[float, dict[str, Any]]] = [(rng.uniform(1, 3), {"JQZTDM": "02", "CJDW": group})]
    if rng.random() < 0.05:
        steps.append((rng.uniform(3, 10), {"JQZTDM": "99", "CLJG": rng.choice(POLICE_INVALID)}))
        return steps
    steps.append((rng.uniform(4, 10), {"JQZTDM": "03"}))
    steps.append((rng.uniform(1, 4), {"JQZTDM": "04"}))
    if rng.random() < kind.solved_on_site:
        steps.append((rng.uniform(5, 25), {"JQZTDM": "05", "CLJG": rng.choice(POLICE_SOLVED)}))
        steps.append((rng.uniform(20, 60), {"JQZTDM": "09"}))
    else:
        result = rng.choice(POLICE_HANDED).format(yjdw=kind.yjdw)
        steps.append((rng.uniform(5, 25), {"JQZTDM": "06", "CLJG": result, "YJDW": kind.yjdw}))
    return steps


# --- 数字城管 --------------------------------------------------------------------------------

def _dcm_class(kind: Kind) -> tuple[str, str]:
    if kind.dcm is None:
        raise ValueError(f"数字城管 does not file {kind.key}")
    return kind.dcm


def _plane(lng: float, lat: float) -> dict[str, float]:
    x, y = geo.wgs84_to_epsg4549(lng, lat)
    return {"x": round(x, 2), "y": round(y, 2)}


def _photos(rng: random.Random, prefix: str) -> list[str]:
    return [f"http://{prefix}.sandbox.example/photos/{uuid.UUID(int=rng.getrandbits(128))}.jpg"
            for _ in range(rng.randint(0, 2))]


def inspector_case(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A case filed by the platform's own inspector (source 01), EPSG:4549 x/y."""
    big, small = _dcm_class(kind)
    body: dict[str, Any] = {
        "source": "01", "eventType": kind.event_type, "bigClass": big,
        "smallClass": small if kind.key != "manhole_cover" else rng.choice(("1101", "1102")),
        "description": _fill(rng.choice(TEXTS[kind.key].inspector), spot, rng),
        "address": geo.random_address(spot, rng), "reportTime": dcm_time(at),
        "reporter": rng.choice(INSPECTORS), "photos": _photos(rng, "dcm"),
    }
    if rng.random() >= 0.1:
        body.update(_plane(*geo.jitter(spot.lng, spot.lat, rng.uniform(3, 25), rng)))
    return body


def transfer_case(kind: Kind, order: dict[str, Any], gdbh: str, at: datetime,
                  pin: tuple[float, float] | None) -> dict[str, Any]:
    """The hotline's own transfer of a work order to 数字城管 (source 03, externalNo = gdbh)."""
    big, small = _dcm_class(kind)
    body: dict[str, Any] = {
        "source": "03", "externalNo": gdbh, "eventType": kind.event_type,
        "bigClass": big, "smallClass": small,
        "description": f"12345转办({gdbh})：{order['sqnr']}", "address": order["fsdz"],
        "reportTime": dcm_time(at), "photos": [],
    }
    if pin is not None:
        body.update(_plane(*pin))
    return body


def dcm_steps(kind: Kind, rng: random.Random, source: str) -> list[tuple[float, dict[str, Any]]]:
    """The department's moves of a 数字城管 case: 02 → 03 → 04 (→ 05 → 06 for own cases)."""
    dept = rng.choice(DCM_DEPTS.get(_dcm_class(kind)[0], DCM_DEPTS["05"]))
    steps: list[tuple[float, dict[str, Any]]] = [
        (rng.uniform(2, 8), {"status": "02"}),
        (rng.uniform(2, 10), {"status": "03", "deptName": dept}),
        (rng.uniform(5, 20), {"status": "04"}),
    ]
    if rng.random() < 0.6:
        steps.append((rng.uniform(20, 90), {"status": "05", "handleResult": rng.choice(DCM_RESULTS)}))
        if source == "01":  # the platform's own inspectors verify these
            steps.append((rng.uniform(10, 30), {"status": "06"}))
    return steps


# --- 综合执法 --------------------------------------------------------------------------------

def patrol_case(kind: Kind, spot: geo.Spot, rng: random.Random, at: datetime) -> dict[str, Any]:
    """A case found by the platform's own patrol or a tip-off, GCJ-02 coordinates."""
    if kind.zf is None:
        raise ValueError(f"综合执法 does not file {kind.key}")
    lng, lat = geo.wgs84_to_gcj02(*geo.jitter(spot.lng, spot.lat, rng.uniform(5, 30), rng))
    return {
        "Source": "巡查" if rng.random() < 0.8 else "举报", "Category": kind.zf,
        "Content": _fill(rng.choice(TEXTS[kind.key].patrol), spot, rng),
        "Address": geo.random_address(spot, rng), "Lng": round(lng, 6), "Lat": round(lat, 6),
        "Created": zf_time(at),
    }


def zf_steps(rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    """The squad's moves: XSDJ → HC → LA (the platform numbers the case) or BYLA."""
    squad = rng.choice(ZF_SQUADS)
    steps: list[tuple[float, dict[str, Any]]] = [(rng.uniform(10, 40), {"Status": "HC", "Handler": squad})]
    if rng.random() < 0.7:
        steps.append((rng.uniform(30, 120), {"Status": "LA", "Handler": squad}))
    else:
        steps.append((rng.uniform(30, 120), {"Status": "BYLA", "Result": rng.choice(ZF_RESULTS)}))
    return steps
