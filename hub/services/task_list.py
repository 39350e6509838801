"""The task list (事项清单): per canonical category, who handles a case, at which level, and within
what working time. It is the centre's own routing rule book, kept in the ``task_item`` table and
seeded from ``hub/data/task_list.yaml`` the first time it is needed.

``apply_task_list`` starts a new case's clock from it (level, handling mode, on-site and handling
deadlines on the working calendar, ``hub.services.workdays``) and, for a case the hub itself
originates (a grid worker's report), routes it: to the department system type the item names
(数字城管 case, 综合执法 clue, through ``hub.services.routing.route_case``), or keeps it for
grid self-handling (微循环). Cases opened by a department system's own record get the clock
only: that system already handles them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import OP_CREATE
from hub.models import LEVELS, Case, System, TaskItem, utcnow
from hub.models.fastwrite import update_now
from hub.services import txcache
from hub.services.cases import add_event
from hub.services.workdays import WorkCalendar, parse_span

log = logging.getLogger(__name__)

DEFAULT_LIST = Path(__file__).resolve().parent.parent / "data" / "task_list.yaml"
GRID = "grid"  # the handler that keeps a case in the hub for the grid/community itself
EDITABLE = ("name", "area", "handler", "department", "level", "onsite_limit", "handling_limit",
            "self_handling", "enabled", "note")


def _rows_from_yaml(text: str) -> list[dict[str, Any]]:
    data = yaml.safe_load(text) or {}
    items = data.get("items", {}) if isinstance(data, dict) else {}
    rows = []
    for category, spec in items.items():
        rows.append({"category": str(category), "area": str(spec.get("area", "")),
                     "handler": str(spec["handler"]), "department": str(spec.get("department", "")),
                     "level": str(spec.get("level", "street")), "onsite_limit": str(spec.get("onsite", "")),
                     "handling_limit": str(spec.get("handling", "")),
                     "self_handling": bool(spec.get("self_handling", False)),
                     "name": str(spec.get("name", "")), "note": str(spec.get("note", ""))})
    return rows


def ensure_seeded(session: Session, names: dict[str, str] | None = None) -> int:
    """Fill an empty task list from the shipped default; returns how many items were added."""
    if session.scalar(select(TaskItem.id).limit(1)) is not None:
        return 0
    rows = _rows_from_yaml(DEFAULT_LIST.read_text(encoding="utf-8"))
    for row in rows:
        if not row["name"] and names:
            row["name"] = names.get(row["category"], "")
        validate(row)
        session.add(TaskItem(**row, updated_by="default"))
    session.flush()
    return len(rows)


def validate(row: dict[str, Any], handlers: set[str] | None = None) -> None:
    """Raise ValueError naming the field when a task item cannot be used."""
    if row.get("level") not in LEVELS:
        raise ValueError(f"level: must be one of {', '.join(LEVELS)}")
    for key in ("onsite_limit", "handling_limit"):
        if row.get(key):
            try:
                parse_span(str(row[key]))
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
    if not row.get("handler"):
        raise ValueError("handler: required (a system type, or 'grid')")
    if handlers is not None and row["handler"] != GRID and row["handler"] not in handlers:
        raise ValueError(f"handler: {row['handler']!r} is neither 'grid' nor a system type that takes new "
                         f"records ({', '.join(sorted(handlers)) or 'none installed'})")


def creatable_types(ctx: HubContext) -> set[str]:
    """System types whose plugin opens records for the hub (possible handlers)."""
    return {t.key for t in ctx.registry.all() if OP_CREATE in t.operations}


def item_for(session: Session, category: str) -> TaskItem | None:
    """The enabled item of ``category``, else the ``other`` item (seeding an empty list first).
    Called for every new case: the common path is one query."""
    def enabled(code: str) -> TaskItem | None:
        def ask() -> TaskItem | None:
            found: TaskItem | None = session.scalar(select(TaskItem).where(TaskItem.category == code,
                                                                            TaskItem.enabled.is_(True)))
            return found
        return txcache.cached(session, "task_item", code, ask)

    item = enabled(category)
    if item is None and ensure_seeded(session):
        txcache.forget(session)
        item = enabled(category)
    if item is None and category != "other":
        item = enabled("other")
    return item


def update_item(ctx: HubContext, session: Session, category: str, changes: dict[str, Any], actor: str) -> TaskItem:
    """Change one item (audited); KeyError for an unknown category, ValueError for a bad value."""
    from hub.services import audit

    ensure_seeded(session)
    item = session.scalar(select(TaskItem).where(TaskItem.category == category))
    if item is None:
        raise KeyError(category)
    txcache.forget(session)  # enabled or not, it is another answer now
    before = {k: getattr(item, k) for k in EDITABLE}
    after = {**before, **{k: v for k, v in changes.items() if k in EDITABLE}}
    validate({**after, "category": category}, creatable_types(ctx))
    for key, value in after.items():
        setattr(item, key, value)
    item.updated_by = actor
    audit.record(session, actor, "task_item.update", "task_item", category, before, after)
    return item


def export_items(session: Session) -> str:
    ensure_seeded(session)
    items = {i.category: {"name": i.name, "area": i.area, "handler": i.handler, "department": i.department,
                          "level": i.level, "onsite": i.onsite_limit, "handling": i.handling_limit,
                          "self_handling": i.self_handling, "enabled": i.enabled, "note": i.note}
             for i in session.scalars(select(TaskItem).order_by(TaskItem.category))}
    return yaml.safe_dump({"items": items}, allow_unicode=True, sort_keys=False)


def export_items_text(ctx: HubContext) -> str:
    with ctx.db.session() as s:
        return export_items(s)


def apply_task_list(ctx: HubContext, session: Session, case: Case, *, actor: str, route: bool,
                    now: datetime | None = None) -> str:
    """Start ``case``'s clock from its task item; route it when ``route``. Returns what was done:
    ``no_item`` | ``clock`` | ``grid`` | ``routed:<system key>`` | ``no_system`` | ``refused``."""
    from hub.services import routing

    item = item_for(session, case.category)
    if item is None:
        return "no_item"
    cal = txcache.cached(session, "calendar", None, lambda: WorkCalendar.load(session))
    start = now or case.reported_at or utcnow()
    clock: dict[str, Any] = {
        "task_category": item.category, "level": item.level, "clock_started_at": start,
        "onsite_due_at": cal.add_working(start, item.onsite_limit) if item.onsite_limit else None,
        "due_at": cal.add_working(start, item.handling_limit) if item.handling_limit else None}
    grid = item.handler == GRID or (item.self_handling and item.level == GRID)
    if route:
        clock["handling_mode"] = GRID if grid else "department"
    update_now(session, case, clock)  # one UPDATE now, when nothing else of the case is pending
    outcome = "clock"
    if route:
        if grid:
            outcome = GRID
        else:
            system = session.scalar(select(System).where(System.plugin == item.handler,
                                                         System.enabled.is_(True)).order_by(System.id))
            if system is None:
                outcome = "no_system"
            else:
                try:
                    routing.route_case(ctx, session, case, system.key, actor=actor,
                                       reason=f"事项清单：{item.name or item.category} → {item.department}")
                    outcome = f"routed:{system.key}"
                except routing.RoutingError as exc:
                    log.warning("case %s: task-list routing to %s refused: %s", case.number, system.key, exc)
                    outcome = "refused"
                    add_event(session, case, "task_list", f"按事项清单派往 {system.key} 未成功：{exc}", actor=actor)
    words = {"clock": "计时", GRID: "网格自办（微循环）", "no_system": f"未接入处置系统 {item.handler}，留待人工派遣",
             "refused": "派遣未成功，留待人工派遣"}
    add_event(session, case, "task_list",
              f"事项清单 {item.name or item.category}：{item.department}，层级 {item.level}，"
              f"{words.get(outcome, '已派遣')}",
              detail={"category": item.category, "handler": item.handler, "outcome": outcome,
                      "onsite_due_at": case.onsite_due_at.isoformat() if case.onsite_due_at else None,
                      "due_at": case.due_at.isoformat() if case.due_at else None}, actor=actor)
    return outcome
