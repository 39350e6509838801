"""The task-list API: everyone reads, admins change (validated, audited), operators dispatch a case
in their jurisdiction by the list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from hub.context import HubContext
from hub.models import AuditEntry, Case
from tests.conftest import make_token


def _h(ctx: HubContext, role: str = "admin", scope: str = "") -> dict[str, str]:
    name = f"{role}-{scope or 'all'}"
    return {"Authorization": f"Bearer {make_token(ctx, role, scope, name=name)}"}


def test_everyone_reads_the_list_and_only_admins_change_it(hub_ctx: HubContext, client: Any) -> None:
    rows = client.get("/api/v1/task-list", headers=_h(hub_ctx, "grid_worker")).get_json()
    assert {r["category"] for r in rows} >= {"illegal_construction", "garbage_exposed"}
    body = {"handling_limit": "6h"}
    assert client.put("/api/v1/task-list/garbage_exposed", json=body,
                      headers=_h(hub_ctx, "operator")).status_code == 403
    answer = client.put("/api/v1/task-list/garbage_exposed", json=body, headers=_h(hub_ctx))
    assert answer.status_code == 200 and answer.get_json()["handling_limit"] == "6h"
    assert client.put("/api/v1/task-list/nope", json=body, headers=_h(hub_ctx)).status_code == 404
    bad = client.put("/api/v1/task-list/garbage_exposed", json={"handler": "police_patrol"}, headers=_h(hub_ctx))
    assert bad.status_code == 409 and "handler" in bad.get_json()["message"]
    assert client.put("/api/v1/task-list/garbage_exposed", json={"handling_limit": "2w"},
                      headers=_h(hub_ctx)).status_code == 422
    assert client.put("/api/v1/task-list/garbage_exposed", json={"handling_limit": "4h\n"},
                      headers=_h(hub_ctx)).status_code == 422
    with hub_ctx.db.read_session() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "task_item.update")) is not None


def test_calendar_days(hub_ctx: HubContext, client: Any) -> None:
    h = _h(hub_ctx)
    assert client.put("/api/v1/calendar/days/2026-12-24", json={"kind": "holiday", "name": "区假"},
                      headers=h).status_code == 200
    assert client.put("/api/v1/calendar/days/2026-12-24", json={"kind": "party"}, headers=h).status_code == 422
    assert client.put("/api/v1/calendar/days/2026-13-01", json={"kind": "holiday"}, headers=h).status_code == 404
    assert client.put("/api/v1/calendar/days/2026-12-25", json={"kind": "holiday"},
                      headers=_h(hub_ctx, "operator")).status_code == 403
    cal = client.get("/api/v1/calendar", headers=_h(hub_ctx, "auditor")).get_json()
    assert cal["days"] == [{"day": "2026-12-24", "kind": "holiday", "name": "区假", "updated_by": "admin-all"}]
    assert isinstance(cal["gaps"], list)
    assert client.delete("/api/v1/calendar/days/2026-12-24", headers=h).status_code == 204
    assert client.delete("/api/v1/calendar/days/2026-12-24", headers=h).status_code == 404


def _case(ctx: HubContext, category: str, grid: str, status: str = "REPORTED") -> int:
    with ctx.db.session() as s:
        case = Case(number=f"GH-{category}-{grid}", category=category, status=status, title="t",
                    grid_code=grid, reported_at=datetime(2026, 11, 23, 2, tzinfo=UTC))
        s.add(case)
        s.flush()
        return case.id


def test_dispatch_by_the_list_is_scoped_and_refuses_finished_cases(hub_ctx: HubContext, client: Any) -> None:
    mine = _case(hub_ctx, "small_ads", "310104001001001")
    other = _case(hub_ctx, "small_ads", "310104002001001")
    done = _case(hub_ctx, "small_ads", "310104001001002", status="CLOSED")
    h = _h(hub_ctx, "operator", "310104001")
    answer = client.post(f"/api/v1/cases/{mine}/dispatch", json={}, headers=h)
    assert answer.status_code == 200
    assert answer.get_json()["outcome"] == "grid" and answer.get_json()["handling_mode"] == "grid"
    assert answer.get_json()["due_at"] is not None
    assert client.post(f"/api/v1/cases/{other}/dispatch", json={}, headers=h).status_code == 404
    assert client.post(f"/api/v1/cases/{done}/dispatch", json={}, headers=h).status_code == 409
    assert client.post(f"/api/v1/cases/{mine}/dispatch", json={},
                       headers=_h(hub_ctx, "auditor")).status_code == 403
