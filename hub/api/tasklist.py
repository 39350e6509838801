"""The task list (事项清单), the working calendar's admin days, and dispatching a case by the list.

Everyone signed in reads the list and the calendar; only admins change them (validated by
``hub.services.task_list``/``workdays``, audited there). Operators dispatch a case in their
jurisdiction by the list: its clock restarts from now and it goes where the list says.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from hub.api.auth import ADMINS, READERS, fail, hub_ctx, load_caller, require_role
from hub.api.schemas import NO_NUL
from hub.models import LEVELS, CalendarDay, Case, TaskItem, utcnow
from hub.services import outbox, sync, task_list, workdays
from mappings.canonical import CanonicalStatus

blp = Blueprint("tasklist", __name__, url_prefix="/api/v1",
                description="The task list (事项清单), working calendar, dispatch by the list")
blp.before_request(load_caller)

OPERATORS = ("admin", "operator")
SPAN = validate.Regexp(r"^([1-9][0-9]{0,2}[hd])?\Z", error="a working-time span such as '4h' or '7d', or empty")


class TaskItemSchema(Schema):
    category = fields.Str()
    name = fields.Str()
    area = fields.Str()
    handler = fields.Str(metadata={"description": "department system type, or 'grid' (grid self-handling)"})
    department = fields.Str()
    level = fields.Str(metadata={"description": "grid | community | street | district"})
    onsite_limit = fields.Str(metadata={"description": "working-time span ('2h', '7d') or empty"})
    handling_limit = fields.Str()
    self_handling = fields.Bool()
    enabled = fields.Bool()
    note = fields.Str()
    updated_by = fields.Str()
    updated_at = fields.DateTime()


class TaskItemUpdateArgs(Schema):
    name = fields.Str(validate=[validate.Length(max=100), NO_NUL])
    area = fields.Str(validate=[validate.Length(max=32), NO_NUL])
    handler = fields.Str(validate=[validate.Length(min=1, max=64), NO_NUL])
    department = fields.Str(validate=[validate.Length(max=200), NO_NUL])
    level = fields.Str(validate=validate.OneOf(LEVELS))
    onsite_limit = fields.Str(validate=SPAN)
    handling_limit = fields.Str(validate=SPAN)
    self_handling = fields.Bool()
    enabled = fields.Bool()
    note = fields.Str(validate=[validate.Length(max=500), NO_NUL])


class CalendarDaySchema(Schema):
    day = fields.Date()
    kind = fields.Str(metadata={"description": "workday | holiday"})
    name = fields.Str()
    updated_by = fields.Str()


class CalendarSchema(Schema):
    days = fields.List(fields.Nested(CalendarDaySchema))
    gaps = fields.List(fields.Int(), metadata={"description": "years the packaged holiday calendar does not "
                                                              "cover (Monday–Friday assumed there)"})


class CalendarDayArgs(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(workdays.KINDS))
    name = fields.Str(load_default="", validate=[validate.Length(max=100), NO_NUL])


class DispatchArgs(Schema):
    reason = fields.Str(load_default="", validate=[validate.Length(max=500), NO_NUL])


class DispatchedSchema(Schema):
    case_id = fields.Int()
    outcome = fields.Str(metadata={"description": "grid | routed:<system> | no_system | refused | no_item"})
    owner_system = fields.Str()
    level = fields.Str()
    handling_mode = fields.Str()
    onsite_due_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(404, f"no calendar day {text!r} (write YYYY-MM-DD)")


@blp.route("/task-list")
class TaskList(MethodView):
    @require_role(*READERS)
    @blp.response(200, TaskItemSchema(many=True))
    def get(self) -> list[TaskItem]:
        """Every item, by category (the shipped default until an admin changes it)."""
        with hub_ctx().db.session() as s:
            task_list.ensure_seeded(s)
            items = list(s.scalars(select(TaskItem).order_by(TaskItem.category)))
            s.expunge_all()
            return items


@blp.route("/task-list/<text:category>")
class TaskListItem(MethodView):
    @require_role(*ADMINS)
    @blp.arguments(TaskItemUpdateArgs)
    @blp.response(200, TaskItemSchema)
    @blp.alt_response(404, description="no such category in the task list")
    @blp.alt_response(409, description="the handler is neither 'grid' nor an installed system type that "
                                       "takes new records")
    def put(self, args: dict[str, Any], category: str) -> TaskItem:
        """Change one item (audited). The schema checks the level and the spans; 409 names the
        handler when it is neither ``grid`` nor an installed system type that takes new records
        (which types are installed is the deployment's state, not the document's)."""
        ctx = hub_ctx()
        with ctx.db.session() as s:
            try:
                item = task_list.update_item(ctx, s, category, args, str(g.caller["name"]))
            except KeyError:
                fail(404, f"no task-list item {category!r}")
            except ValueError as exc:
                fail(409, str(exc))
            s.flush()
            s.refresh(item)
            s.expunge(item)
            return item


@blp.route("/calendar")
class Calendar(MethodView):
    @require_role(*READERS)
    @blp.response(200, CalendarSchema)
    def get(self) -> dict[str, Any]:
        """The admin's own days (over the packaged State Council calendar) and the years it lacks."""
        with hub_ctx().db.read_session() as s:
            days = [{"day": d.day, "kind": d.kind, "name": d.name, "updated_by": d.updated_by}
                    for d in s.scalars(select(CalendarDay).order_by(CalendarDay.day))]
        this_year = date.today().year
        return {"days": days, "gaps": workdays.calendar_gaps(range(this_year - 1, this_year + 2))}


@blp.route("/calendar/days/<text:day>")
class CalendarDayView(MethodView):
    @require_role(*ADMINS)
    @blp.arguments(CalendarDayArgs)
    @blp.response(200, CalendarDaySchema)
    @blp.alt_response(404, description="not a date (YYYY-MM-DD)")
    def put(self, args: dict[str, Any], day: str) -> dict[str, Any]:
        """Make the day a working day or a holiday whatever the package says (audited)."""
        d = _day(day)
        with hub_ctx().db.session() as s:
            workdays.set_day(s, d, args["kind"], args["name"], str(g.caller["name"]))
        return {"day": d, "kind": args["kind"], "name": args["name"], "updated_by": str(g.caller["name"])}

    @require_role(*ADMINS)
    @blp.response(204)
    @blp.alt_response(404, description="no admin entry for that day")
    def delete(self, day: str) -> None:
        """Drop the admin's entry: the packaged calendar decides the day again (audited)."""
        d = _day(day)
        with hub_ctx().db.session() as s:
            if not workdays.remove_day(s, d, str(g.caller["name"])):
                fail(404, f"no admin entry for {d.isoformat()}")


@blp.route("/cases/<int(max=2147483647):case_id>/dispatch")
class CaseDispatch(MethodView):
    @require_role(*OPERATORS)
    @blp.arguments(DispatchArgs)
    @blp.response(200, DispatchedSchema)
    @blp.alt_response(404, description="no such case (or outside the caller's jurisdiction)")
    @blp.alt_response(409, description="merged away, or already finished")
    def post(self, args: dict[str, Any], case_id: int) -> dict[str, Any]:
        """Dispatch the case by the task list now: the clock restarts from now and the case goes
        to the department system type the list names (a record is opened there), or to the grid."""
        ctx = hub_ctx()
        scope = str(g.caller["scope"])
        with ctx.db.session() as s:
            q = select(Case).where(Case.id == case_id)
            if scope:
                q = q.where(Case.grid_code.startswith(scope))
            if not ctx.db.is_sqlite:
                q = q.with_for_update()
            case = s.scalar(q)
            if case is None:
                fail(404, f"case {case_id} not found")
            if case.merged_into_id is not None:
                fail(409, f"case {case.number} was merged away; act on the case it went into")
            finished = {CanonicalStatus.RESOLVED.value, CanonicalStatus.VERIFIED.value, CanonicalStatus.CLOSED.value,
                        CanonicalStatus.CANCELLED.value}
            if case.status in finished:
                fail(409, f"case {case.number} is {case.status}: nothing left to dispatch")
            outcome = task_list.apply_task_list(ctx, s, case, actor=str(g.caller["name"]), route=True,
                                                now=utcnow())
            planned = sync.take_planned(s)
            answer = {"case_id": case.id, "outcome": outcome, "owner_system": case.owner_system,
                      "level": case.level, "handling_mode": case.handling_mode,
                      "onsite_due_at": case.onsite_due_at, "due_at": case.due_at}
        outbox.nudge(ctx, planned)
        return answer

