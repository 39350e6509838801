"""Local time and the working calendar of the 12345 simulator (办理时限 arithmetic).

12345 counts deadlines in working days of the State Council holiday notice, make-up
working days (调休) included; ``chinese_calendar`` carries that notice year by year.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import chinese_calendar

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"

# 诉求性质 → working days: 咨询 2, 求决/建议 10, 投诉/举报 15. 感谢 (5) is not in the table;
# it gets the common 10 days.
WORKING_DAYS_BY_SQXZ = {"1": 10, "2": 15, "3": 2, "4": 10, "5": 10, "6": 15}


def format_local(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai, no zone (the 12345 wire format)."""
    return moment.astimezone(SHANGHAI).strftime(LOCAL_FORMAT)


def parse_local(text: str) -> datetime:
    """Parse the 12345 wire format as Asia/Shanghai; raises ValueError when malformed."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    return datetime.strptime(text, LOCAL_FORMAT).replace(tzinfo=SHANGHAI)


def is_working_day(day: date) -> bool:
    """True on a working day of the official calendar (调休 Saturdays/Sundays included)."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        # The notice for that year is not published yet: fall back to Monday..Friday.
        return day.weekday() < 5


def add_working_days(moment: datetime, days: int) -> datetime:
    """The same clock time on the ``days``-th working day after ``moment``'s date."""
    day = moment.date()
    counted = 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, moment.timetz())


def deadline(ldsj: datetime, sqxz: str, jjcd: str) -> datetime:
    """办理时限 of a new work order: by 诉求性质, or end of the call day when 特急."""
    if jjcd == "3":
        return datetime.combine(ldsj.date(), time(23, 59, 59), tzinfo=ldsj.tzinfo)
    return add_working_days(ldsj, WORKING_DAYS_BY_SQXZ.get(sqxz, 10))
