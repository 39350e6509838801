"""操作记录 in a real headless Chromium: two 12345 cases merged through the service, the
operation found in the list, its page warning that 12345 cannot take a CF back, the merge undone
from the keyboard through the confirm form, and both cases there again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.models import CaseOperation, Ticket
from hub.services import dedup_ops
from tests.browser.conftest import make_user, shot, sign_in
from tests.browser.test_console_browser import cases_from_12345

pytestmark = pytest.mark.timeout(120)


def case_ids(ctx: HubContext) -> set[int]:
    with ctx.db.read_session() as s:
        return {c for c in s.scalars(select(Ticket.case_id)) if c is not None}


def test_undo_a_merge_from_the_operations_page(hub_ctx: HubContext, connected: Any, hub_server: Any,
                                               page: Any) -> None:
    first, second = cases_from_12345(hub_ctx, connected)[:2]
    assert case_ids(hub_ctx) == {first.id, second.id}
    op = dedup_ops.merge_cases(hub_ctx, second.id, first.id, "zhao", "同一摊位")
    assert case_ids(hub_ctx) == {first.id}
    make_user(hub_ctx, "undoer", role="operator")
    sign_in(page, hub_server.url, "undoer")
    page.get_by_role("link", name="操作记录").click()
    page.wait_for_load_state()
    row = page.locator(f"#op-row-{op['id']}")
    assert row.get_attribute("data-state") == "undoable" and "zhao" in row.inner_text()
    assert second.number in row.inner_text() and first.number in row.inner_text()
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)).map(e => e.name || e.id)""")
    assert unlabelled == []
    page.locator(f"#op-undo-{op['id']}").click()
    page.wait_for_load_state()
    # both records are 12345's: the newer one was marked CF, which 12345 cannot take back
    assert page.locator(".hotline-cf").count() >= 1
    shot(page, "operation-detail")
    page.get_by_label("撤销原因").fill("两处摊位不是同一事件")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "undo-submit"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("status").first.inner_text().startswith(f"已撤销合并操作 #{op['id']}")
    assert page.locator(f"#op-row-{op['id']}").get_attribute("data-state") == "undone"
    shot(page, "operations-undo")
    assert case_ids(hub_ctx) == {first.id, second.id}
    with hub_ctx.db.read_session() as s:
        undone = s.get(CaseOperation, op["id"])
        assert undone is not None and undone.undone_by == "undoer"
    with hub_ctx.db.read_session() as s:
        back = s.scalars(select(Ticket.external_id).where(Ticket.case_id == second.id)).one()
    page.goto(f"{hub_server.url}/console/work/cases/{second.id}")  # the merged-away case lives again
    assert page.locator("#case-merged").count() == 0 and back in page.content()
