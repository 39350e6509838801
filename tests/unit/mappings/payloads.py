"""Realistic payloads of the four systems, built from the examples in shared/world/*.md."""

from __future__ import annotations

import math
from typing import Any

# EPSG:4549 coordinates of 121.45E 31.19N (斜土路), as pyproj 3.7 computes them.
XIETU_X_NORTHING = 3452945.6657
XIETU_Y_EASTING = 638212.7432


def haversine_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in metres (mean Earth radius 6,371,008.8 m)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(min(1.0, h)))


def work_order(**changes: Any) -> dict[str, Any]:
    """A 12345 WorkOrder snapshot: finished (40), with 办结, 回访 and a BD-09 point."""
    order: dict[str, Any] = {
        "gdbh": "GD20261123000123", "version": 7, "gdly": "1", "sqxz": "2",
        "sqbt": "斜土路1175号门口私设地锁",
        "sqnr": "市民反映：斜土路１１７５号门口有人私设地锁３处😡\u200b，影响通行。\t\t请尽快处理！",
        "ldsj": "2026-11-23 09:10:00", "ldrxm": "张先生", "ldrdh": "13812345678", "bmbz": "1",
        "qx": "徐汇区", "jd": "", "fsdz": "斜土路1175号门口", "zb": "121.4632,31.1984",
        "wtfl": "0403", "wtflmc": "交通管理>停车>私设地锁", "jjcd": "2", "zt": "40",
        "cbdw": "徐汇区城管执法局", "blsx": "2026-12-07 09:10:00",
        "blgc": [
            {"czsj": "2026-11-23 09:30:00", "czlx": "PD", "cbdw": "徐汇区城管执法局", "nr": "派单"},
            {"czsj": "2026-11-23 09:45:00", "czlx": "QS", "cbdw": "徐汇区城管执法局", "nr": ""},
            {"czsj": "2026-11-23 15:04:05", "czlx": "BJ", "cbdw": "徐汇区城管执法局",
             "nr": "已现场拆除地锁3处，恢复通行。"},
            {"czsj": "2026-11-24 10:00:00", "czlx": "HF", "cbdw": "12345", "nr": "回访：满意"},
        ],
        "hfjg": {"hfsj": "2026-11-24 10:00:00", "myd": "1", "sfjj": "1"},
        "zgdbh": None, "gxsj": "2026-11-24 10:00:00",
    }
    order.update(changes)
    return order


def police_event(seq: int = 1, **jq_changes: Any) -> dict[str, Any]:
    """What the police plugin passes to the mapping: the webhook body's seq and jq."""
    jq: dict[str, Any] = {
        "JJDBH": "310104202611230012", "BJSJ": "2026-11-23T09:13:40+08:00",
        "JQLBDM": "LD03", "JQLBMC": "机动车乱停放阻碍交通",
        "JYQK": "报警人称斜土路日晖新城门口有私家车堵住消防通道。",
        "SFDD": "徐汇区斜土路1175号", "JD": 121.4532, "WD": 31.1921,
        "GXDWDM": "310104550000", "GXDWMC": "斜土路派出所",
        "JQZTDM": "02", "CJDW": "巡逻二组", "CLJG": None, "YJDW": None,
        "GXSJ": "2026-11-23T09:15:01+08:00",
    }
    jq.update(jq_changes)
    return {"seq": seq, "jq": jq}


def city_case(**changes: Any) -> dict[str, Any]:
    """A 数字城管 Case transferred from 12345 (source 03), waiting for verification (05)."""
    case: dict[str, Any] = {
        "caseId": "c0000187-2b15993c", "caseNo": "2026110001234", "source": "03",
        "externalNo": "GD20261123000123", "eventType": "2", "bigClass": "05", "smallClass": "0511",
        "description": "斜土路1175号门口私设地锁3处", "address": "徐汇区斜土路1175号",
        "gridCode": "310104001002003", "x": XIETU_X_NORTHING, "y": XIETU_Y_EASTING,
        "status": "05", "deptName": "徐汇区城管执法局", "deadline": "2026-11-23T17:10:00",
        "reportTime": "2026-11-23T09:20:00", "updateTime": "2026-11-23T15:05:00", "version": 5,
        "photos": ["https://dcm.example/p/1.jpg"], "handleResult": "已拆除地锁，恢复通行",
        "verifyResult": None,
    }
    case.update(changes)
    return case


def enforcement_case(**changes: Any) -> dict[str, Any]:
    """A 综合执法 <Case> as the plugin hands it over: child-element texts, "" when empty."""
    case: dict[str, Any] = {
        "ClueNo": "ZF-2026-004512", "CaseNo": "", "ExternalNo": "GH-2026-000042", "Source": "网格",
        "Category": "CG-0101", "Content": "日晖新城3号楼旁正在搭建违章建筑",
        "Address": "斜土路日晖新城3号楼旁",
        "Lng": "121.4577", "Lat": "31.1898", "Status": "HC", "Result": "", "Penalty": "",
        "Handler": "徐汇区城管执法中队", "Created": "20261123091100", "Modified": "20261123101500",
    }
    case.update(changes)
    return case
