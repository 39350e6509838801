"""Console page: the centre's metrics (指标统计) for the user's jurisdiction: a period and a "by"
selector, the figures as a table and as server-drawn SVG charts (``admin.charts``), a CSV
download, returns (退单) by department with reasons, and each grid worker's category mix against
their grids' (the gaming the domain notes warn of: reporting only the easy items).

Admins, operators and auditors; the figures come from ``hub.services.metrics`` exactly as the API
gives them."""

from __future__ import annotations

from datetime import date

from flask import abort, g, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from admin import charts
from admin.views import _ctx, bp, nav, roles
from hub.services import metrics, metrics_detail
from hub.services.metrics_csv import asked_period, report_csv

VIEWERS = ("admin", "operator", "auditor")
BAR_ROWS = 20


def _day(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400)


def _question() -> tuple[date, date, str]:
    by = request.args.get("by", "category")
    if by not in metrics.BY:
        abort(400)
    first, last = asked_period(_day("from"), _day("to"))
    return first, last, by


@bp.get("/metrics")
@roles(*VIEWERS)
def metrics_page() -> str:
    first, last, by = _question()
    scope = str(g.caller["scope"] or "")
    with _ctx().db.read_session() as s:
        rep = metrics.report(s, first, last, by, scope)
        daily = metrics.report(s, first, last, "day", scope) if by != "day" else rep
        returns = metrics_detail.returns(s, first, last, scope)
        workers = metrics_detail.worker_mix(s, first, last, scope)
        mark = metrics.last_refresh(s)
    legend = (_("立案"), _("办结"))
    ranked = rep.rows if by in ("day", "week", "month") else rep.rows[:BAR_ROWS]
    bar = charts.bar_chart([(label, c.filed, c.closed) for _k, label, c in ranked], _("按所选维度：立案与办结"), legend)
    line = charts.line_chart([(key, c.filed, c.closed) for key, _l, c in daily.rows], _("每日立案与其中已办结"), legend)
    return render_template("console/metrics.html", rep=rep, by=by, bys=metrics.BY, bar=bar, line=line,
                           returns=returns, workers=workers, refreshed_at=mark.finished_at if mark else None,
                           label_of=metrics.label_of)


@bp.get("/metrics.csv")
@roles(*VIEWERS)
def metrics_csv() -> Response:
    first, last, by = _question()
    with _ctx().db.read_session() as s:
        rep = metrics.report(s, first, last, by, str(g.caller["scope"] or ""))
    name = f"metrics-{by}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(report_csv(rep).encode("utf-8"), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


nav("console.metrics_page", "指标统计", *VIEWERS)
