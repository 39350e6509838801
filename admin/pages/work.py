"""Console pages for working cases: the case list with filters (案件工作台), one case with its
timeline, its records in each system's own words, a location map drawn on the server and the
actions on it (route, merge, split, on-site verification), and the dedup review queue (复核队列).

Every action calls the hub's own service (``routing``, ``sync``, ``dedup_ops``) as the API does
and is written to the audit log. A refusal is shown next to the form it concerns after the
redirect back (kept in the session for one page view), in Chinese with the service's own words
after it. Anything tied to a case outside the caller's jurisdiction is a 404 whatever the URL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from admin.pages.report import uploaded_photos
from admin.pages.systems import OPERATION_LABELS, OUTBOUND_STATUSES
from admin.views import SHANGHAI, _check_csrf, _ctx, bp, nav, roles
from hub.dedup.location import metres_per_degree
from hub.facade import OP_CREATE
from hub.models import Case, CaseEvent, OutboundMessage, ReviewStatus, System, Ticket, utcnow
from hub.services import audit, dedup_ops, outbox, reports, routing, sync
from hub.services.dedup_ops import OperationError
from hub.services.redact import redact_text
from hub.services.systems import list_systems
from mappings import load_taxonomy
from mappings.canonical import STATUS_LABELS_ZH, CanonicalStatus

T = TypeVar("T")
READERS = ("admin", "operator", "department", "grid_worker", "auditor")
OPERATORS = ("admin", "operator")
VERIFIERS = ("admin", "operator", "grid_worker")
PER_PAGE = 50
# a deadline no longer runs once the department reported the work done, or the case ended
FINISHED = routing.FINISHED | routing.SILENT
REFUSAL_KEY = "work_refusal"
KEPT_CHARS = 200  # posted text kept across the redirect after a refusal (the session is a cookie)

EVENT_LABELS = {
    "case_opened": _l("立案"), "ticket_linked": _l("关联工单"), "ticket_moved": _l("工单移出"),
    "case_merged": _l("并入他案"),
    "ticket_status": _l("系统状态变化"), "status_changed": _l("状态变更"), "status_refused": _l("状态未采纳"),
    "sync_planned": _l("状态同步外发"), "routed": _l("转派"), "routed_created": _l("对方已建档"),
    "route_failed": _l("转派失败"),
    "duplicate_planned": _l("通知重复件"), "split_planned": _l("通知拆分"), "split_not_propagated": _l("拆分未能通知"),
    "progress_noted": _l("进展通知"), "case_merge": _l("人工合并"), "ticket_split": _l("人工拆分"),
    "ticket_relinked": _l("人工改关联"), "review_accepted": _l("复核并案"), "review_linked": _l("复核改关联"),
    "review_rejected": _l("复核：非同一事件"), "operation_undone": _l("撤销操作"), "match_review": _l("疑似重复待复核"),
    "match_recurrence": _l("复发"), "outbound": _l("外发消息"), "outbound_sent": _l("外发送达"),
    "task_list": _l("事项清单"), "escalated": _l("超期升级"), "report_day_moved": _l("报告时间更正"),
}
REVIEW_LABELS = {ReviewStatus.PENDING: _l("待复核"), ReviewStatus.ACCEPTED: _l("已并案"),
                 ReviewStatus.REJECTED: _l("非同一事件"),
                 ReviewStatus.LINKED_ELSEWHERE: _l("已改关联"), ReviewStatus.SUPERSEDED: _l("已作废")}
FEATURE_LABELS = {"distance": _l("距离"), "time": _l("时间间隔"), "category": _l("类别"), "text": _l("文字相似度"),
                  "address": _l("地址"), "phone": _l("来电号码"), "system": _l("来源系统"),
                  "rivals": _l("相似案件"), "margin": _l("领先程度"), "place_cases": _l("本小区同类案件"),
                  "compound_distance": _l("同小区内距离"), "runner_up": _l("最接近的其他候选")}
LEVEL_LABELS = {
    "le_15m": _l("15 米内"), "le_40m": _l("40 米内"), "le_80m": _l("80 米内"), "le_150m": _l("150 米内"),
    "le_300m": _l("300 米内"),
    "far": _l("较远"), "weak": _l("位置不精确"), "le_0.1w": _l("很短（时间窗 10% 内）"),
    "le_0.3w": _l("较短（30% 内）"),
    "le_0.6w": _l("中等（60% 内）"), "le_1w": _l("时间窗内"), "beyond": _l("超出时间窗"), "exact": _l("相同"),
    "group": _l("同组"),
    "other_group": _l("不同组"), "ge_0.5": _l("很相似"), "ge_0.3": _l("较相似"), "ge_0.15": _l("略相似"),
    "gt_0": _l("稍有相同"),
    "none": _l("无相同"), "missing": _l("缺失"), "same_place": _l("同一门牌"), "same_compound": _l("同一小区/院落"),
    "other_building": _l("同院不同楼"), "near_number": _l("相邻门牌"), "same_road": _l("同一道路"),
    "different": _l("不同"),
    "same": _l("相同"), "other": _l("不同"),
    "le_0.02w": _l("几乎同时（时间窗 2% 内）"), "le_0.05w": _l("极短（5% 内）"),
    # distance read against the two systems' usual pin error (a grid worker's GPS, a citizen's pin)
    "pin_0.35": _l("远小于两系统常见定位误差"), "pin_0.7": _l("小于常见定位误差"), "pin_1": _l("约为常见定位误差"),
    "pin_1.5": _l("略超常见定位误差"), "pin_2": _l("约两倍定位误差"), "pin_3": _l("约三倍定位误差"),
    "pin_6": _l("远超定位误差"),
    # case level: other open cases that could as well be the incident, and how far this one leads
    "rivals:none": _l("无其他候选案件"), "rivals:one": _l("另有 1 个相似案件"),
    "rivals:several": _l("另有多个相似案件"),
    "alone": _l("唯一候选"), "ahead_8": _l("远超其他候选"), "ahead_4": _l("明显领先"), "ahead_2": _l("略微领先"),
    "ahead_0": _l("与其他候选相当"), "behind": _l("落后于其他候选"),
    # ticket level: open cases of its kind in the compound it names (a busy compound makes a new
    # incident likelier)
    "place_cases:no_compound": _l("未写明小区"), "place_cases:le_1": _l("本小区至多 1 件"),
    "place_cases:two": _l("本小区 2 件"), "place_cases:three_four": _l("本小区 3–4 件"),
    "place_cases:ge_5": _l("本小区 5 件以上"),
    # the distance once more when both reports name one compound
    "compound_distance:not_compound": _l("非同一小区"), "compound_distance:close": _l("小区内很近"),
    "compound_distance:apart": _l("小区内相隔一段"), "compound_distance:far_apart": _l("小区内相距较远"),
    "compound_distance:weak": _l("小区内位置不精确"),
    # case level: the closest other candidate, and whether it looks like this case's own incident
    "runner_up:clear": _l("无接近的其他候选"), "runner_up:twin_place": _l("接近的候选与本案同一地点"),
    "runner_up:twin_loose": _l("接近的候选与本案地点相容"), "runner_up:distinct": _l("接近的候选是另一事件"),
}
REFUSALS = {404: _l("找不到该案件或工单，或不在您的辖区内"), 409: _l("当前状态不允许此操作"), 422: _l("填写内容有误")}
ROUTE_REFUSALS = {"unknown": _l("没有这个系统"), "unsupported": _l("该系统不接收新建案件"),
                  "mapping": _l("该系统的映射无法表达本案（例如类别没有对应编码）")}


class Refused(Exception):
    """An action not done: the form field it concerns and the message for the person."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


# ----------------------------------------------------------------------------- shared helpers


def _scope() -> str:
    return str(g.caller["scope"] or "")


def _scoped(q: Select[Any]) -> Select[Any]:
    return q.where(Case.grid_code.startswith(_scope())) if _scope() else q


def _visible_case(s: Session, case_id: int) -> Case:
    case: Case | None = s.scalar(_scoped(select(Case).where(Case.id == case_id)))
    if case is None:
        abort(404)
    return case


def _locked_case(s: Session, case_id: int) -> Case:
    """The case, row-locked for a change (SQLite serializes writers already); a case merged away
    takes no action: the case that absorbed it does."""
    q = _scoped(select(Case).where(Case.id == case_id))
    case: Case | None = s.scalar(q if _ctx().db.is_sqlite else q.with_for_update())
    if case is None:
        abort(404)
    if case.merged_into_id is not None:
        raise Refused("form", _("案件 %(number)s 已并入其他案件，请在合并后的案件上操作", number=case.number))
    return case


def _case_id_by_number(number: str, where: str) -> int:
    with _ctx().db.read_session() as s:
        found: int | None = s.scalar(_scoped(select(Case.id).where(Case.number == number)))
    if found is None:
        raise Refused(where, _("找不到案件编号 %(number)s（或不在您的辖区内）", number=number))
    return found


def _text(name: str, minimum: int = 0, maximum: int = 500, label: str = "") -> str:
    """The posted field ``name``, checked; ``label`` is its translated name for the message."""
    value = request.form.get(name, "").strip()
    label = label or _("此项")
    if "\x00" in value:
        raise Refused(name, _("%(label)s含有不允许的字符", label=label))
    if len(value) < minimum:
        raise Refused(name, _("请填写%(label)s（至少 %(n)s 个字）", label=label, n=minimum) if minimum > 1
                      else _("请填写%(label)s", label=label))
    if len(value) > maximum:
        raise Refused(name, _("%(label)s最多 %(n)s 个字", label=label, n=maximum))
    return value


def _service(where: str, what: str, call: Callable[[], T]) -> T:
    """A dedup operation; its refusal in words a person can act on (the service's own after it)."""
    try:
        return call()
    except OperationError as exc:
        raise Refused(where, _("%(what)s未执行：%(why)s（%(detail)s）", what=what,
                                why=REFUSALS.get(exc.status, _("操作被拒绝")), detail=exc.message)) from exc


def _refused(target: str, form: str, exc: Refused, back: str) -> Response:
    """Keep the refusal (and what was typed) for the page the person is sent back to."""
    kept = {k: v[:KEPT_CHARS] for k, v in request.form.items() if k != "csrf"}
    session[REFUSAL_KEY] = {"target": target, "form": form, "field": exc.where, "message": exc.message,
                            "values": kept}
    return redirect(back)


def _refusal(target: str) -> dict[str, Any]:
    found = session.pop(REFUSAL_KEY, None)
    return found if isinstance(found, dict) and found.get("target") == target else {}


def _audit(action: str, target_type: str, target_id: str, before: dict[str, Any] | None,
           after: dict[str, Any], s: Session) -> None:
    """Record the person's change in the change's own transaction (dedup operations audit
    themselves, inside theirs: they are given ``_addr()``)."""
    audit.record(s, g.caller["name"], action, target_type, target_id, before, after, _addr())


def _addr() -> str:
    return request.remote_addr or ""


def _own_words(system_type: str, code: str) -> str:
    """A system's status code in that system's own words (its plugin's ``status_labels``)."""
    registry = _ctx().registry
    labels = registry.get(system_type).status_labels if system_type in registry else {}
    return labels.get(code, code)


# ----------------------------------------------------------------------------- 案件工作台: the list


@dataclass(frozen=True)
class CaseFilters:
    status: str = ""
    category: str = ""
    system: str = ""
    grid: str = ""
    overdue: bool = False
    multi: bool = False
    reported_from: str = ""
    reported_to: str = ""
    page: int = 1

    def args(self, **change: Any) -> dict[str, Any]:
        """Query arguments of these filters (for paging links): only those set."""
        values = {**asdict(self), **change}
        return {k: ("1" if v is True else v) for k, v in values.items() if v not in ("", False, None)}


def _day(text: str, name: str, errors: dict[str, str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = _("日期格式应为 年-月-日，例如 2026-11-23")
        return None


def _filters(systems: list[str]) -> tuple[CaseFilters, dict[str, str]]:
    """The filters asked for; an unusable one is reported next to its field and not applied."""
    a, errors = request.args, {}
    f = CaseFilters(status=a.get("status", ""), category=a.get("category", ""), system=a.get("system", ""),
                    grid=a.get("grid", "").strip(), overdue=a.get("overdue") == "1", multi=a.get("multi") == "1",
                    reported_from=a.get("reported_from", ""), reported_to=a.get("reported_to", ""),
                    page=max(1, min(a.get("page", 1, type=int) or 1, 100000)))
    if f.status and f.status not in STATUS_LABELS_ZH:
        errors["status"], f = _("未知状态"), replace(f, status="")
    if f.category and f.category not in load_taxonomy().codes:
        errors["category"], f = _("未知类别"), replace(f, category="")
    if f.system and f.system not in systems:
        errors["system"], f = _("未知系统"), replace(f, system="")
    if f.grid and not (f.grid.isdigit() and len(f.grid) <= 15):
        errors["grid"], f = _("网格编码前缀须为 1–15 位数字"), replace(f, grid="")
    start, end = _day(f.reported_from, "reported_from", errors), _day(f.reported_to, "reported_to", errors)
    if start and end and start > end:
        errors["reported_to"] = _("结束日期不能早于开始日期")
    if "reported_from" in errors or "reported_to" in errors:
        f = replace(f, reported_from="" if "reported_from" in errors else f.reported_from,
                    reported_to="" if "reported_to" in errors else f.reported_to)
    return f, errors


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _case_query(f: CaseFilters, now: datetime) -> Select[Any]:
    q = _scoped(select(Case))
    if f.status:
        q = q.where(Case.status == f.status)
    if f.category:
        q = q.where(Case.category == f.category)
    if f.grid:
        q = q.where(Case.grid_code.startswith(f.grid))
    if f.system:
        q = q.where(Case.id.in_(select(Ticket.case_id).where(Ticket.system_key == f.system)))
    if f.multi:
        q = q.where(Case.id.in_(select(Ticket.case_id).where(Ticket.case_id.is_not(None)).group_by(Ticket.case_id)
                                .having(func.count(func.distinct(Ticket.system_key)) > 1)))
    if f.overdue:
        q = q.where(Case.deadline.is_not(None), Case.deadline < now, Case.status.not_in(FINISHED))
    if f.reported_from:  # days are Shanghai days
        q = q.where(Case.reported_at >= _local_midnight(date.fromisoformat(f.reported_from)))
    if f.reported_to:
        q = q.where(Case.reported_at < _local_midnight(date.fromisoformat(f.reported_to) + timedelta(days=1)))
    return q


def _systems_by_case(s: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for case_id, key in s.execute(select(Ticket.case_id, Ticket.system_key).where(Ticket.case_id.in_(ids))
                                  .distinct().order_by(Ticket.system_key)):
        if case_id is not None:
            out.setdefault(case_id, []).append(key)
    return out


def _is_overdue(case: Case, now: datetime) -> bool:
    return case.deadline is not None and case.deadline < now and case.status not in FINISHED


@bp.get("/work/cases")
@roles(*READERS)
def work_cases() -> tuple[str, int]:
    now = utcnow()
    with _ctx().db.read_session() as s:
        systems = list_systems(s)
        f, errors = _filters([x.key for x in systems])
        q = _case_query(f, now)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        cases = list(s.scalars(q.order_by(Case.reported_at.desc(), Case.id.desc())
                               .offset((f.page - 1) * PER_PAGE).limit(PER_PAGE)))
        by_case = _systems_by_case(s, [c.id for c in cases])
        rows = [{"case": c, "systems": by_case.get(c.id, []), "overdue": _is_overdue(c, now)} for c in cases]
        taxonomy = load_taxonomy()
        return render_template(
            "console/work_cases.html", rows=rows, total=total, f=f, errors=errors,
            pages=max(1, math.ceil(total / PER_PAGE)), systems=[(x.key, x.name) for x in systems],
            categories=[(code, taxonomy.name_of(code)) for code in taxonomy.categories],
        ), 422 if errors else 200


# ----------------------------------------------------------------------------- one case: timeline and map


@dataclass
class TimelineItem:
    at: datetime
    kind: str
    text: str
    system: str = ""
    actor: str = ""
    message: dict[str, Any] | None = None  # the outbound message the line is about, with its status


def _operation(m: OutboundMessage) -> str:
    return str(OPERATION_LABELS.get(m.operation, m.operation))


def _message_row(m: OutboundMessage) -> dict[str, Any]:
    return {"id": m.id, "system": m.system_key, "operation": _operation(m),
            "status": m.status, "status_label": OUTBOUND_STATUSES.get(m.status, m.status), "attempts": m.attempts,
            "error": m.last_error[:300], "sent_at": m.sent_at, "next_attempt_at": m.next_attempt_at,
            "external_ref": m.external_ref}


def _status_label(code: str) -> str:
    """A canonical status by its label in the request's language (unknown codes as they are)."""
    return _(STATUS_LABELS_ZH[code]) if code in STATUS_LABELS_ZH else code


def _event_text(e: CaseEvent) -> str:
    """A timeline line in words: canonical statuses by their labels (the event's own summary,
    written by the hub when it happened, stays as recorded)."""
    detail = e.detail if isinstance(e.detail, dict) else {}
    if e.kind == "status_changed" and "to" in detail:
        text = f"{_status_label(detail.get('from', ''))} → {_status_label(detail['to'])}"
        if detail.get("lifecycle"):
            text += _("（人工操作后更正）")
        return text + (_("：%(reason)s", reason=detail["reason"]) if detail.get("reason") else "")
    status = detail.get("status")
    if e.kind == "ticket_status" and isinstance(status, list) and len(status) == 2:
        before, after = (_status_label(x) for x in status)
        return f"{e.summary}（{before} → {after}）"
    return e.summary


def _timeline(s: Session, case: Case) -> list[TimelineItem]:
    """Every event of the case, each outbound message joined with its current delivery status
    (a message no event names gets its own line), and a line when a message was delivered."""
    messages = {m.id: m for m in s.scalars(select(OutboundMessage).where(OutboundMessage.case_id == case.id))}
    items, named = [], set()
    for e in case.events:
        ref = (e.detail or {}).get("message_id") if isinstance(e.detail, dict) else None
        message = messages.get(ref) if isinstance(ref, int) else None
        if message is not None:
            named.add(message.id)
        items.append(TimelineItem(e.at, e.kind, _event_text(e), e.system_key, e.actor,
                                  _message_row(message) if message is not None else None))
    for m in messages.values():
        if m.id not in named:
            planned = _("计划发往 %(system)s：%(operation)s", system=m.system_key, operation=_operation(m))
            items.append(TimelineItem(m.created_at, "outbound", planned,
                                      m.system_key, "hub", _message_row(m)))
        if m.sent_at is not None:
            text = (_("%(system)s 已接收：%(operation)s，对方编号 %(ref)s", system=m.system_key,
                      operation=_operation(m), ref=m.external_ref) if m.external_ref
                    else _("%(system)s 已接收：%(operation)s", system=m.system_key, operation=_operation(m)))
            items.append(TimelineItem(m.sent_at, "outbound_sent", text,
                                      m.system_key, "hub", _message_row(m)))
    return sorted(items, key=lambda i: i.at)


MAP_W, MAP_H, MAP_PAD = 480, 320, 36
MIN_HALF_SPAN_M = 100.0  # a lone point is shown with 100 m around it


@dataclass(frozen=True)
class MapPoint:
    x: float
    y: float
    kind: str  # case / ticket
    label: str
    distance_m: int  # from the case's point (0 for the case itself)
    label_y: float = 0.0  # moved down where it would cover another label


LABEL_H, LABEL_W = 13.0, 110.0


def _placed_labels(points: list[MapPoint]) -> list[MapPoint]:
    """Records reported at (nearly) one spot would print their labels over each other: each label
    goes below the ones already placed that it would cover."""
    placed: list[MapPoint] = []
    for p in points:
        y = p.y + 4
        while any(abs(q.label_y - y) < LABEL_H and abs(q.x - p.x) < LABEL_W for q in placed):
            y += LABEL_H
        placed.append(replace(p, label_y=round(y, 1)))
    return placed


@dataclass(frozen=True)
class LocationMap:
    """A sketch of where the case and its records are: an equirectangular projection around the
    case's point (plenty at street scale), drawn by the template as inline SVG."""

    points: list[MapPoint]
    scale_px: float
    scale_label: str
    grid_code: str
    width: int = MAP_W
    height: int = MAP_H
    missing: list[str] = field(default_factory=list)  # records with no point


def _nice_length(metres: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ metres not above ``metres``: a scale bar's length."""
    power = 10.0 ** math.floor(math.log10(max(metres, 1.0)))
    return next((n * power for n in (5, 2, 1) if n * power <= metres), power)


def _location_map(case: Case, tickets: list[Ticket]) -> LocationMap | None:
    placed = [("case", _("案件 %(number)s", number=case.number), case.lat, case.lng)] + \
             [("ticket", f"{t.system_key} {t.external_id}", t.lat, t.lng) for t in tickets]
    located = [(k, label, lat, lng) for k, label, lat, lng in placed if lat is not None and lng is not None]
    if not located:
        return None
    lat0 = case.lat if case.lat is not None else sum(p[2] for p in located) / len(located)
    lng0 = case.lng if case.lng is not None else sum(p[3] for p in located) / len(located)
    m_per_lng, m_per_lat = metres_per_degree(lat0)
    metres = [(k, label, (lng - lng0) * m_per_lng, (lat - lat0) * m_per_lat) for k, label, lat, lng in located]
    half_span = max([MIN_HALF_SPAN_M] + [max(abs(dx), abs(dy)) for _, _, dx, dy in metres])
    px_per_m = (min(MAP_W, MAP_H) / 2 - MAP_PAD) / half_span
    points = [MapPoint(round(MAP_W / 2 + dx * px_per_m, 1), round(MAP_H / 2 - dy * px_per_m, 1), k, label,
                       round(math.hypot(dx, dy))) for k, label, dx, dy in metres]
    bar_m = _nice_length(MAP_W / 4 / px_per_m)
    return LocationMap(_placed_labels(sorted(points, key=lambda p: p.kind != "case")), round(bar_m * px_per_m, 1),
                       _("%(n)s 公里", n=f"{bar_m / 1000:g}") if bar_m >= 1000 else _("%(n)s 米", n=f"{bar_m:g}"),
                       case.grid_code,
                       missing=[label for k, label, lat, lng in placed if lat is None or lng is None])


def _route_choices(s: Session) -> list[System]:
    """Enabled systems whose type opens records the hub sends (``create``)."""
    registry = _ctx().registry
    return [x for x in list_systems(s) if x.enabled and x.plugin in registry
            and OP_CREATE in registry.get(x.plugin).operations]


@bp.get("/work/cases/<int(max=2147483647):case_id>")
@roles(*READERS)
def work_case(case_id: int) -> str:
    role, now = g.caller["role"], utcnow()
    with _ctx().db.read_session() as s:
        case = _visible_case(s, case_id)
        tickets = list(s.scalars(select(Ticket).where(Ticket.case_id == case.id).order_by(Ticket.id)))
        names = {x.key: x.name for x in list_systems(s)}
        live = case.merged_into_id is None and case.status != CanonicalStatus.CANCELLED.value
        merged_into = s.get(Case, case.merged_into_id) if case.merged_into_id is not None else None
        return render_template(
            "console/work_case.html", case=case, now=now, overdue=_is_overdue(case, now), names=names,
            tickets=[{"t": t, "words": _own_words(t.system_type, t.status_code),
                      "text": redact_text(t.description)[:300]} for t in tickets],
            timeline=_timeline(s, case), location=_location_map(case, tickets),
            photos=reports.case_photos(s, case.id),
            merged_into=merged_into if merged_into is not None and merged_into.grid_code.startswith(_scope())
            else None,
            can_operate=role in OPERATORS and live, can_verify=role in VERIFIERS and case.merged_into_id is None
            and case.status == CanonicalStatus.RESOLVED.value,
            route_choices=_route_choices(s) if role in OPERATORS and live else [],
            refusal=_refusal(f"case:{case_id}"), event_labels=EVENT_LABELS)


# ----------------------------------------------------------------------------- one case: the actions


def _case_action(case_id: int, form: str, act: Callable[[str], str]) -> Response:
    """Run one action of the case page (``act`` gets the case's number): a flash saying what was
    done, or its refusal shown by the form."""
    _check_csrf()
    back = url_for("console.work_case", case_id=case_id)
    with _ctx().db.read_session() as s:
        number = _visible_case(s, case_id).number  # outside the jurisdiction: 404, whatever the action
    from_list = form == "verify" and request.form.get("next") == "verify"  # the grid worker's 待核查 list
    try:
        flash(act(number))
    except Refused as exc:
        if from_list:
            flash(_("案件 %(number)s：%(why)s", number=number, why=exc.message), "error")
            return redirect(url_for("console.verify_list", _anchor=f"verify-{case_id}"))
        return _refused(f"case:{case_id}", form, exc, back)
    return redirect(url_for("console.verify_list") if from_list else back)


@bp.post("/work/cases/<int(max=2147483647):case_id>/route")
@roles(*OPERATORS)
def work_case_route(case_id: int) -> Response:
    def act(_number: str) -> str:
        key, reason = _text("system_key", 1, 64, _("处理系统")), _text("reason", 0, 500, _("说明"))
        ctx = _ctx()
        with ctx.db.session() as s:
            case = _locked_case(s, case_id)
            before = case.owner_system
            try:
                routed = routing.route_case(ctx, s, case, key, actor=str(g.caller["name"]), reason=reason)
            except routing.RoutingError as exc:
                raise Refused("system_key", _("转派未执行：%(why)s（%(detail)s）",
                                              why=ROUTE_REFUSALS.get(exc.kind, _("被拒绝")), detail=exc)) from exc
            _audit("case.route", "case", case.number, {"owner_system": before},
                   {"owner_system": routed.system_key, "message_id": routed.message_id,
                    "external_no": routed.external_no, "reason": reason}, s)
            planned, number = sync.take_planned(s), case.number
        outbox.nudge(ctx, planned)
        if routed.message_id is None:
            return _("案件 %(number)s 已转 %(system)s 处理（已有该系统记录，未新建）", number=number, system=key)
        return _("案件 %(number)s 已转 %(system)s 处理（将以 %(external_no)s 在该系统建档）", number=number, system=key,
                 external_no=routed.external_no)

    return _case_action(case_id, "route", act)


@bp.post("/work/cases/<int(max=2147483647):case_id>/verify")
@roles(*VERIFIERS)
def work_case_verify(case_id: int) -> Response:
    def act(_number: str) -> str:
        result = request.form.get("result", "")
        if result not in ("pass", "fail"):
            raise Refused("result", _("请选择核查结果：通过或不通过"))
        text = _text("text", 2, 500, _("核查情况"))
        ctx = _ctx()
        with ctx.db.session() as s:
            case = _locked_case(s, case_id)
            if case.status != CanonicalStatus.RESOLVED.value:
                raise Refused("form", _("案件 %(number)s 当前为“%(status)s”，只有“已处置”的案件才能现场核查",
                                        number=case.number, status=_status_label(case.status)))
            try:
                photo_ids = reports.verify_case(s, case, result=result, text=text, actor=str(g.caller["name"]),
                                                photos=uploaded_photos("photos"))[1]
            except reports.ReportError as exc:
                raise Refused("photos", _("照片不合要求（%(why)s）", why=str(exc))) from exc
            planned, number = sync.take_planned(s), case.number
            _audit("case.verify", "case", number, {"status": CanonicalStatus.RESOLVED.value},
                   {"status": case.status, "result": result, "text": text, "planned": planned, "photos": photo_ids}, s)
        outbox.nudge(ctx, planned)
        if result == "pass":
            return _("案件 %(number)s 核查通过，已核查（通知 %(n)s 个系统记录）", number=number, n=planned)
        return _("案件 %(number)s 核查不通过，已重新办理（通知 %(n)s 个系统记录）", number=number, n=planned)

    return _case_action(case_id, "verify", act)


@bp.post("/work/cases/<int(max=2147483647):case_id>/merge")
@roles(*OPERATORS)
def work_case_merge(case_id: int) -> Response:
    def act(source: str) -> str:
        number = _text("into", 1, 32, _("目标案件编号"))
        reason = _text("reason", 1, 500, _("合并原因"))
        into = _case_id_by_number(number, "into")
        op = _service("into", _("合并"), lambda: dedup_ops.merge_cases(
            _ctx(), case_id, into, str(g.caller["name"]), reason, scope=_scope(), remote_addr=_addr()))
        return _("已将本案并入 %(number)s（操作 #%(id)s，可撤销）", number=number, id=op["id"])

    return _case_action(case_id, "merge", act)


@bp.post("/work/cases/<int(max=2147483647):case_id>/split")
@roles(*OPERATORS)
def work_case_split(case_id: int) -> Response:
    def act(_number: str) -> str:
        return _split(case_id, request.form.get("ticket_id", ""), "reason")

    return _case_action(case_id, "split", act)


def _split(case_id: int, ticket_id: str, reason_field: str) -> str:
    """Take one ticket of the case out: into a new case, or into the case numbered ``to``."""
    reason = _text(reason_field, 1, 500, _("拆分原因"))
    number = _text("to", 0, 32, _("目标案件编号"))
    with _ctx().db.read_session() as s:
        ticket = s.get(Ticket, int(ticket_id)) if ticket_id.isdigit() and len(ticket_id) < 10 else None
        if ticket is None or ticket.case_id != case_id:
            raise Refused(reason_field, _("该工单已不在本案中，请刷新页面"))
        key, external_id = ticket.system_key, ticket.external_id
    target = _case_id_by_number(number, "to") if number else None
    op = _service(reason_field, _("拆分"), lambda: dedup_ops.split_ticket(
        _ctx(), key, external_id, str(g.caller["name"]), reason, target, scope=_scope(), remote_addr=_addr()))
    created = op["detail"].get("created_case")
    if number:
        return _("已将 %(system)s %(external_id)s 拆出至%(number)s（操作 #%(id)s，可撤销）", system=key,
                 external_id=external_id, number=number, id=op["id"])
    return _("已将 %(system)s %(external_id)s 拆出至新案件 #%(case)s（操作 #%(id)s，可撤销）", system=key,
             external_id=external_id, case=created, id=op["id"])


# ----------------------------------------------------------------------------- 复核队列: the review queue


@bp.get("/work/review")
@roles(*OPERATORS)
def work_review() -> str:
    status = request.args.get("status", ReviewStatus.PENDING)
    if status not in REVIEW_LABELS:
        status = ReviewStatus.PENDING
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 100000))
    listing = dedup_ops.list_reviews(_ctx(), status, PER_PAGE, (page - 1) * PER_PAGE, scope=_scope())
    return render_template("console/work_review.html", listing=listing, status=status, page=page,
                           pages=max(1, math.ceil(listing["total"] / PER_PAGE)), review_labels=REVIEW_LABELS)


def _side(ticket_id: int | None, s: Session) -> dict[str, Any] | None:
    """One side of the pair as the reviewer compares it: text included (phone numbers masked)."""
    ticket = s.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None:
        return None
    return {"t": ticket, "text": redact_text(ticket.description)[:1000],
            "words": _own_words(ticket.system_type, ticket.status_code)}


def _member_of(item: dict[str, Any], s: Session) -> dict[str, Any] | None:
    """The candidate case's best-matching member, while it is still in that case (else its first)."""
    candidate = item["candidate_case"]
    if candidate is None:
        return None
    member = s.get(Ticket, item["member_ticket_id"]) if item["member_ticket_id"] is not None else None
    if member is not None and member.case_id == candidate["id"]:
        return _side(member.id, s)
    return _side(candidate["tickets"][0]["id"], s) if candidate["tickets"] else None


@bp.get("/work/review/<int(max=2147483647):review_id>")
@roles(*OPERATORS)
def work_review_item(review_id: int) -> str:
    try:
        item = dedup_ops.get_review(_ctx(), review_id, scope=_scope())
    except OperationError:
        abort(404)
    with _ctx().db.read_session() as s:
        ticket, member = _side(item["ticket"]["id"] if item["ticket"] else None, s), _member_of(item, s)
        names = {x.key: x.name for x in list_systems(s)}
    weights = [abs(float(c.get("weight") or 0)) for c in item["contributions"]]
    return render_template("console/work_review_item.html", item=item, ticket=ticket, member=member, names=names,
                           max_weight=max([*weights, 1.0]), feature_labels=FEATURE_LABELS, level_labels=LEVEL_LABELS,
                           review_labels=REVIEW_LABELS, refusal=_refusal(f"review:{review_id}"))


def _review_action(review_id: int, form: str, act: Callable[[], str]) -> Response:
    _check_csrf()
    back = url_for("console.work_review_item", review_id=review_id)
    try:
        dedup_ops.get_review(_ctx(), review_id, scope=_scope())
    except OperationError:
        abort(404)
    try:
        flash(act())
    except Refused as exc:
        return _refused(f"review:{review_id}", form, exc, back)
    return redirect(back)


def _decided(review_id: int, decision: dict[str, Any]) -> str:
    """What the person reads after a review decision (the service audited it)."""
    op = decision["operation"]
    label = REVIEW_LABELS.get(decision["review"]["review_status"], "")
    if op:
        return _("复核 #%(id)s：%(result)s（操作 #%(op)s，可撤销）", id=review_id, result=label, op=op["id"])
    return _("复核 #%(id)s：%(result)s", id=review_id, result=label)


@bp.post("/work/review/<int(max=2147483647):review_id>/accept")
@roles(*OPERATORS)
def work_review_accept(review_id: int) -> Response:
    def act() -> str:
        note = _text("note", 0, 500, _("备注"))
        decision = _service("accept", _("并案"), lambda: dedup_ops.accept_review(
            _ctx(), review_id, str(g.caller["name"]), note, scope=_scope(), remote_addr=_addr()))
        return _decided(review_id, decision)

    return _review_action(review_id, "accept", act)


@bp.post("/work/review/<int(max=2147483647):review_id>/reject")
@roles(*OPERATORS)
def work_review_reject(review_id: int) -> Response:
    def act() -> str:
        note = _text("note", 0, 500, _("备注"))
        decision = _service("reject", _("判定"), lambda: dedup_ops.reject_review(
            _ctx(), review_id, str(g.caller["name"]), note, scope=_scope(), remote_addr=_addr()))
        return _decided(review_id, decision)

    return _review_action(review_id, "reject", act)


@bp.post("/work/review/<int(max=2147483647):review_id>/link")
@roles(*OPERATORS)
def work_review_link(review_id: int) -> Response:
    def act() -> str:
        number = _text("case_number", 1, 32, _("案件编号"))
        note = _text("note", 0, 500, _("备注"))
        target = _case_id_by_number(number, "case_number")
        decision = _service("case_number", _("改关联"), lambda: dedup_ops.link_review_elsewhere(
            _ctx(), review_id, target, str(g.caller["name"]), note, scope=_scope(), remote_addr=_addr()))
        return _decided(review_id, decision)

    return _review_action(review_id, "link", act)


@bp.post("/work/review/<int(max=2147483647):review_id>/split")
@roles(*OPERATORS)
def work_review_split(review_id: int) -> Response:
    def act() -> str:
        item = dedup_ops.get_review(_ctx(), review_id, scope=_scope())
        if item["ticket"] is None or item["case"] is None:
            raise Refused("split_reason", _("该工单已不在任何案件中"))
        return _split(item["case"]["id"], str(item["ticket"]["id"]), "split_reason")

    return _review_action(review_id, "split", act)


nav("console.work_cases", "案件工作台", *READERS)
nav("console.work_review", "复核队列", *OPERATORS)
