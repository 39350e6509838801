"""The working calendar deadlines are counted on: 09:00–18:00 Asia/Shanghai on working days.

Working days come from the ``chinese-calendar`` package (the State Council's holiday notice each
year, make-up working days (调休) included), overridden day by day by the admin's own
``CalendarDay`` rows: a local holiday, or a notice the package does not know yet. A year the
package has no data for falls back to Monday–Friday plus the admin's rows; ``calendar_gaps`` names
such years so the console can say so instead of silently counting a Spring Festival as work.

Spans are written the way the department systems write theirs (shared/world/city_management.md,
hotline12345.md): ``"Nh"`` is N working hours; ``"Nd"`` is N working days, i.e. the same
working-clock time N working days later. A start outside working hours counts from the next
working start. Every datetime in and out is aware UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import CalendarDay, Case, utcnow

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORK_START = time(9, 0)
WORK_END = time(18, 0)
DAY_SECONDS = (WORK_END.hour - WORK_START.hour) * 3600
KINDS = ("workday", "holiday")
_SPAN = re.compile(r"^([1-9][0-9]{0,2})([hd])$")
_MAX_SCAN_DAYS = 3 * 366  # a span never needs to look further than this for its next working day


def parse_span(span: str) -> tuple[int, str]:
    """``"4h"`` → ``(4, "h")``; ``"7d"`` → ``(7, "d")``; anything else is a ValueError."""
    m = _SPAN.match(span.strip())
    if m is None:
        raise ValueError(f"bad span {span!r}: write N working hours as '4h' or N working days as '7d' (1–999)")
    return int(m.group(1)), m.group(2)


@lru_cache(maxsize=8192)
def _package_workday(d: date) -> bool | None:
    """The package's answer, or None for a year it has no data for."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return None


def calendar_gaps(years: Iterable[int]) -> list[int]:
    """The years the packaged holiday calendar does not cover (weekdays are assumed there)."""
    return sorted({y for y in years if _package_workday(date(y, 6, 1)) is None})


class WorkCalendar:
    """The calendar with the admin's days applied; cheap to build, so load one per operation."""

    def __init__(self, overrides: dict[date, str] | None = None) -> None:
        self.overrides = dict(overrides or {})

    @classmethod
    def load(cls, session: Session) -> WorkCalendar:
        return cls({row.day: row.kind for row in session.scalars(select(CalendarDay))})

    def is_workday(self, d: date) -> bool:
        kind = self.overrides.get(d)
        if kind is not None:
            return kind == "workday"
        known = _package_workday(d)
        return d.weekday() < 5 if known is None else known

    def _next_workday(self, d: date) -> date:
        for _ in range(_MAX_SCAN_DAYS):
            d += timedelta(days=1)
            if self.is_workday(d):
                return d
        raise ValueError(f"no working day within {_MAX_SCAN_DAYS} days after {d}")

    def _working_start(self, local: datetime) -> datetime:
        """``local`` if it lies in working time, else the next working start (both local)."""
        d = local.date()
        if self.is_workday(d):
            if local.time() < WORK_START:
                return datetime.combine(d, WORK_START, SHANGHAI)
            if local.time() < WORK_END:
                return local
        return datetime.combine(self._next_workday(d), WORK_START, SHANGHAI)

    def add_working(self, start: datetime, span: str) -> datetime:
        n, unit = parse_span(span)
        cur = self._working_start(start.astimezone(SHANGHAI))
        if unit == "d":
            d = cur.date()
            for _ in range(n):
                d = self._next_workday(d)
            return datetime.combine(d, cur.timetz().replace(tzinfo=None), SHANGHAI).astimezone(UTC)
        return self.add_working_seconds(cur.astimezone(UTC), n * 3600)

    def add_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """``start`` plus ``seconds`` of working time."""
        cur = self._working_start(start.astimezone(SHANGHAI))
        remaining = seconds
        while True:
            left_today = (datetime.combine(cur.date(), WORK_END, SHANGHAI) - cur).total_seconds()
            if remaining <= left_today:
                return (cur + timedelta(seconds=remaining)).astimezone(UTC)
            remaining -= left_today
            cur = datetime.combine(self._next_workday(cur.date()), WORK_START, SHANGHAI)

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working time from ``a`` to ``b`` (0 when ``b`` is not after ``a``)."""
        if b <= a:
            return 0.0
        la, lb = a.astimezone(SHANGHAI), b.astimezone(SHANGHAI)
        total = 0.0
        d = la.date()
        while d <= lb.date():
            if self.is_workday(d):
                lo = max(la, datetime.combine(d, WORK_START, SHANGHAI))
                hi = min(lb, datetime.combine(d, WORK_END, SHANGHAI))
                if hi > lo:
                    total += (hi - lo).total_seconds()
            d += timedelta(days=1)
        return total


def local_day(moment: datetime) -> date:
    """The Asia/Shanghai calendar day of ``moment`` (the day a case is counted on)."""
    return moment.astimezone(SHANGHAI).date()


def set_day(session: Session, day: date, kind: str, name: str, actor: str) -> CalendarDay:
    """Make ``day`` a working day or a holiday whatever the package says (audited)."""
    from hub.services import audit, txcache

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    txcache.forget(session)
    row = session.get(CalendarDay, day)
    before = {"kind": row.kind, "name": row.name} if row is not None else None
    if row is None:
        row = CalendarDay(day=day, kind=kind, name=name[:100], updated_by=actor)
        session.add(row)
    else:
        row.kind, row.name, row.updated_by = kind, name[:100], actor
    audit.record(session, actor, "calendar.set", "calendar_day", day.isoformat(), before,
                 {"kind": kind, "name": name[:100]})
    return row


def remove_day(session: Session, day: date, actor: str) -> bool:
    from hub.services import audit, txcache

    txcache.forget(session)
    row = session.get(CalendarDay, day)
    if row is None:
        return False
    audit.record(session, actor, "calendar.remove", "calendar_day", day.isoformat(),
                 {"kind": row.kind, "name": row.name}, None)
    session.delete(row)
    return True


def export_days(session: Session) -> list[dict[str, str]]:
    return [{"date": r.day.isoformat(), "kind": r.kind, "name": r.name}
            for r in session.scalars(select(CalendarDay).order_by(CalendarDay.day))]


def import_days(session: Session, rows: Iterable[dict[str, str]], actor: str) -> int:
    """Set every ``{date, kind, name}`` row; a bad row stops the import with its line number."""
    count = 0
    for i, raw in enumerate(rows, start=1):
        try:
            day = date.fromisoformat(str(raw["date"]).strip())
            set_day(session, day, str(raw["kind"]).strip(), str(raw.get("name") or ""), actor)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"row {i}: {exc}") from exc
        count += 1
    return count


SUSPENDED = "SUSPENDED"


def pause_clock(session: Session, case: Case, previous: str, now: datetime | None = None) -> None:
    """Stop a case's clock while it is SUSPENDED; on leaving, push its deadlines on by the working
    time it spent on hold (a held case is not late for the time it was held)."""
    moment = now or utcnow()
    if case.status == SUSPENDED and previous != SUSPENDED and case.clock_paused_at is None:
        case.clock_paused_at = moment
    elif case.status != SUSPENDED and case.clock_paused_at is not None:
        cal = WorkCalendar.load(session)
        held = cal.working_seconds_between(case.clock_paused_at, moment)
        if held > 0:
            if case.due_at is not None:
                case.due_at = cal.add_working_seconds(case.due_at, held)
            if case.onsite_due_at is not None:
                case.onsite_due_at = cal.add_working_seconds(case.onsite_due_at, held)
        case.clock_paused_at = None
