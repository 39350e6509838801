"""A metrics report as CSV for Excel: UTF-8 with a BOM (Excel otherwise reads Chinese as GBK),
a header row, one row per value, a last 合计 row; hours, not seconds, and rates as fractions."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from hub.models import utcnow
from hub.services.metrics import Counts, Report
from hub.services.workdays import local_day

BOM = "\ufeff"
HEADER = ("key", "名称", "立案数", "办结数", "办结率", "有时限的办结数", "按期办结数", "按期办结率",
          "平均处置时长（工作小时）", "P90 处置时长（工作小时）", "减少重复录入（件）")
DEFAULT_DAYS = 30
EARLIEST, LATEST = date(1970, 1, 1), date(2199, 12, 31)


def default_period(first: date | None, last: date | None) -> tuple[date, date]:
    """The period a question means when it leaves ends out: the last 30 days up to today (Shanghai)."""
    last = last or (first + timedelta(days=DEFAULT_DAYS - 1) if first else local_day(utcnow()))
    return first or last - timedelta(days=DEFAULT_DAYS - 1), last


def _clamp(d: date | None) -> date | None:
    return None if d is None else min(max(d, EARLIEST), LATEST)


def asked_period(first: date | None, last: date | None) -> tuple[date, date]:
    """The period a person or a client asked about, always answerable (the API's fuzz test holds
    it to that): missing ends as ``default_period``, dates beyond the hub's calendar clamped to it,
    ends given the wrong way round swapped."""
    first, last = default_period(_clamp(first), _clamp(last))
    first, last = _clamp(first) or first, _clamp(last) or last
    return (last, first) if last < first else (first, last)


def _num(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None else f"{value / scale:.4f}".rstrip("0").rstrip(".")


def _cells(key: str, label: str, c: Counts) -> list[str]:
    return [key, label, str(c.filed), str(c.closed), _num(c.closure_rate), str(c.closed_due), str(c.on_time),
            _num(c.on_time_rate), _num(c.avg_handling_s, 3600), _num(c.p90_handling_s, 3600), str(c.entries_saved)]


def report_csv(report: Report) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for key, label, c in report.rows:
        writer.writerow(_safe(_cells(key, label, c)))
    writer.writerow(_cells("", "合计", report.totals))
    return out.getvalue()


def _safe(cells: list[str]) -> list[str]:
    """No cell starts a formula when Excel opens the file (CSV injection): labels come from
    department systems."""
    return ["'" + c if c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in cells]
