"""Deadlines that pass: escalation up the levels, and notices to the operators who own a case.

``sweep`` runs about once a minute (in ``hub poll``, and ``hub tasks sweep``):

* a case past the hub's handling deadline (``due_at``), not finished, not on hold, climbs one level
  (grid → community → street → district: 微循环 → 小循环 → 大循环) with a fresh handling deadline from
  its task-list item, and the operators of the new level are told. A case the grid was handling
  itself (``handling_mode`` grid) is handed to the department the task list names when it climbs,
  if that is a system the hub can open a record in. At district level it stays and its operators
  are told it is overdue, once per deadline;
* a case due within the next working hour, or past its on-site deadline while nobody has taken it
  (still REPORTED or ACCEPTED), is notified once.

Every notice has a key (``uq_notification_user_key``), so two pollers sweeping at once, or a
sweep repeated after a crash, tell each person once. On PostgreSQL the cases are locked
(``FOR UPDATE SKIP LOCKED``) so only one sweep escalates a case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.models import LEVELS, Case, Notification, System, User, utcnow
from hub.services import routing
from hub.services.cases import add_event
from hub.services.task_list import GRID, item_for
from hub.services.workdays import WorkCalendar

log = logging.getLogger(__name__)

FINISHED = ("RESOLVED", "VERIFIED", "CLOSED", "CANCELLED")
UNTAKEN = ("REPORTED", "ACCEPTED")
LEVEL_DIGITS = {"grid": 15, "community": 12, "street": 9, "district": 6}
LEVEL_WORDS = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}
NOTIFIED_ROLES = ("operator", "admin")
BATCH = 500


@dataclass
class SweepResult:
    escalated: int = 0
    routed: int = 0
    overdue_notices: int = 0
    due_soon_notices: int = 0
    notified_users: set[int] = field(default_factory=set)


def recipients(session: Session, case: Case) -> list[User]:
    """Active operators and admins whose jurisdiction holds the case at its level: a street-level
    case is its street's (and district's) business, not another street's, nor a community's."""
    digits = LEVEL_DIGITS.get(case.level or "street", 9)
    users = session.scalars(select(User).where(User.active.is_(True), User.role.in_(NOTIFIED_ROLES)))
    out = []
    for user in users:
        if not case.grid_code.startswith(user.scope) or len(user.scope) > digits:
            continue
        if not user.scope and case.level != "district":
            continue  # a deployment-wide account hears of district-level cases only
        out.append(user)
    return out


def notify(session: Session, case: Case, kind: str, key: str, message: str, result: SweepResult) -> int:
    sent = 0
    for user in recipients(session, case):
        exists = session.scalar(select(Notification.id).where(Notification.user_id == user.id,
                                                              Notification.key == key))
        if exists is not None:
            continue
        try:
            with session.begin_nested():
                session.add(Notification(user_id=user.id, case_id=case.id, kind=kind, key=key[:120],
                                         message=message[:500], detail={"case_number": case.number,
                                                                        "level": case.level}))
        except IntegrityError:  # another sweep told this person just now
            continue
        sent += 1
        result.notified_users.add(user.id)
    return sent


def _due_cases(ctx: HubContext, session: Session, *conditions: ColumnElement[bool]) -> list[Case]:
    q = (select(Case).where(Case.merged_into_id.is_(None), Case.clock_paused_at.is_(None),
                            Case.status.not_in(FINISHED), *conditions)
         .order_by(Case.due_at).limit(BATCH))
    if not ctx.db.is_sqlite:
        q = q.with_for_update(skip_locked=True)
    return list(session.scalars(q))


def _escalate(ctx: HubContext, session: Session, case: Case, cal: WorkCalendar, now: datetime,
              result: SweepResult) -> None:
    old = case.level or "street"
    if old == LEVELS[-1]:
        assert case.due_at is not None
        result.overdue_notices += notify(session, case, "overdue", f"overdue:{case.id}:{case.due_at.isoformat()}",
                                         f"{case.number} 已超期（区级）", result)
        return
    new = LEVELS[LEVELS.index(old) + 1] if old in LEVELS else "district"
    item = item_for(session, case.category)
    span = (item.handling_limit if item is not None else "") or "3d"
    case.level = new
    case.escalations += 1
    case.due_at = cal.add_working(now, span)
    result.escalated += 1
    add_event(session, case, "escalated", f"超期升级：{LEVEL_WORDS.get(old, old)} → {LEVEL_WORDS[new]}，"
              f"新处置时限 {span}", detail={"from": old, "to": new, "due_at": case.due_at.isoformat()})
    if case.handling_mode == GRID and item is not None and item.handler != GRID:
        system = session.scalar(select(System).where(System.plugin == item.handler, System.enabled.is_(True))
                                .order_by(System.id))
        if system is not None:
            try:
                routing.route_case(ctx, session, case, system.key, actor="hub",
                                   reason=f"网格自办超期，升级派往 {item.department}")
                case.handling_mode = "department"
                result.routed += 1
            except routing.RoutingError as exc:
                add_event(session, case, "escalated", f"升级派往 {system.key} 未成功：{exc}")
    notify(session, case, "escalated", f"escalated:{case.id}:{case.escalations}",
           f"{case.number} 超期，已升级至{LEVEL_WORDS[new]}", result)


def sweep(ctx: HubContext, now: datetime | None = None) -> SweepResult:
    """One pass over the hub's deadlines (see the module docstring); safe to run concurrently."""
    moment = now or utcnow()
    result = SweepResult()
    with ctx.db.session() as s:
        cal = WorkCalendar.load(s)
        for case in _due_cases(ctx, s, Case.due_at.is_not(None), Case.due_at < moment):
            _escalate(ctx, s, case, cal, moment, result)
        soon = cal.add_working(moment, "1h")
        for case in _due_cases(ctx, s, Case.due_at.is_not(None), Case.due_at >= moment, Case.due_at <= soon):
            assert case.due_at is not None
            result.due_soon_notices += notify(s, case, "due_soon", f"due_soon:{case.id}:{case.due_at.isoformat()}",
                                              f"{case.number} 将于一个工作小时内到期", result)
        for case in _due_cases(ctx, s, Case.onsite_due_at.is_not(None), Case.onsite_due_at < moment,
                               Case.status.in_(UNTAKEN)):
            assert case.onsite_due_at is not None
            result.due_soon_notices += notify(s, case, "onsite_overdue",
                                              f"onsite:{case.id}:{case.onsite_due_at.isoformat()}",
                                              f"{case.number} 已过到场时限，尚无人受理", result)
    return result


def sweep_quietly(ctx: HubContext) -> None:
    """For the poller's loop: a failed sweep is logged and retried next minute."""
    try:
        r = sweep(ctx)
        if r.escalated or r.overdue_notices or r.due_soon_notices:
            log.info("deadline sweep: %d escalated (%d routed), %d overdue and %d due-soon notices",
                     r.escalated, r.routed, r.overdue_notices, r.due_soon_notices)
    except Exception:
        log.exception("deadline sweep")


def notifications_for(session: Session, user: User, unread_only: bool = False, limit: int = 100) -> list[Notification]:
    q = select(Notification).where(Notification.user_id == user.id)
    if unread_only:
        q = q.where(Notification.read_at.is_(None))
    return list(session.scalars(q.order_by(Notification.id.desc()).limit(limit)))


def mark_read(session: Session, user: User, ids: list[int]) -> int:
    rows = session.scalars(select(Notification).where(Notification.user_id == user.id, Notification.id.in_(ids),
                                                      Notification.read_at.is_(None)))
    count = 0
    for row in rows:
        row.read_at = utcnow()
        count += 1
    return count
