"""The metrics a centre is judged by (JSON and CSV), and Prometheus ``/metrics``.

Admins, operators and auditors read them, always within their jurisdiction (the token's scope:
a street's operator never sees another street's figures). Figures come from the rollup
(``hub.services.metrics``), refreshed by the poller about once a minute; the answer says when.

``GET /metrics`` is for Prometheus, outside the versioned API and its user tokens: it exists only
when ``GRIDHUB_METRICS_TOKEN`` is set (404 otherwise: an unconfigured hub does not advertise it),
and answers 401 unless the request carries that token as a bearer token (compared in constant
time). It shows deployment-wide counts and no names, numbers or secrets.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Response, abort, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.api.auth import hub_ctx, load_caller, require_role
from hub.api.metrics_schemas import (
    MetricsArgs,
    MetricsSchema,
    PeriodArgs,
    ReturnsSchema,
    WorkerMixListSchema,
)
from hub.context import HubContext
from hub.services import metrics, metrics_detail
from hub.services.metrics_csv import asked_period, report_csv

blp = Blueprint("metrics", __name__, url_prefix="/api/v1", description="Centre metrics")
blp.before_request(load_caller)

VIEWERS = ("admin", "operator", "auditor")
CSV_DOC = {"responses": {"200": {"description": "the same figures as CSV (UTF-8 with a BOM, a header row, a "
                                                "last 合计 row)",
                                 "content": {"text/csv": {"schema": {"type": "string"}}}}}}


def _period(args: dict[str, Any]) -> tuple[date, date]:
    """The period asked about (``asked_period``: a long one costs no more than the data in it)."""
    return asked_period(args.get("first"), args.get("last"))


def _report(args: dict[str, Any]) -> tuple[metrics.Report, Any]:
    first, last = _period(args)
    with hub_ctx().db.read_session() as s:
        rep = metrics.report(s, first, last, args["by"], str(g.caller["scope"]))
        mark = metrics.last_refresh(s)
        return rep, mark.finished_at if mark is not None else None


def report_json(rep: metrics.Report, refreshed_at: Any) -> dict[str, Any]:
    return {"first": rep.first, "last": rep.last, "by": rep.by, "live": rep.live, "refreshed_at": refreshed_at,
            "totals": rep.totals.as_dict(),
            "rows": [{"key": key, "label": label, **c.as_dict()} for key, label, c in rep.rows]}


@blp.route("/metrics")
class Metrics(MethodView):
    @require_role(*VIEWERS)
    @blp.arguments(MetricsArgs, location="query")
    @blp.response(200, MetricsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Cases filed from ``from`` to ``to`` in the caller's jurisdiction: filed, closed, closure
        and on-time rates, average and p90 handling time (working seconds), entries saved, in
        total and one row per ``by`` (category, department, grid, street, day, week, month)."""
        return report_json(*_report(args))


@blp.route("/metrics.csv")
class MetricsCsv(MethodView):
    @require_role(*VIEWERS)
    @blp.arguments(MetricsArgs, location="query")
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> Response:
        """``GET /metrics`` as CSV for Excel (hours instead of seconds)."""
        rep, _at = _report(args)
        name = f"metrics-{rep.by}-{rep.first.isoformat()}-{rep.last.isoformat()}.csv"
        return Response(report_csv(rep).encode("utf-8"), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blp.route("/metrics/returns")
class Returns(MethodView):
    @require_role(*VIEWERS)
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, ReturnsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Returns (退单: a department said "not ours") recorded in the period on cases in the
        caller's jurisdiction, by department, with their reasons."""
        first, last = _period(args)
        with hub_ctx().db.read_session() as s:
            rows = metrics_detail.returns(s, first, last, str(g.caller["scope"]))
        return {"first": first, "last": last,
                "items": [{"department": r.department, "returns": r.returns,
                           "reasons": [{"reason": k, "count": v} for k, v in r.reasons.most_common()]}
                          for r in rows]}


@blp.route("/metrics/worker-mix")
class WorkerMixView(MethodView):
    @require_role(*VIEWERS)
    @blp.arguments(PeriodArgs, location="query")
    @blp.response(200, WorkerMixListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Each grid worker's reports by category against all cases filed in their grids, most
        divergent first: a worker who reports only the easy items stands out."""
        first, last = _period(args)
        with hub_ctx().db.read_session() as s:
            rows = metrics_detail.worker_mix(s, first, last, str(g.caller["scope"]))
        return {"first": first, "last": last, "items": [worker_json(w) for w in rows]}


def worker_json(w: metrics_detail.WorkerMix) -> dict[str, Any]:
    return {"reporter_id": w.reporter_id, "name": w.name, "reports": w.reports, "grids": w.grids,
            "distance": round(w.distance, 4),
            "top": [{"category": cat, "label": metrics.label_of("category", cat), "mine": round(mine, 4),
                     "grid": round(grid, 4)} for cat, mine, grid in w.top()]}


# GET /metrics (Prometheus text format), outside the versioned API
prometheus = FlaskBlueprint("prometheus", __name__)


class _HubCollector(Collector):
    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.ctx.db.read_session() as s:
            v = metrics_detail.gauges(s)
        open_cases = GaugeMetricFamily("gridhub_cases_open", "Cases not closed nor cancelled, by canonical status",
                                       labels=["status"])
        for status, n in sorted(v.open_by_status.items()):
            open_cases.add_metric([status], n)
        yield open_cases
        yield GaugeMetricFamily("gridhub_cases_overdue", "Open cases past the hub's handling deadline (not on hold)",
                                value=v.overdue)
        yield GaugeMetricFamily("gridhub_inbound_quarantined", "Inbound records kept in quarantine",
                                value=v.inbound_quarantined)
        yield GaugeMetricFamily("gridhub_outbound_pending", "Outbound effects waiting for delivery or a retry",
                                value=v.outbound_pending)
        yield GaugeMetricFamily("gridhub_cases_filed", "Cases filed (merged-away ones excluded), as of the last "
                                                       "rollup refresh", value=v.filed_total)
        yield GaugeMetricFamily("gridhub_cases_closed", "Filed cases that are closed now, as of the last rollup "
                                                        "refresh", value=v.closed_total)
        yield GaugeMetricFamily("gridhub_metrics_refreshed_timestamp_seconds", "When the rollup was last refreshed",
                                value=v.rollup_at.timestamp() if v.rollup_at else 0)


@prometheus.get("/metrics")
def scrape() -> Response:
    ctx: HubContext = current_app.extensions["gridhub"]
    expected = ctx.config.metrics_token
    if not expected:
        abort(404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, expected.encode("utf-8")):
        return Response("a bearer token is required\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HubCollector(ctx))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
