"""CLI groups of the report-once features (task list, deadlines, metrics); ``hub.cli`` adds them."""

from __future__ import annotations

import click


@click.group()
def tasks() -> None:
    """The task list (事项清单), working calendar and deadlines."""


@click.group()
def metrics() -> None:
    """Centre metrics."""
