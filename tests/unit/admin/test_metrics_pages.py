"""The console's metrics page: who opens it, that it shows only the jurisdiction's figures,
draws its charts as escaped inline SVG, and offers the CSV."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.context import HubContext
from hub.models import Case
from hub.services.metrics import refresh
from tests.support.console import signed_in
from tests.support.metrics_data import STREET_A, STREET_B, add_case

PAGE = "/console/metrics?from=2026-03-01&to=2026-03-31"


def _seed(ctx: HubContext) -> None:
    at = datetime(2026, 3, 3, 2, tzinfo=UTC)
    with ctx.db.session() as s:
        add_case(s, reported=at, grid=f"{STREET_A}001001", category="small_ads", closed=at.replace(hour=5))
        for _ in range(3):
            add_case(s, reported=at, grid=f"{STREET_B}001001", category="group_rental",
                     department="<script>alert(1)</script>")
    refresh(ctx)


def test_the_page_shows_the_jurisdictions_figures_and_charts(hub_ctx: HubContext) -> None:
    _seed(hub_ctx)
    assert signed_in(hub_ctx, "department", STREET_A).get(PAGE).status_code == 403
    assert signed_in(hub_ctx, "grid_worker", f"{STREET_A}001001").get(PAGE).status_code == 403
    street = signed_in(hub_ctx, "operator", STREET_A).get(PAGE).get_data(as_text=True)
    assert "指标统计" in street and "非法小广告" in street and "群租" not in street
    assert street.count("<svg") == 2 and "<script" not in street
    everything = signed_in(hub_ctx, "auditor").get(PAGE + "&by=department").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in everything and "<script>" not in everything
    assert 'id="metrics-csv"' in everything
    csv = signed_in(hub_ctx, "operator", STREET_A).get("/console/metrics.csv?from=2026-03-01&to=2026-03-31")
    assert csv.status_code == 200 and csv.content_type == "text/csv; charset=utf-8"
    assert csv.get_data().startswith(b"\xef\xbb\xbf") and "群租" not in csv.get_data(as_text=True)
    admin = signed_in(hub_ctx)
    for by in ("category", "department", "grid", "street", "day", "week", "month"):
        assert admin.get(f"{PAGE}&by={by}").status_code == 200, by
    assert admin.get(f"{PAGE}&by=weekday").status_code == 400
    assert admin.get("/console/metrics?from=nope").status_code == 400
    assert admin.get("/console/metrics").status_code == 200  # the last 30 days by default
    with hub_ctx.db.read_session() as s:
        assert s.query(Case).count() == 4
