"""Centre metrics: the rollup answers what the cases themselves say (checked against a plain
computation on random data), refreshes incrementally and idempotently, survives a crash, and
keeps a jurisdiction to itself."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import Case, CaseEvent, GridReport, MetricsRollup, MetricsWatermark, Ticket, User
from hub.services import metrics, metrics_detail
from hub.services.metrics import BY, Counts, WorkClock, bucket_of, quantile, refresh, report
from hub.services.workdays import SHANGHAI, WorkCalendar
from tests.support.metrics_data import GRIDS, STREET_A, STREET_B, add_case, seed_random

START = date(2026, 1, 1)


def _oracle(ctx: HubContext, first: date, last: date, by: str, scope: str) -> dict[str, Counts]:
    """The figures straight from the ORM, with the calendar's own day-by-day working time."""
    out: dict[str, Counts] = defaultdict(Counts)
    with ctx.db.read_session() as s:
        cal = WorkCalendar.load(s)
        for case in s.scalars(select(Case)):
            day = case.reported_at.astimezone(SHANGHAI).date()
            if case.merged_into_id is not None or not first <= day <= last or not case.grid_code.startswith(scope):
                continue
            tickets = len(list(s.scalars(select(Ticket.id).where(Ticket.case_id == case.id))))
            key = {"category": case.category, "department": case.department or case.owner_system,
                   "grid": case.grid_code, "street": case.grid_code[:9], "day": day.isoformat(),
                   "week": (day - timedelta(days=day.weekday())).isoformat(), "month": day.strftime("%Y-%m")}[by]
            c = out[key]
            c.filed += 1
            c.entries_saved += tickets - 1
            if case.closed_at is not None:
                seconds = int(cal.working_seconds_between(case.reported_at, case.closed_at))
                c.closed += 1
                c.handling_s += seconds
                c.buckets[bucket_of(seconds)] += 1
                if case.due_at is not None:
                    c.closed_due += 1
                    c.on_time += case.closed_at <= case.due_at
    return out


def _same(got: dict[str, Counts], want: dict[str, Counts]) -> None:
    assert set(got) == set(want)
    for key, c in want.items():
        g = got[key]
        assert (g.filed, g.closed, g.closed_due, g.on_time, g.entries_saved) == \
            (c.filed, c.closed, c.closed_due, c.on_time, c.entries_saved), key
        assert abs(g.handling_s - c.handling_s) <= c.closed, key  # float → int per case
        assert sum(g.buckets) == sum(c.buckets), key


def _as_dict(r: metrics.Report) -> dict[str, Counts]:
    return {key: c for key, _label, c in r.rows}


def test_the_rollup_answers_what_the_cases_say(hub_ctx: HubContext) -> None:
    seed_random(hub_ctx, 400)
    assert refresh(hub_ctx).full
    rnd = random.Random(3)
    periods = [(START, START + timedelta(days=74)), (date(2026, 2, 1), date(2026, 2, 28)),
               (date(2026, 1, 20), date(2026, 3, 5))]
    periods += [(START + timedelta(days=a), START + timedelta(days=a + rnd.randrange(40)))
                for a in (rnd.randrange(40) for _ in range(3))]
    with hub_ctx.db.read_session() as s:
        for first, last in periods:
            for by in BY:
                for scope in ("", STREET_A, GRIDS[4][:12], GRIDS[7]):
                    got = report(s, first, last, by, scope)
                    _same(_as_dict(got), _oracle(hub_ctx, first, last, by, scope))
                    assert got.totals.filed == sum(c.filed for c in _as_dict(got).values())


def test_refresh_is_incremental_idempotent_and_survives_a_crash(hub_ctx: HubContext,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "OVERLAP", timedelta(0))  # the test's writes are all seconds apart
    seed_random(hub_ctx, 150)
    refresh(hub_ctx)

    def rows() -> list[tuple[Any, ...]]:
        with hub_ctx.db.read_session() as s:
            return sorted(tuple(getattr(r, c.name) for c in MetricsRollup.__table__.columns)
                          for r in s.scalars(select(MetricsRollup)))

    with hub_ctx.db.session() as s:
        case = s.scalars(select(Case).where(Case.closed_at.is_(None), Case.merged_into_id.is_(None))).first()
        assert case is not None
        case.closed_at, case.status = case.reported_at + timedelta(hours=30), "CLOSED"
        add_case(s, reported=datetime(2026, 2, 10, 3, tzinfo=UTC), grid=GRIDS[0])
    later = refresh(hub_ctx)
    assert not later.full and 1 <= later.days <= 2
    incremental = rows()
    assert refresh(hub_ctx, full=True).full and rows() == incremental  # same as rebuilding everything
    assert refresh(hub_ctx).days == 0 and rows() == incremental  # again: nothing to do
    with hub_ctx.db.session() as s:
        s.add(MetricsWatermark(name="other"))  # (a no-op write, to move time on)
    monkeypatch.setattr(metrics, "OVERLAP", timedelta(hours=1))
    assert refresh(hub_ctx).days > 2 and rows() == incremental  # recomputing days again changes nothing
    monkeypatch.setattr(metrics, "OVERLAP", timedelta(0))

    with hub_ctx.db.session() as s:
        add_case(s, reported=datetime(2026, 4, 20, 3, tzinfo=UTC), grid=GRIDS[1])
        mark_before = s.get(MetricsWatermark, metrics.WATERMARK)
        assert mark_before is not None
        at_before = mark_before.at

    def crash(*_args: Any) -> None:
        raise RuntimeError("power cut")

    original = metrics._rebuild_month
    monkeypatch.setattr(metrics, "_rebuild_month", crash)
    with pytest.raises(RuntimeError):
        refresh(hub_ctx)
    assert rows() == incremental
    with hub_ctx.db.read_session() as s:
        mark = s.get(MetricsWatermark, metrics.WATERMARK)
        assert mark is not None and mark.at == at_before
    monkeypatch.setattr(metrics, "_rebuild_month", original)
    refresh(hub_ctx)
    with hub_ctx.db.read_session() as s:
        assert report(s, date(2026, 4, 20), date(2026, 4, 20), "grid").totals.filed == 1


def test_on_time_p90_entries_saved_and_merged_cases(hub_ctx: HubContext) -> None:
    monday = datetime(2026, 3, 2, 1, tzinfo=UTC)  # 09:00 in Shanghai, a working Monday
    with hub_ctx.db.session() as s:
        kept = add_case(s, reported=monday, closed=monday + timedelta(hours=1), due=monday + timedelta(hours=2),
                        tickets=3)
        add_case(s, reported=monday, closed=monday + timedelta(hours=5), due=monday + timedelta(hours=2))
        add_case(s, reported=monday, closed=monday + timedelta(hours=2))  # no deadline: not in the on-time rate
        add_case(s, reported=monday)  # open
        add_case(s, reported=monday, closed=monday + timedelta(hours=1), tickets=4, merged_into=kept.id,
                 status="CANCELLED")
    refresh(hub_ctx)
    with hub_ctx.db.read_session() as s:
        t = report(s, date(2026, 3, 2), date(2026, 3, 2), "category").totals
    assert (t.filed, t.closed, t.closed_due, t.on_time, t.entries_saved) == (4, 3, 2, 1, 2)
    assert t.closure_rate == 0.75 and t.on_time_rate == 0.5
    assert t.avg_handling_s == pytest.approx((3600 + 5 * 3600 + 2 * 3600) / 3)
    assert t.p90_handling_s is not None and 4 * 3600 < t.p90_handling_s <= 9 * 3600


def test_p90_lies_in_the_bucket_of_the_exact_p90() -> None:
    rnd = random.Random(5)
    values = sorted(int(rnd.expovariate(1 / 40000)) for _ in range(1000))
    buckets = [0] * 13
    for v in values:
        buckets[bucket_of(v)] += 1
    exact = values[899]
    estimate = quantile(buckets, 0.9)
    assert estimate is not None and bucket_of(exact) == bucket_of(estimate)
    assert quantile([0] * 13, 0.9) is None


def test_work_clock_is_the_calendars_working_time() -> None:
    cal = WorkCalendar()
    clock = WorkClock(cal)
    rnd = random.Random(11)
    base = datetime(2025, 9, 20, tzinfo=UTC)  # spans the National Day holiday
    for _ in range(300):
        a = base + timedelta(seconds=rnd.randrange(120 * 86400))
        b = a + timedelta(seconds=rnd.randrange(30 * 86400))
        assert clock.between(a, b) == pytest.approx(cal.working_seconds_between(a, b))


def test_a_street_never_sees_another_streets_numbers(hub_ctx: HubContext) -> None:
    day = datetime(2026, 3, 3, 2, tzinfo=UTC)
    with hub_ctx.db.session() as s:
        add_case(s, reported=day, grid=f"{STREET_A}001001", category="small_ads")
        for _ in range(3):
            add_case(s, reported=day, grid=f"{STREET_B}001001", category="group_rental")
    refresh(hub_ctx)
    with hub_ctx.db.read_session() as s:
        for by in BY:
            mine = report(s, date(2026, 3, 1), date(2026, 3, 31), by, STREET_A)
            assert mine.totals.filed == 1, by
            assert all(STREET_B not in key for key, _l, _c in mine.rows)
        assert [k for k, _l, _c in report(s, date(2026, 3, 1), date(2026, 3, 31), "category", STREET_A).rows] \
            == ["small_ads"]
    with pytest.raises(ValueError):
        report(s, date(2026, 3, 2), date(2026, 3, 1), "category")
    with pytest.raises(ValueError):
        report(s, date(2026, 3, 2), date(2026, 3, 3), "weekday")


def test_returns_by_department_with_reasons(hub_ctx: HubContext) -> None:
    at = datetime(2026, 3, 4, 2, tzinfo=UTC)
    with hub_ctx.db.session() as s:
        mine = add_case(s, reported=at, grid=f"{STREET_A}001001")
        other = add_case(s, reported=at, grid=f"{STREET_B}001001")
        ticket = s.scalars(select(Ticket).where(Ticket.case_id == mine.id)).one()
        ticket.department, ticket.fields = "区绿化市容局", {"result_text": "非本单位职责"}
        for case, detail in ((mine, {"to": "RETURNED", "ticket_id": ticket.id}),
                             (mine, {"to": "RETURNED", "reason": "应由街道处置"}),
                             (mine, {"to": "IN_PROGRESS"}), (other, {"to": "RETURNED"})):
            s.add(CaseEvent(case_id=case.id, kind="status_changed", at=at, system_key="sys0", detail=detail))
    with hub_ctx.db.read_session() as s:
        rows = metrics_detail.returns(s, date(2026, 3, 1), date(2026, 3, 31), STREET_A)
        everywhere = metrics_detail.returns(s, date(2026, 3, 1), date(2026, 3, 31))
    assert [(r.department, r.returns, dict(r.reasons)) for r in rows] == [
        ("sys0", 1, {"应由街道处置": 1}), ("区绿化市容局", 1, {"非本单位职责": 1})]
    assert sum(r.returns for r in everywhere) == 3
    assert metrics_detail.NO_REASON in next(r for r in everywhere if r.department == "sys0").reasons


def test_worker_mix_against_the_grid(hub_ctx: HubContext) -> None:
    at = datetime(2026, 3, 5, 2, tzinfo=UTC)
    grid = GRIDS[0]
    with hub_ctx.db.session() as s:
        easy = User(username="w1", display_name="张三", password_hash="x", role="grid_worker", scope=grid)
        s.add(easy)
        s.flush()
        for i, category in enumerate(["garbage_exposed"] * 5):
            s.add(GridReport(client_id=f"c{i}", reporter_id=easy.id, category=category, lat=31.0, lng=121.0,
                             grid_code=grid, created_at=at))
        for category in ["garbage_exposed"] * 5 + ["illegal_construction"] * 5:
            add_case(s, reported=at, grid=grid, category=category)
    with hub_ctx.db.read_session() as s:
        (w,) = metrics_detail.worker_mix(s, date(2026, 3, 1), date(2026, 3, 31), STREET_A)
        assert metrics_detail.worker_mix(s, date(2026, 3, 1), date(2026, 3, 31), STREET_B) == []
    assert (w.name, w.reports, w.grids) == ("张三", 5, [grid])
    assert w.distance == pytest.approx(0.5)
    assert w.top() == [("garbage_exposed", 1.0, 0.5)]


def test_a_full_rebuild_month_by_month_drops_rows_outside_todays_cases(hub_ctx: HubContext) -> None:
    seed_random(hub_ctx, 40)
    refresh(hub_ctx)
    with hub_ctx.db.session() as s:
        before = s.scalar(select(func.count()).select_from(MetricsRollup))
        s.add_all([MetricsRollup(grain=g, dim="category", day=date(2019, 1, 1), street="310104001", key="x",
                                 filed=9) for g in ("d", "m")])
    result = refresh(hub_ctx, full=True)
    assert result.full and result.rows > 0
    with hub_ctx.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(MetricsRollup)) == before
        assert s.scalar(select(MetricsRollup).where(MetricsRollup.day == date(2019, 1, 1))) is None


def test_a_case_whose_first_report_moves_to_another_day_leaves_its_old_day(hub_ctx: HubContext,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An earlier report linked late moves the case's filing day: the incremental refresh rebuilds
    the day it left as well as the one it joined (no ``--full`` needed), and the timeline says so."""
    from hub.facade import MatchDecision
    from hub.services.cases import REPORT_DAY_MOVED, link_ticket

    monkeypatch.setattr(metrics, "OVERLAP", timedelta(0))
    with hub_ctx.db.session() as s:
        case = add_case(s, reported=datetime(2026, 3, 10, 2, tzinfo=UTC))
        case_id = case.id
    refresh(hub_ctx, full=True)
    with hub_ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        late = Ticket(system_key="police", system_type="fakesys", external_id="EARLIER", status_code="1",
                      status=case.status, category=case.category, reported_at=datetime(2026, 3, 8, 23, tzinfo=UTC))
        s.add(late)
        s.flush()
        link_ticket(s, case, late, MatchDecision(case_id=case.id, reason="test", matcher="test"))
    with hub_ctx.db.read_session() as s:
        [moved] = s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id,
                                                    CaseEvent.kind == REPORT_DAY_MOVED)).all()
        assert "2026-03-10 10:00" in moved.summary and "2026-03-09 07:00" in moved.summary
    assert _filed_by_day(hub_ctx) == {"2026-03-10": 1}  # not refreshed yet
    assert refresh(hub_ctx).days == 2  # the day it joined and the day it left
    assert _filed_by_day(hub_ctx) == {"2026-03-09": 1}


def _filed_by_day(ctx: HubContext) -> dict[str, int]:
    with ctx.db.read_session() as s:
        return {key: c.filed for key, _label, c in report(s, date(2026, 3, 9), date(2026, 3, 10), "day", "").rows}
