"""The deadline sweep: an overdue case climbs one level with a fresh deadline and its operators at
that level hear of it, once; held, finished and merged cases are left alone; a grid-handled case
that climbs is handed to its department."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from hub.context import HubContext
from hub.models import Case, CaseEvent, Notification, OutboundMessage, User
from hub.services import escalation
from hub.services.workdays import WorkCalendar
from tests.support.console import make_user

NOW = datetime(2026, 11, 24, 3, tzinfo=UTC)  # Tuesday 11:00 in Shanghai
GRID = "310104001001001"


def _case(ctx: HubContext, number: str, *, category: str = "small_ads", level: str = "grid", mode: str = "grid",
          due: datetime | None = datetime(2026, 11, 24, 2, tzinfo=UTC), status: str = "IN_PROGRESS",
          grid: str = GRID, paused: datetime | None = None) -> int:
    with ctx.db.session() as s:
        case = Case(number=number, category=category, status=status, title="t", grid_code=grid, level=level,
                    handling_mode=mode, due_at=due, clock_paused_at=paused, address="斜土路100号",
                    description="有人在墙上贴了很多小广告", lat=31.188, lng=121.452,
                    reported_at=datetime(2026, 11, 23, 2, tzinfo=UTC))
        s.add(case)
        s.flush()
        return case.id


def _users(ctx: HubContext) -> dict[str, int]:
    make_user(ctx, "community_op", "operator", GRID[:12])
    make_user(ctx, "street_op", "operator", GRID[:9])
    make_user(ctx, "other_street_op", "operator", "310104002")
    make_user(ctx, "grid_worker", "grid_worker", GRID)
    make_user(ctx, "city_op", "operator", "")
    with ctx.db.read_session() as s:
        return {u.username: u.id for u in s.scalars(select(User))}


def _notified(ctx: HubContext) -> list[tuple[int, str]]:
    with ctx.db.read_session() as s:
        return sorted((n.user_id, n.kind) for n in s.scalars(select(Notification)))


def test_an_overdue_grid_case_climbs_to_the_community_once(hub_ctx: HubContext) -> None:
    users = _users(hub_ctx)
    case_id = _case(hub_ctx, "GH1")
    result = escalation.sweep(hub_ctx, now=NOW)
    assert result.escalated == 1
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert (case.level, case.escalations) == ("community", 1)
        assert case.due_at == WorkCalendar().add_working(NOW, "1d")  # small ads: handled within 1 working day
        kinds = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id))]
        assert kinds == ["escalated"]
    # the community's and the street's operators; not another street's, not a grid worker, not city-wide
    assert _notified(hub_ctx) == sorted([(users["community_op"], "escalated"), (users["street_op"], "escalated")])
    again = escalation.sweep(hub_ctx, now=NOW)
    assert again.escalated == 0 and len(_notified(hub_ctx)) == 2


def test_held_finished_and_merged_cases_are_left_alone(hub_ctx: HubContext) -> None:
    _users(hub_ctx)
    _case(hub_ctx, "GH-held", paused=datetime(2026, 11, 23, 3, tzinfo=UTC), status="SUSPENDED")
    _case(hub_ctx, "GH-done", status="RESOLVED")
    merged = _case(hub_ctx, "GH-merged")
    target = _case(hub_ctx, "GH-target", due=None)
    with hub_ctx.db.session() as s:
        case = s.get(Case, merged)
        assert case is not None
        case.merged_into_id = target
    assert escalation.sweep(hub_ctx, now=NOW).escalated == 0
    assert _notified(hub_ctx) == []


def test_at_district_level_it_stays_and_is_notified_once_per_deadline(hub_ctx: HubContext) -> None:
    users = _users(hub_ctx)
    _case(hub_ctx, "GH-d", level="district", mode="department")
    for _ in range(2):
        result = escalation.sweep(hub_ctx, now=NOW)
        assert result.escalated == 0
    # a district-level case is the district's business: its street and community operators are not paged
    assert _notified(hub_ctx) == [(users["city_op"], "overdue")]


def test_due_soon_and_untaken_on_site_deadline_are_notified(hub_ctx: HubContext) -> None:
    users = _users(hub_ctx)
    _case(hub_ctx, "GH-soon", level="street", mode="department", due=datetime(2026, 11, 24, 3, 30, tzinfo=UTC))
    with hub_ctx.db.session() as s:
        s.add(Case(number="GH-onsite", category="street_vending", status="REPORTED", title="t", grid_code=GRID,
                   level="street", onsite_due_at=datetime(2026, 11, 24, 2, tzinfo=UTC),
                   due_at=datetime(2026, 11, 25, 2, tzinfo=UTC), reported_at=datetime(2026, 11, 24, 1, tzinfo=UTC)))
    result = escalation.sweep(hub_ctx, now=NOW)
    assert result.escalated == 0 and result.due_soon_notices == 2  # one notice per case, to the street operator
    assert {k for u, k in _notified(hub_ctx) if u == users["street_op"]} == {"due_soon", "onsite_overdue"}
    assert escalation.sweep(hub_ctx, now=NOW).due_soon_notices == 0


def test_a_grid_handled_case_that_climbs_goes_to_its_department(hub_ctx: HubContext, connected: Any) -> None:
    case_id = _case(hub_ctx, "GH-shop", category="shopfront_trading")  # grid may fix it; else 数字城管
    assert escalation.sweep(hub_ctx, now=NOW).routed == 1
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, case_id)
        assert case is not None and case.handling_mode == "department" and case.owner_system == "city_management"
        creates = s.scalars(select(OutboundMessage).where(OutboundMessage.operation == "create")).all()
        assert [m.system_key for m in creates] == ["city_management"]


def test_cli_sweep(hub_ctx: HubContext, monkeypatch: Any) -> None:
    from hub import cli

    _case(hub_ctx, "GH-cli", due=datetime(2026, 1, 5, 2, tzinfo=UTC))
    monkeypatch.setattr(cli, "_ctx", lambda: hub_ctx)
    out = CliRunner().invoke(cli.main, ["tasks", "sweep"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("1 escalated")
    export = CliRunner().invoke(cli.main, ["tasks", "export"])
    assert "illegal_construction" in export.output
