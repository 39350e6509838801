"""Console pages of the hub's clock: the task list and calendar (admins edit, others read), the
overdue list of the user's jurisdiction, notifications, and the deadline panel on the case page."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from hub.context import HubContext
from hub.models import CalendarDay, Case, Notification, TaskItem, User
from hub.services import escalation
from tests.support.console import csrf, signed_in

GRID = "310104001001001"


def _case(ctx: HubContext, number: str, grid: str = GRID, due: datetime | None = None) -> int:
    with ctx.db.session() as s:
        case = Case(number=number, category="small_ads", status="IN_PROGRESS", title="小广告", grid_code=grid,
                    level="grid", handling_mode="grid", task_category="small_ads",
                    due_at=due or datetime(2026, 1, 5, 2, tzinfo=UTC), reported_at=datetime(2026, 1, 5, tzinfo=UTC))
        s.add(case)
        s.flush()
        return case.id


def test_everyone_reads_the_task_list_and_only_an_admin_saves_it(hub_ctx: HubContext) -> None:
    auditor = signed_in(hub_ctx, "grid_worker", GRID)
    page = auditor.get("/console/tasklist").get_data(as_text=True)
    assert "事项清单" in page and "私设地锁" in page and 'id="save-ground_lock"' not in page
    assert auditor.post("/console/tasklist/ground_lock", data={"csrf": csrf(auditor, "/console/tasklist")}
                        ).status_code == 403
    admin = signed_in(hub_ctx)
    token = csrf(admin, "/console/tasklist")
    form = {"csrf": token, "handler": "grid", "department": "网格", "level": "grid", "onsite_limit": "",
            "handling_limit": "1d", "self_handling": "on", "enabled": "on"}
    assert admin.post("/console/tasklist/ground_lock", data={**form, "csrf": "wrong"}).status_code == 400
    assert admin.post("/console/tasklist/ground_lock", data=form).status_code == 302
    bad = admin.post("/console/tasklist/ground_lock", data={**form, "handling_limit": "2w"}, follow_redirects=True)
    assert "未保存 ground_lock" in bad.get_data(as_text=True)
    assert admin.post("/console/tasklist/nope", data=form).status_code == 404
    with hub_ctx.db.read_session() as s:
        item = s.scalar(select(TaskItem).where(TaskItem.category == "ground_lock"))
        assert item is not None and (item.handler, item.handling_limit, item.updated_by) == ("grid", "1d", "adminall")


def test_calendar_days_from_the_console(hub_ctx: HubContext) -> None:
    admin = signed_in(hub_ctx)
    token = csrf(admin, "/console/tasklist")
    page = admin.post("/console/tasklist/calendar", data={"csrf": token, "day": "2026-12-24", "kind": "holiday",
                                                          "name": "区假"}, follow_redirects=True)
    assert "2026-12-24" in page.get_data(as_text=True)
    assert "未保存" in admin.post("/console/tasklist/calendar", data={"csrf": token, "day": "nope", "kind": "holiday"},
                                  follow_redirects=True).get_data(as_text=True)
    assert admin.post("/console/tasklist/calendar/2026-12-24/delete", data={"csrf": token}).status_code == 302
    assert admin.post("/console/tasklist/calendar/2026-12-24/delete", data={"csrf": token}).status_code == 404
    with hub_ctx.db.read_session() as s:
        assert s.scalar(select(CalendarDay)) is None


def test_the_overdue_list_shows_the_users_jurisdiction_only(hub_ctx: HubContext) -> None:
    _case(hub_ctx, "GH-MINE")
    _case(hub_ctx, "GH-OTHER", grid="310104002001001")
    street = signed_in(hub_ctx, "operator", GRID[:9]).get("/console/deadlines").get_data(as_text=True)
    assert "GH-MINE" in street and "GH-OTHER" not in street
    everything = signed_in(hub_ctx, "auditor").get("/console/deadlines").get_data(as_text=True)
    assert "GH-MINE" in everything and "GH-OTHER" in everything
    assert signed_in(hub_ctx, "grid_worker", GRID).get("/console/deadlines").status_code == 403


def test_notifications_are_ones_own_and_can_be_marked_read(hub_ctx: HubContext) -> None:
    case_id = _case(hub_ctx, "GH-N")
    street = signed_in(hub_ctx, "operator", GRID[:9], username="street")
    other = signed_in(hub_ctx, "operator", "310104002", username="other")
    escalation.sweep(hub_ctx, now=datetime(2026, 1, 6, 3, tzinfo=UTC))
    mine = street.get("/console/notifications").get_data(as_text=True)
    assert "GH-N 超期，已升级至社区" in mine
    assert "GH-N" not in other.get("/console/notifications").get_data(as_text=True)
    token = csrf(street, "/console/notifications")
    assert street.post("/console/notifications/read", data={"csrf": token, "all": "1"}).status_code == 302
    with hub_ctx.db.read_session() as s:
        user = s.scalar(select(User).where(User.username == "street"))
        assert user is not None
        rows = list(s.scalars(select(Notification).where(Notification.user_id == user.id)))
        assert rows and all(n.read_at is not None and n.case_id == case_id for n in rows)


def test_the_case_page_shows_the_hubs_clock(hub_ctx: HubContext) -> None:
    case_id = _case(hub_ctx, "GH-P")
    page = signed_in(hub_ctx).get(f"/console/work/cases/{case_id}").get_data(as_text=True)
    assert 'id="deadline-panel"' in page and "已超期" in page and "网格自办" in page
    english = signed_in(hub_ctx, username="en")
    english.set_cookie("gridhub_lang", "en")
    assert "Handled by the grid" in english.get(f"/console/work/cases/{case_id}").get_data(as_text=True)
