"""The metrics API: who may read it, that a jurisdiction sees only itself, the CSV Excel opens,
Prometheus' token, and the CLI around the rollup."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.services.metrics import refresh
from tests.conftest import make_token
from tests.support.metrics_data import STREET_A, STREET_B, add_case

PERIOD = "from=2026-03-01&to=2026-03-31"


def _seed(ctx: HubContext) -> None:
    at = datetime(2026, 3, 3, 2, tzinfo=UTC)
    with ctx.db.session() as s:
        add_case(s, reported=at, grid=f"{STREET_A}001001", category="small_ads", closed=at.replace(hour=5),
                 due=at.replace(hour=6), tickets=2)
        for _ in range(3):
            add_case(s, reported=at, grid=f"{STREET_B}001001", category="group_rental", department="区住建委")
    refresh(ctx)


def _auth(ctx: HubContext, role: str = "admin", scope: str = "") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(ctx, role, scope, name=f'{role}{scope}')}"}


def test_roles_and_jurisdiction(hub_ctx: HubContext) -> None:
    _seed(hub_ctx)
    client = create_app(context=hub_ctx).test_client()
    assert client.get(f"/api/v1/metrics?{PERIOD}").status_code == 401
    for role in ("department", "grid_worker"):
        assert client.get(f"/api/v1/metrics?{PERIOD}", headers=_auth(hub_ctx, role)).status_code == 403
    everything = client.get(f"/api/v1/metrics?{PERIOD}&by=department", headers=_auth(hub_ctx, "auditor")).json
    assert everything["totals"]["filed"] == 4 and everything["totals"]["entries_saved"] == 1
    assert {r["key"] for r in everything["rows"]} == {"城管执法中队", "区住建委"}
    street = client.get(f"/api/v1/metrics?{PERIOD}&by=street", headers=_auth(hub_ctx, "operator", STREET_A)).json
    assert street["totals"]["filed"] == 1 and [r["key"] for r in street["rows"]] == [STREET_A]
    one = client.get(f"/api/v1/metrics?{PERIOD}", headers=_auth(hub_ctx, "operator", STREET_A)).json
    assert [(r["key"], r["label"], r["on_time_rate"]) for r in one["rows"]] == [("small_ads", "非法小广告", 1.0)]
    community = client.get(f"/api/v1/metrics?{PERIOD}", headers=_auth(hub_ctx, "operator", f"{STREET_B}001")).json
    assert community["live"] and community["totals"]["filed"] == 3
    backwards = client.get("/api/v1/metrics?from=2026-03-31&to=2026-03-01", headers=_auth(hub_ctx)).json
    assert (backwards["from"], backwards["to"], backwards["totals"]["filed"]) == ("2026-03-01", "2026-03-31", 4)
    assert client.get("/api/v1/metrics?from=0001-01-01&to=9999-12-31", headers=_auth(hub_ctx)).json["totals"][
        "filed"] == 4
    assert client.get("/api/v1/metrics?by=weekday", headers=_auth(hub_ctx)).status_code == 422
    for path in ("returns", "worker-mix"):
        answer = client.get(f"/api/v1/metrics/{path}?{PERIOD}", headers=_auth(hub_ctx, "operator", STREET_A))
        assert answer.status_code == 200 and answer.json["items"] == []


def test_csv_opens_in_excel(hub_ctx: HubContext) -> None:
    _seed(hub_ctx)
    client = create_app(context=hub_ctx).test_client()
    answer = client.get(f"/api/v1/metrics.csv?{PERIOD}", headers=_auth(hub_ctx, "operator", STREET_B))
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = answer.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:4] == ["key", "名称", "立案数", "办结数"]
    assert rows[1][:3] == ["group_rental", "群租", "3"] and rows[-1][1:3] == ["合计", "3"]
    assert all("small_ads" not in r for r in rows)


def test_prometheus_needs_its_token(hub_config: HubConfig) -> None:
    plain = build_context(hub_config)
    try:
        assert create_app(context=plain).test_client().get("/metrics").status_code == 404
    finally:
        plain.close()
    ctx = build_context(replace(hub_config, metrics_token="scrape-me-0123456789"))
    try:
        _seed(ctx)
        client = create_app(context=ctx).test_client()
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code == 401
        assert client.get("/metrics", headers=_auth(ctx)).status_code == 401  # a user token is not it
        answer = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
        text = answer.get_data(as_text=True)
        assert 'gridhub_cases_open{status="IN_PROGRESS"} 3.0' in text
        assert "gridhub_cases_filed 4.0" in text and "gridhub_cases_closed 1.0" in text
        assert "gridhub_inbound_quarantined 0.0" in text and "gridhub_outbound_pending 0.0" in text
        assert "scrape-me" not in text and "gridhub_cases_overdue" in text
    finally:
        ctx.close()


def test_cli_refresh_and_export(hub_ctx: HubContext, tmp_path: Path, monkeypatch: Any) -> None:
    import hub.cli
    from hub.cli import main

    _seed(hub_ctx)
    monkeypatch.setattr(hub.cli, "_ctx", lambda: hub_ctx)
    runner = CliRunner()
    done = runner.invoke(main, ["metrics", "refresh", "--full"])
    assert done.exit_code == 0 and "rebuilt: 1 day(s)" in done.output
    out = tmp_path / "m.csv"
    done = runner.invoke(main, ["metrics", "export", "--from", "2026-03-01", "--to", "2026-03-31", "--by", "street",
                                "--out", str(out)])
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == [STREET_B, STREET_A, ""]
