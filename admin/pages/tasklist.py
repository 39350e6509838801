"""Console pages of the report-once clock: the task list (事项清单) and the working calendar's own
days (admins edit, everyone reads), the overdue and due-soon lists of the user's jurisdiction
(超期督办), and the user's own notifications (通知). Edits are validated and audited by the
services (``hub.services.task_list``, ``workdays``); every form carries the CSRF token."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from admin.views import _check_csrf, _ctx, bp, nav, roles
from hub.models import LEVELS, CalendarDay, Case, TaskItem, User, utcnow
from hub.services import escalation, task_list, workdays
from hub.services.workdays import WorkCalendar

EVERYONE = ("admin", "operator", "department", "grid_worker", "auditor")
DEADLINE_VIEWERS = ("admin", "operator", "department", "auditor")
PER_PAGE = 50


@bp.get("/tasklist")
@roles(*EVERYONE)
def tasklist() -> str:
    ctx = _ctx()
    with ctx.db.session() as s:
        task_list.ensure_seeded(s)
        items = list(s.scalars(select(TaskItem).order_by(TaskItem.category)))
        days = list(s.scalars(select(CalendarDay).order_by(CalendarDay.day)))
        s.expunge_all()
    year = date.today().year
    handlers = sorted(task_list.creatable_types(ctx) | {task_list.GRID})
    return render_template("console/tasklist.html", items=items, days=days, levels=LEVELS, handlers=handlers,
                           gaps=workdays.calendar_gaps(range(year - 1, year + 2)),
                           can_edit=g.caller["role"] == "admin")


@bp.post("/tasklist/<category>")
@roles("admin")
def tasklist_update(category: str) -> Response:
    _check_csrf()
    f = request.form
    changes: dict[str, Any] = {k: f.get(k, "").strip() for k in ("handler", "department", "level", "onsite_limit",
                                                                 "handling_limit", "note")}
    changes["self_handling"] = f.get("self_handling") == "on"
    changes["enabled"] = f.get("enabled") == "on"
    ctx = _ctx()
    try:
        with ctx.db.session() as s:
            task_list.update_item(ctx, s, category, changes, str(g.caller["name"]))
    except KeyError:
        abort(404)
    except ValueError as exc:
        flash(_("未保存 %(category)s：%(reason)s", category=category, reason=str(exc)), "error")
        return redirect(url_for("console.tasklist", _anchor=f"item-{category}"))
    flash(_("已保存 %(category)s", category=category))
    return redirect(url_for("console.tasklist", _anchor=f"item-{category}"))


@bp.post("/tasklist/calendar")
@roles("admin")
def calendar_day_set() -> Response:
    _check_csrf()
    try:
        day = date.fromisoformat(request.form.get("day", ""))
        with _ctx().db.session() as s:
            workdays.set_day(s, day, request.form.get("kind", ""), request.form.get("name", "").strip(),
                             str(g.caller["name"]))
    except ValueError as exc:
        flash(_("未保存：%(reason)s", reason=str(exc)), "error")
        return redirect(url_for("console.tasklist", _anchor="calendar"))
    flash(_("已设置 %(day)s", day=day.isoformat()))
    return redirect(url_for("console.tasklist", _anchor="calendar"))


@bp.post("/tasklist/calendar/<day>/delete")
@roles("admin")
def calendar_day_remove(day: str) -> Response:
    _check_csrf()
    try:
        d = date.fromisoformat(day)
    except ValueError:
        abort(404)
    with _ctx().db.session() as s:
        if not workdays.remove_day(s, d, str(g.caller["name"])):
            abort(404)
    flash(_("已删除 %(day)s，该日按法定日历计算", day=d.isoformat()))
    return redirect(url_for("console.tasklist", _anchor="calendar"))


@bp.get("/deadlines")
@roles(*DEADLINE_VIEWERS)
def deadlines() -> str:
    """Open cases past their deadline, and those due within the next working day, in the jurisdiction."""
    state = request.args.get("state", "overdue")
    if state not in ("overdue", "due_soon"):
        abort(400)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    now = utcnow()
    scope = str(g.caller["scope"] or "")
    with _ctx().db.read_session() as s:
        q = select(Case).where(Case.merged_into_id.is_(None), Case.status.not_in(escalation.FINISHED),
                               Case.due_at.is_not(None))
        if state == "overdue":
            q = q.where(Case.due_at < now)
        else:
            horizon = WorkCalendar.load(s).add_working(now, "1d")
            q = q.where(Case.due_at >= now, Case.due_at <= horizon)
        if scope:
            q = q.where(Case.grid_code.startswith(scope))
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        cases = list(s.scalars(q.order_by(Case.due_at).offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
        s.expunge_all()
    return render_template("console/deadlines.html", cases=cases, state=state, total=total, page=page,
                           per_page=PER_PAGE, now=now)


@bp.get("/notifications")
@roles(*EVERYONE)
def notifications() -> str:
    with _ctx().db.read_session() as s:
        user = s.get(User, int(g.caller["id"]))
        assert user is not None
        rows = escalation.notifications_for(s, user, unread_only=request.args.get("unread") == "1")
        s.expunge_all()
    return render_template("console/notifications.html", rows=rows, unread_only=request.args.get("unread") == "1")


@bp.post("/notifications/read")
@roles(*EVERYONE)
def notifications_read() -> Response:
    _check_csrf()
    ids = [int(x) for x in request.form.getlist("ids") if x.isdigit()]
    with _ctx().db.session() as s:
        user = s.get(User, int(g.caller["id"]))
        assert user is not None
        if request.form.get("all") == "1":
            ids = [n.id for n in escalation.notifications_for(s, user, unread_only=True, limit=1000)]
        count = escalation.mark_read(s, user, ids)
    flash(_("已标记 %(n)s 条为已读", n=count))
    return redirect(url_for("console.notifications"))


def due_state(case: Case) -> str:
    """``overdue`` / ``due_soon`` (within a day) / ``""`` for the case page's panel."""
    if case.due_at is None or case.status in escalation.FINISHED:
        return ""
    now = utcnow()
    if case.clock_paused_at is not None:
        return "paused"
    if case.due_at < now:
        return "overdue"
    return "due_soon" if case.due_at - now < timedelta(days=1) else ""


bp.add_app_template_global(due_state, "due_state")

nav("console.deadlines", "超期督办", *DEADLINE_VIEWERS)
nav("console.tasklist", "事项清单", *EVERYONE)
nav("console.notifications", "通知", *EVERYONE)
