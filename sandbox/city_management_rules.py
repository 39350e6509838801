"""数字城管 simulator: the platform's fixed rules (taxonomy, statuses, working time, grid codes, validation).

Everything here is pure: no state, no Flask. The simulator (``city_management_store``) and the
HTTP layer (``city_management``) build on it. See shared/world/city_management.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import chinese_calendar

# Asia/Shanghai has had no daylight saving since 1991: a fixed offset is exact and needs no tzdata.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")

ADMIN_CODE = "310104"  # 徐汇区

SOURCES = {"01": "监督员上报", "02": "公众举报", "03": "12345转办", "04": "视频发现", "05": "领导交办",
           "07": "网格上报"}
API_SOURCES = ("07", "03")  # the only sources a client may create through the API
HUB_VERIFIED_SOURCES = ("03", "07")  # wait at 05 for VERIFY through the API

STATUSES = {
    "01": "上报待立案", "02": "已立案", "03": "已派遣", "04": "处置中", "05": "处置完成待核查",
    "06": "核查通过", "07": "已结案", "08": "已作废", "09": "回退返工", "10": "挂账",
}

# Department-side moves (control endpoint). 05→06/09 only for sources the platform verifies itself.
DEPARTMENT_MOVES: dict[str, tuple[str, ...]] = {
    "01": ("02", "08"),
    "02": ("03", "10"),
    "03": ("04", "10"),
    "04": ("05", "10"),
    "05": ("06", "09"),
    "06": ("07",),
    "09": ("03",),
}

TAXONOMY: dict[str, tuple[str, dict[str, str]]] = {
    "01": ("市容环境", {"0101": "私搭乱建", "0102": "暴露垃圾", "0103": "积存垃圾渣土", "0104": "道路不洁",
                       "0106": "绿地脏乱"}),
    "02": ("宣传广告", {"0201": "非法小广告", "0203": "占道广告牌"}),
    "03": ("施工管理", {"0301": "施工扰民", "0302": "工地扬尘", "0304": "施工占道"}),
    "04": ("突发事件", {"0401": "路面塌陷", "0402": "自来水管破裂", "0406": "道路积水"}),
    "05": ("街面秩序", {"0501": "无照经营游商", "0504": "店外经营", "0505": "机动车乱停放",
                       "0506": "非机动车乱停放", "0510": "露天烧烤", "0511": "私设地锁"}),
    "11": ("公用设施", {"1101": "上水井盖", "1102": "污水井盖", "1105": "路灯"}),
    "12": ("道路交通", {"1201": "道路破损"}),
    "14": ("园林绿化", {"1401": "行道树"}),
}

# 处置部门 a dispatch goes to when the department names none.
DEFAULT_DEPARTMENTS = {
    "01": "徐汇区绿化和市容管理局", "02": "徐汇区绿化和市容管理局", "03": "徐汇区建设和管理委员会",
    "04": "徐汇区建设和管理委员会", "05": "徐汇区城管执法局", "11": "徐汇区建设和管理委员会",
    "12": "徐汇区建设和管理委员会", "14": "徐汇区绿化和市容管理局",
}

WORK_START = time(9, 0)
WORK_END = time(18, 0)
WORK_DAY_S = 9 * 3600
# 处置时限 in working seconds per small class; unlisted classes: three working days.
DEADLINE_WORK_S = {
    "0102": 4 * 3600,  # 暴露垃圾
    "0104": 2 * 3600,  # 道路不洁
    "0505": 2 * 3600,  # 机动车乱停放
    "0501": 2 * 3600,  # 无照经营游商
    "1101": 2 * 3600,  # 井盖缺损
    "1102": 2 * 3600,
}
DEFAULT_DEADLINE_WORK_S = 3 * WORK_DAY_S
ILLEGAL_BUILDING = "0101"  # 私搭乱建: on site in 2 h, handled in 7 working days
ILLEGAL_BUILDING_ON_SITE_S = 2 * 3600
ILLEGAL_BUILDING_HANDLED_S = 7 * WORK_DAY_S

X_RANGE = (2_000_000.0, 6_000_000.0)  # northing
Y_RANGE = (340_000.0, 660_000.0)  # easting, 500 000 m false easting


class FieldError(ValueError):
    """A request field the platform refuses (answered 422 INVALID_FIELD)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def local_now(clock: Callable[[], datetime]) -> datetime:
    """The simulator clock as a naive Asia/Shanghai datetime, to the second."""
    return clock().astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0)


def fmt(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


def parse_time(text: Any, field: str) -> datetime:
    """Parse ``yyyy-MM-ddTHH:mm:ss`` (local, no zone) or raise FieldError(field)."""
    if not isinstance(text, str) or not _TIME_RE.match(text):
        raise FieldError(field)
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise FieldError(field) from None


def is_workday(day: date) -> bool:
    """Official working day (调休 included); plain Monday–Friday outside the calendar's years."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def add_working_time(start: datetime, seconds: int) -> datetime:
    """``start`` plus ``seconds`` of working time (09:00–18:00 on working days).

    A start outside working time counts from the next working start; a result that lands exactly
    on the end of a working day stays at 18:00 of that day.
    """
    current = start
    remaining = seconds
    while True:
        day_start = datetime.combine(current.date(), WORK_START)
        day_end = datetime.combine(current.date(), WORK_END)
        if not is_workday(current.date()) or current >= day_end:
            current = datetime.combine(current.date() + timedelta(days=1), WORK_START)
            continue
        current = max(current, day_start)
        available = int((day_end - current).total_seconds())
        if remaining <= available:
            return current + timedelta(seconds=remaining)
        remaining -= available
        current = datetime.combine(current.date() + timedelta(days=1), WORK_START)


def deadline_for(small_class: str, status: str, dispatched_at: datetime) -> datetime:
    """处置时限 of a case dispatched at ``dispatched_at``, as it stands in ``status``."""
    if small_class == ILLEGAL_BUILDING:
        budget = ILLEGAL_BUILDING_HANDLED_S if status == "04" else ILLEGAL_BUILDING_ON_SITE_S
    else:
        budget = DEADLINE_WORK_S.get(small_class, DEFAULT_DEADLINE_WORK_S)
    return add_working_time(dispatched_at, budget)


def grid_code(x: float | None, y: float | None) -> str:
    """15-digit 单元网格编码 of the 100 m cell holding (x northing, y easting); empty without a point.

    6 admin + 3 street + 3 community + 3 sequence. Streets are 2 km blocks, communities 500 m blocks,
    and the sequence numbers the 25 cells of 100 m inside a community block: deterministic, so the
    same point always lands in the same grid.
    """
    if x is None or y is None:
        return ""
    cell_n, cell_e = int(x // 100), int(y // 100)
    street = ((cell_n // 20) * 7 + (cell_e // 20) * 3) % 13 + 1
    community = ((cell_n // 5) * 11 + (cell_e // 5) * 5) % 30 + 1
    sequence = (cell_n % 5) * 5 + (cell_e % 5) + 1
    return f"{ADMIN_CODE}{street:03d}{community:03d}{sequence:03d}"


def _text(body: dict[str, Any], field: str, *, required: bool) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise FieldError(field)
        return ""
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field)
    return value


def _coordinate(value: Any, field: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(field)
    if not bounds[0] <= float(value) <= bounds[1]:
        raise FieldError(field)
    return float(value)


def photos_of(body: dict[str, Any]) -> list[str]:
    """The ``photos`` list of a request body (absent → empty), or FieldError("photos")."""
    photos = body.get("photos")
    if photos is None:
        return []
    if not isinstance(photos, list) or not all(isinstance(p, str) and p for p in photos):
        raise FieldError("photos")
    return list(photos)


def validate_new_case(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Check a ``POST /dcm/api/cases`` body the way the platform does; return the clean fields.

    Raises FieldError naming the first refused field.
    """
    source = _text(body, "source", required=True)
    if source not in API_SOURCES:
        raise FieldError("source")
    external_no = _text(body, "externalNo", required=True)
    event_type = body.get("eventType")
    if isinstance(event_type, int) and not isinstance(event_type, bool):
        event_type = str(event_type)
    if event_type not in ("1", "2"):
        raise FieldError("eventType")
    big_class = _text(body, "bigClass", required=True)
    if big_class not in TAXONOMY:
        raise FieldError("bigClass")
    small_class = _text(body, "smallClass", required=True)
    if small_class not in TAXONOMY[big_class][1]:
        raise FieldError("smallClass")
    if (event_type == "1") != big_class.startswith("1"):
        raise FieldError("eventType")
    description = _text(body, "description", required=True)
    address = _text(body, "address", required=False)
    reporter = _text(body, "reporter", required=False)
    x, y = body.get("x"), body.get("y")
    if (x is None) != (y is None):
        raise FieldError("y" if y is None else "x")
    if x is not None:
        x = _coordinate(x, "x", X_RANGE)
        y = _coordinate(y, "y", Y_RANGE)
    report_time = now
    if body.get("reportTime") not in (None, ""):
        report_time = parse_time(body["reportTime"], "reportTime")
    return {
        "source": source, "externalNo": external_no, "eventType": event_type, "bigClass": big_class,
        "smallClass": small_class, "description": description, "address": address, "x": x, "y": y,
        "reportTime": fmt(report_time), "reporter": reporter, "photos": photos_of(body),
    }
