"""CLI groups of the report-once features (task list, deadlines, metrics); ``hub.cli`` adds them."""

from __future__ import annotations

from datetime import datetime

import click


@click.group()
def tasks() -> None:
    """The task list (事项清单), working calendar and deadlines."""


@tasks.command("sweep")
def tasks_sweep() -> None:
    """One pass of the deadline sweep: escalate overdue cases, send overdue and due-soon notices."""
    from hub.cli import _ctx
    from hub.services.escalation import sweep

    r = sweep(_ctx())
    click.echo(f"{r.escalated} escalated ({r.routed} handed to a department), {r.overdue_notices} overdue and "
               f"{r.due_soon_notices} due-soon notices to {len(r.notified_users)} people")


@tasks.command("export")
def tasks_export() -> None:
    """Print the task list as YAML (the format of hub/data/task_list.yaml)."""
    from hub.cli import _ctx
    from hub.services.task_list import export_items_text

    click.echo(export_items_text(_ctx()), nl=False)


@click.group()
def metrics() -> None:
    """Centre metrics."""


@metrics.command("refresh")
@click.option("--full", is_flag=True, help="Rebuild the whole rollup (after a case's report time moved, or an import).")
def metrics_refresh(full: bool) -> None:
    """Bring the metrics rollup up to date (only the days of cases changed since the last refresh)."""
    from hub.cli import _ctx
    from hub.services.metrics import refresh

    r = refresh(_ctx(), full=full)
    click.echo(f"{'rebuilt' if r.full else 'refreshed'}: {r.days} day(s), {r.rows} day row(s)")


@metrics.command("export")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None, help="First filing day (YYYY-MM-DD).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last filing day, inclusive.")
@click.option("--by", type=click.Choice(["category", "department", "grid", "street", "day", "week", "month"]),
              default="category", show_default=True)
@click.option("--scope", default="", help="A grid-code prefix (jurisdiction); empty: everything.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True, help="CSV file to write.")
def metrics_export(first: datetime | None, last: datetime | None, by: str, scope: str, out: str) -> None:
    """Write the figures of a period as CSV for Excel (UTF-8 with a BOM)."""
    from hub.cli import _ctx
    from hub.services.metrics import report
    from hub.services.metrics_csv import default_period, report_csv

    period = default_period(first.date() if first else None, last.date() if last else None)
    with _ctx().db.read_session() as s:
        try:
            rep = report(s, period[0], period[1], by, scope)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    with open(out, "w", encoding="utf-8", newline="") as fh:
        fh.write(report_csv(rep))
    click.echo(f"{len(rep.rows)} row(s), {rep.totals.filed} case(s) filed {period[0]}–{period[1]} → {out}")
