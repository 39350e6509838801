"""The task list: a line for every category, validated edits, the hub's clock on every new case,
and routing by it for the cases the hub itself originates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from hub.context import HubContext
from hub.models import AuditEntry, Case, CaseEvent, OutboundMessage, TaskItem, Ticket
from hub.services import task_list
from hub.services.inbox import Inbox
from hub.services.workdays import WorkCalendar
from tests.conftest import REPO
from tests.support.fake_system import raw, record


def test_the_default_list_covers_every_category_of_the_taxonomy(hub_ctx: HubContext) -> None:
    categories = set(yaml.safe_load((REPO / "mappings/defaults/taxonomy.yaml").read_text("utf-8"))["categories"])
    with hub_ctx.db.session() as s:
        assert task_list.ensure_seeded(s) == len(categories)
        assert task_list.ensure_seeded(s) == 0  # only an empty list is seeded
        items = {i.category: i for i in s.scalars(select(TaskItem))}
    assert set(items) == categories
    construction = items["illegal_construction"]
    assert (construction.handler, construction.onsite_limit, construction.handling_limit) == \
        ("law_enforcement", "2h", "7d")
    assert items["garbage_exposed"].handling_limit == "4h" and items["street_vending"].handling_limit == "2h"
    assert items["small_ads"].self_handling and items["small_ads"].level == "grid"


@pytest.mark.parametrize(("changes", "field"), [
    ({"level": "city"}, "level"), ({"handling_limit": "3w"}, "handling_limit"),
    ({"handler": "police_patrol"}, "handler"), ({"handler": ""}, "handler")])
def test_edits_are_validated(hub_ctx: HubContext, changes: dict[str, Any], field: str) -> None:
    with hub_ctx.db.session() as s, pytest.raises(ValueError, match=field):
        task_list.update_item(hub_ctx, s, "illegal_construction", changes, "admin")


def test_an_edit_is_audited_and_an_unknown_category_is_a_key_error(hub_ctx: HubContext) -> None:
    with hub_ctx.db.session() as s:
        task_list.update_item(hub_ctx, s, "garbage_exposed", {"handling_limit": "3h", "level": "grid"}, "admin")
        with pytest.raises(KeyError):
            task_list.update_item(hub_ctx, s, "no_such_thing", {}, "admin")
    with hub_ctx.db.read_session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "task_item.update"))
        assert entry is not None and entry.before is not None and entry.after is not None
        assert (entry.before["handling_limit"], entry.after["handling_limit"]) == ("4h", "3h")
        assert s.scalar(select(TaskItem.level).where(TaskItem.category == "garbage_exposed")) == "grid"
    assert "garbage_exposed" in task_list.export_items_text(hub_ctx)


def test_a_department_record_opens_a_case_with_the_hubs_clock_but_is_not_routed(fake_ctx: HubContext) -> None:
    Inbox(fake_ctx, "fake").store_many([raw(record("A1", at="2026-11-23 09:00:00"))])  # category A: 占道经营
    with fake_ctx.db.read_session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.external_id == "A1"))
        assert ticket is not None and ticket.case_id is not None
        case = s.get(Case, ticket.case_id)
        assert case is not None
        start = datetime(2026, 11, 23, 1, tzinfo=UTC)  # 09:00 Shanghai, a Monday
        assert case.task_category == "street_vending" and case.level == "street"
        assert case.due_at == WorkCalendar().add_working(start, "2h")
        assert case.onsite_due_at == WorkCalendar().add_working(start, "1h")
        assert case.handling_mode == "" and case.owner_system == "fake"
        events = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
        assert "task_list" in events
        assert not s.scalars(select(OutboundMessage).where(OutboundMessage.operation == "create")).all()


def _case(ctx: HubContext, category: str) -> int:
    with ctx.db.session() as s:
        case = Case(number=f"GH-{category}", category=category, status="REPORTED", title="巡查发现",
                    description="某小区内有人正在搭建违章建筑，已经砌了半人高的墙", address="斜土路100弄5号",
                    lat=31.188, lng=121.452, grid_code="310104001001001",
                    reported_at=datetime(2026, 11, 23, 2, tzinfo=UTC))
        s.add(case)
        s.flush()
        return case.id


def test_a_hub_case_of_illegal_construction_goes_to_law_enforcement_not_city_management(
        hub_ctx: HubContext, connected: Any) -> None:
    case_id = _case(hub_ctx, "illegal_construction")
    with hub_ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert task_list.apply_task_list(hub_ctx, s, case, actor="test", route=True) == "routed:law_enforcement"
        assert case.owner_system == "law_enforcement" and case.handling_mode == "department"
    with hub_ctx.db.read_session() as s:
        creates = s.scalars(select(OutboundMessage).where(OutboundMessage.operation == "create")).all()
    assert [m.system_key for m in creates] == ["law_enforcement"]


def test_a_small_item_stays_with_the_grid(hub_ctx: HubContext, connected: Any) -> None:
    case_id = _case(hub_ctx, "small_ads")
    with hub_ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert task_list.apply_task_list(hub_ctx, s, case, actor="test", route=True) == "grid"
        assert (case.handling_mode, case.level) == ("grid", "grid")
        assert not s.scalars(select(OutboundMessage)).all()


def test_no_connected_system_keeps_the_case_and_says_why(hub_ctx: HubContext) -> None:
    case_id = _case(hub_ctx, "garbage_exposed")
    with hub_ctx.db.session() as s:
        case = s.get(Case, case_id)
        assert case is not None
        assert task_list.apply_task_list(hub_ctx, s, case, actor="test", route=True) == "no_system"
        s.flush()
        summary = s.scalars(select(CaseEvent.summary).where(CaseEvent.case_id == case_id)).all()
    assert any("未接入处置系统 city_management" in text for text in summary)
