"""指标统计 in a real headless Chromium: a street operator's figures with the two server-drawn
charts, regrouped by month from the form, and the CSV download of the same question."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import Case
from hub.services import metrics
from tests.browser.conftest import make_user, shot, sign_in
from tests.support.metrics_data import STREET_A, seed_random

pytestmark = pytest.mark.timeout(120)


def test_metrics_page_charts_and_csv(hub_ctx: HubContext, hub_server: Any, page: Any) -> None:
    seed_random(hub_ctx, 120, start=datetime(2026, 1, 1, tzinfo=UTC), days=60)
    metrics.refresh(hub_ctx)
    with hub_ctx.db.read_session() as s:
        mine = s.scalar(select(func.count()).select_from(Case).where(Case.grid_code.startswith(STREET_A),
                                                                   Case.merged_into_id.is_(None)))
    assert mine and mine < 120  # the other street's cases are not the operator's
    make_user(hub_ctx, "street_op", role="operator", scope=STREET_A)
    sign_in(page, hub_server.url, "street_op")
    page.get_by_role("link", name="指标统计").click()
    page.wait_for_load_state()
    page.locator("input[name=from]").fill("2026-01-01")
    page.locator("input[name=to]").fill("2026-03-31")
    with page.expect_navigation():
        page.get_by_role("button", name="查询").click()
    assert page.locator("#metrics-totals strong").first.inner_text() == str(mine)
    charts = page.locator("#metrics-charts svg")
    assert charts.count() == 2 and page.locator("#metrics-charts svg rect").count() > 6
    assert charts.first.bounding_box()["width"] > 300
    shot(page, "metrics-by-category")
    page.locator("select[name=by]").select_option("month")
    with page.expect_navigation():
        page.get_by_role("button", name="查询").click()
    assert page.locator("#metrics-table tbody tr").count() == 3  # January to March
    with page.expect_download() as download:
        page.locator("#metrics-csv").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("key,") and "2026-02" in text and "合计" in text
