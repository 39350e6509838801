"""CLI groups of the report-once features (task list, deadlines, metrics); ``hub.cli`` adds them."""

from __future__ import annotations

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
