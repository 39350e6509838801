"""The working calendar: 09:00–18:00 Shanghai on working days, State Council holidays and 调休
make-up days from chinese-calendar, the admin's own days over them, and a weekday fallback for a
year the package does not cover."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from hub.context import HubContext
from hub.models import AuditEntry, Case
from hub.services import workdays
from hub.services.workdays import WorkCalendar, calendar_gaps, parse_span

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)  # type: ignore[misc]


def test_national_day_week_2025_hours_skip_the_holiday() -> None:
    cal = WorkCalendar()
    # Tue 30 Sept 17:00: one hour left that day; 1–8 Oct are holidays; Thu 9 Oct 09:00 + 3 h
    assert cal.add_working(sh(2025, 9, 30, 17), "4h") == sh(2025, 10, 9, 12)


def test_national_day_week_2025_days_count_the_make_up_saturday() -> None:
    cal = WorkCalendar()
    assert cal.is_workday(date(2025, 9, 28)) and cal.is_workday(date(2025, 10, 11))  # 调休 Sun, Sat
    assert not cal.is_workday(date(2025, 10, 8))
    # 9, 10, 11 (Sat, make-up), 13, 14, 15, 16 October: the same clock time on the 7th working day
    assert cal.add_working(sh(2025, 9, 30, 17), "7d") == sh(2025, 10, 16, 17)


def test_a_start_outside_working_hours_counts_from_the_next_working_start() -> None:
    cal = WorkCalendar()
    assert cal.add_working(sh(2026, 11, 21, 22), "2h") == sh(2026, 11, 23, 11)  # Saturday night → Monday
    assert cal.add_working(sh(2026, 11, 23, 7), "1d") == sh(2026, 11, 24, 9)
    assert cal.add_working(sh(2026, 11, 23, 16), "2h") == sh(2026, 11, 23, 18)  # ends exactly at 18:00


def test_working_seconds_between_skips_nights_weekends_and_holidays() -> None:
    cal = WorkCalendar()
    assert cal.working_seconds_between(sh(2025, 9, 30, 17), sh(2025, 10, 9, 10)) == 2 * 3600
    assert cal.working_seconds_between(sh(2026, 11, 23, 10), sh(2026, 11, 23, 9)) == 0
    assert cal.working_seconds_between(sh(2026, 11, 20, 17), sh(2026, 11, 23, 10)) == 2 * 3600


def test_the_admins_days_override_the_package() -> None:
    cal = WorkCalendar({date(2025, 10, 9): "holiday", date(2025, 10, 4): "workday"})
    assert cal.add_working(sh(2025, 9, 30, 17), "4h") == sh(2025, 10, 4, 12)
    assert not WorkCalendar({date(2025, 10, 9): "holiday"}).is_workday(date(2025, 10, 9))


def test_a_year_without_package_data_falls_back_to_weekdays_and_is_reported() -> None:
    cal = WorkCalendar()
    assert calendar_gaps([2025, 2031]) == [2031]
    assert cal.is_workday(date(2031, 1, 6)) and not cal.is_workday(date(2031, 1, 5))  # Monday / Sunday
    assert cal.add_working(sh(2031, 1, 3, 17), "2h") == sh(2031, 1, 6, 10)  # Friday → Monday


@pytest.mark.parametrize("span", ["", "0h", "4", "2w", "1000d", "-1h", "h"])
def test_bad_spans_are_refused(span: str) -> None:
    with pytest.raises(ValueError):
        parse_span(span)
    with pytest.raises(ValueError):
        WorkCalendar().add_working(sh(2026, 11, 23, 10), span)


def test_set_import_and_remove_days_are_audited(hub_ctx: HubContext) -> None:
    with hub_ctx.db.session() as s:
        workdays.set_day(s, date(2026, 12, 24), "holiday", "区放假", "admin")
        assert workdays.import_days(s, [{"date": "2026-12-26", "kind": "workday", "name": "调休"}], "admin") == 1
        with pytest.raises(ValueError, match="row 1"):
            workdays.import_days(s, [{"date": "2026-12-27", "kind": "party"}], "admin")
    with hub_ctx.db.session() as s:
        cal = WorkCalendar.load(s)
        assert not cal.is_workday(date(2026, 12, 24)) and cal.is_workday(date(2026, 12, 26))
        assert [d["date"] for d in workdays.export_days(s)] == ["2026-12-24", "2026-12-26"]
        assert workdays.remove_day(s, date(2026, 12, 24), "admin") and not workdays.remove_day(s, date(2026, 1, 1), "x")
    with hub_ctx.db.read_session() as s:
        actions = [e.action for e in s.query(AuditEntry).order_by(AuditEntry.id)]
    assert actions == ["calendar.set", "calendar.set", "calendar.remove"]


def test_a_suspended_case_does_not_lose_time(hub_ctx: HubContext) -> None:
    case = Case(number="GH1", category="street_vending", status="SUSPENDED", reported_at=sh(2026, 11, 23, 9),
                due_at=sh(2026, 11, 23, 11), onsite_due_at=sh(2026, 11, 23, 10))
    with hub_ctx.db.session() as s:
        workdays.pause_clock(s, case, "IN_PROGRESS", now=sh(2026, 11, 23, 10, 30))
        assert case.clock_paused_at == sh(2026, 11, 23, 10, 30)
        workdays.pause_clock(s, case, "SUSPENDED", now=sh(2026, 11, 23, 12))  # still held: nothing moves
        assert case.due_at == sh(2026, 11, 23, 11)
        case.status = "IN_PROGRESS"
        # held 10:30–18:00 Monday and 09:00–10:00 Tuesday: 8.5 working hours
        workdays.pause_clock(s, case, "SUSPENDED", now=sh(2026, 11, 24, 10))
        assert case.clock_paused_at is None
        assert case.due_at == sh(2026, 11, 24, 10, 30)
        assert case.onsite_due_at == sh(2026, 11, 24, 9, 30)
        s.expunge_all()
