"""Centre metrics: cases filed and closed, closure and on-time rates, handling time (average, p90),
entries saved, by category, department, grid, street and period, read from a rollup.

**What a figure means.** Every figure belongs to the day a case was *filed* (its ``reported_at``,
as an Asia/Shanghai date): "closed" in a period is how many of the cases filed in it are closed now
(``closed_at`` set: 已处置 or 已结案), so the closure rate (closed / filed) is never above 100 %.
On time: closed no later than the hub's handling deadline (``due_at``), among the closed cases
that had one. Handling time: working seconds (9:00–18:00 on the working calendar,
``hub.services.workdays``) from report to closure, the clock the deadlines are set on. Entries
saved: tickets linked to a case beyond its first, i.e. reports nobody had to type in again.
A case merged into another (``merged_into_id``) is not a case; its tickets count for the case
they went to.

**The rollup** (``hub.models.metrics``): one row per day × street × (category | department | grid)
and the same per month. ``refresh`` recomputes only the filing days of cases updated since its
watermark (minus ``OVERLAP``, for transactions that committed after a later one), deleting and
rewriting those days and their month, one month per transaction, and then moves the watermark:
running it twice changes nothing, a crash leaves the old watermark, so the next run redoes the
same days. A case whose first report moves to another day (a ticket with an earlier report
linked late) leaves a ``report_day_moved`` line on its timeline, and the refresh rebuilds the day
it left as well. ``refresh(full=True)`` (``hub metrics refresh --full``) rebuilds everything.

A jurisdiction finer than a street (a community operator) reads the grid rows, or for category and
department the cases themselves (a community's cases are few).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, literal, or_, select
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.models import (
    BUCKET_COLUMNS,
    HANDLING_BUCKETS,
    Case,
    CaseEvent,
    MetricsRollup,
    MetricsWatermark,
    Ticket,
    utcnow,
)
from hub.services.cases import REPORT_DAY_MOVED
from hub.services.workdays import DAY_SECONDS, SHANGHAI, WORK_START, WorkCalendar, local_day
from mappings import load_taxonomy

log = logging.getLogger(__name__)

DIMS = ("category", "department", "grid")
BY = ("category", "department", "grid", "street", "day", "week", "month")
STREET_DIGITS = 9
WATERMARK = "rollup"
OVERLAP = timedelta(minutes=5)
UNKNOWN = "—"


@dataclass
class Counts:
    """Additive figures of a set of cases, and what is derived from them."""

    filed: int = 0
    closed: int = 0
    closed_due: int = 0
    on_time: int = 0
    handling_s: int = 0
    entries_saved: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_COLUMNS))

    def add(self, other: Counts) -> None:
        self.filed += other.filed
        self.closed += other.closed
        self.closed_due += other.closed_due
        self.on_time += other.on_time
        self.handling_s += other.handling_s
        self.entries_saved += other.entries_saved
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    @property
    def closure_rate(self) -> float | None:
        return self.closed / self.filed if self.filed else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.closed_due if self.closed_due else None

    @property
    def avg_handling_s(self) -> float | None:
        return self.handling_s / self.closed if self.closed else None

    @property
    def p90_handling_s(self) -> float | None:
        return quantile(self.buckets, 0.9)

    def as_dict(self) -> dict[str, Any]:
        return {"filed": self.filed, "closed": self.closed, "closure_rate": self.closure_rate,
                "closed_with_deadline": self.closed_due, "on_time": self.on_time, "on_time_rate": self.on_time_rate,
                "avg_handling_s": self.avg_handling_s, "p90_handling_s": self.p90_handling_s,
                "entries_saved": self.entries_saved}


def bucket_of(seconds: float) -> int:
    for i, bound in enumerate(HANDLING_BUCKETS):
        if seconds <= bound:
            return i
    return len(HANDLING_BUCKETS)


def quantile(buckets: list[int], q: float) -> float | None:
    """The ``q`` quantile of a bucketed histogram, interpolated inside its bucket (the open last
    bucket answers its lower bound: "more than 40 working days")."""
    n = sum(buckets)
    if n == 0:
        return None
    target, seen = q * n, 0
    for i, count in enumerate(buckets):
        if count and seen + count >= target:
            lo = float(HANDLING_BUCKETS[i - 1]) if i else 0.0
            if i == len(HANDLING_BUCKETS):
                return lo
            return lo + (HANDLING_BUCKETS[i] - lo) * (target - seen) / count
        seen += count
    return float(HANDLING_BUCKETS[-1])  # pragma: no cover - the loop always reaches the target


class WorkClock:
    """Working seconds between two instants in O(1): a running total of working seconds at each
    day's start, so ``between(a, b) == WorkCalendar.working_seconds_between(a, b)`` without the
    day-by-day walk (a million cases are summed in a rebuild)."""

    def __init__(self, cal: WorkCalendar) -> None:
        self.cal = cal
        self._origin: date | None = None
        self._cum: list[float] = []

    def _day_start(self, d: date) -> float:
        if self._origin is None or d < self._origin:
            self._origin, self._cum = d - timedelta(days=62), [0.0]
        i = (d - self._origin).days
        while len(self._cum) <= i:
            prev = self._origin + timedelta(days=len(self._cum) - 1)
            self._cum.append(self._cum[-1] + (DAY_SECONDS if self.cal.is_workday(prev) else 0))
        return self._cum[i]

    def _at(self, moment: datetime) -> float:
        local = moment.astimezone(SHANGHAI)
        d = local.date()
        within = 0.0
        if self.cal.is_workday(d):
            since = (local - datetime.combine(d, WORK_START, SHANGHAI)).total_seconds()
            within = min(max(since, 0.0), float(DAY_SECONDS))
        return self._day_start(d) + within

    def between(self, a: datetime, b: datetime) -> float:
        if b <= a:
            return 0.0
        start = self._at(a)  # may move the origin; b > a never does after it
        return max(0.0, self._at(b) - start)


def day_start(d: date) -> datetime:
    """The instant (UTC) a local day begins."""
    return datetime.combine(d, time(0), SHANGHAI).astimezone(UTC)


def department_of(department: str, owner_system: str) -> str:
    """The department a case is counted under: the unit holding it, else the system that owns it."""
    return department or owner_system or ""


Key = tuple[date, str, str, str]  # filing day, street, dimension, value


def _facts(first: datetime, end: datetime, *conditions: ColumnElement[bool]) -> Select[Any]:
    tickets = select(func.count(Ticket.id)).where(Ticket.case_id == Case.id).correlate(Case).scalar_subquery()
    return (select(Case.reported_at, Case.closed_at, Case.due_at, Case.category, Case.department,
                   Case.owner_system, Case.grid_code, tickets)
            .where(Case.merged_into_id.is_(None), Case.reported_at >= first, Case.reported_at < end, *conditions))


def aggregate(rows: Iterable[Any], clock: WorkClock, dims: tuple[str, ...] = DIMS) -> dict[Key, Counts]:
    """Case facts (``_facts`` rows) → counts per filing day, street and dimension value."""
    out: dict[Key, Counts] = defaultdict(Counts)
    for reported_at, closed_at, due_at, category, department, owner, grid, tickets in rows:
        one = Counts(filed=1, entries_saved=max(0, int(tickets or 0) - 1))
        if closed_at is not None:
            seconds = int(clock.between(reported_at, closed_at))
            one.closed, one.handling_s = 1, seconds
            one.buckets[bucket_of(seconds)] = 1
            if due_at is not None:
                one.closed_due = 1
                one.on_time = int(closed_at <= due_at)
        day, street = local_day(reported_at), grid[:STREET_DIGITS]
        values = {"category": category, "department": department_of(department, owner), "grid": grid}
        for dim in dims:
            out[(day, street, dim, values[dim])].add(one)
    return out


# --- the rollup --------------------------------------------------------------------------------

@dataclass
class RefreshResult:
    days: int
    rows: int
    full: bool
    watermark: datetime


def _watermark(ctx: HubContext, session: Session) -> MetricsWatermark:
    """The watermark row, locked: two refreshes at once take turns (SQLite's writer lock does the same)."""
    q = select(MetricsWatermark).where(MetricsWatermark.name == WATERMARK)
    if not ctx.db.is_sqlite:
        q = q.with_for_update()
    mark = session.scalar(q)
    if mark is None:
        mark = MetricsWatermark(name=WATERMARK, at=None, days=0)
        session.add(mark)
        session.flush()
    return mark


def _runs(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Sorted days → runs of consecutive days (first, last), at most a month long."""
    run: list[date] = []
    for d in sorted(set(days)):
        if run and (d - run[-1] != timedelta(days=1) or d.month != run[0].month):
            yield run[0], run[-1]
            run = []
        run.append(d)
    if run:
        yield run[0], run[-1]


def _row(grain: str, key: Key, c: Counts) -> dict[str, Any]:
    day, street, dim, value = key
    row: dict[str, Any] = {"grain": grain, "dim": dim, "day": day, "street": street, "key": value[:200],
                           "filed": c.filed, "closed": c.closed, "closed_due": c.closed_due, "on_time": c.on_time,
                           "handling_s": c.handling_s, "entries_saved": c.entries_saved}
    row.update(zip(BUCKET_COLUMNS, c.buckets, strict=True))
    return row


def _rebuild_days(session: Session, clock: WorkClock, first: date, last: date) -> int:
    session.execute(delete(MetricsRollup).where(MetricsRollup.grain == "d", MetricsRollup.day >= first,
                                                MetricsRollup.day <= last))
    counts = aggregate(session.execute(_facts(day_start(first), day_start(last + timedelta(days=1)))), clock)
    rows = [_row("d", key, c) for key, c in counts.items()]
    if rows:
        session.execute(insert(MetricsRollup), rows)
    return len(rows)


def _month(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _rebuild_month(session: Session, month: date) -> None:
    r = MetricsRollup
    session.execute(delete(r).where(r.grain == "m", r.day == month))
    sums = [func.sum(getattr(r, c)) for c in ("filed", "closed", "closed_due", "on_time", "handling_s",
                                              "entries_saved", *BUCKET_COLUMNS)]
    source = (select(literal("m"), r.dim, literal(month), r.street, r.key, *sums)
              .where(r.grain == "d", r.day >= month, r.day < _next_month(month))
              .group_by(r.dim, r.street, r.key))
    session.execute(insert(r).from_select(["grain", "dim", "day", "street", "key", "filed", "closed", "closed_due",
                                           "on_time", "handling_s", "entries_saved", *BUCKET_COLUMNS], source))


def refresh(ctx: HubContext, *, full: bool = False, now: datetime | None = None) -> RefreshResult:
    """Bring the rollup up to date (see the module docstring); idempotent. Each month is rewritten
    in its own short transaction holding the watermark's lock (a first build at 1 M cases must not
    hold SQLite's writer lock for a minute), the watermark moves only when every month is done."""
    started = now or utcnow()
    with ctx.db.read_session() as s:
        mark = s.scalar(select(MetricsWatermark).where(MetricsWatermark.name == WATERMARK))
        since = mark.at if mark is not None else None
        full = full or since is None
        if full:
            lo, hi = s.execute(select(func.min(Case.reported_at), func.max(Case.reported_at))).one()
            days: set[date] = set()
            if lo is not None and hi is not None:
                d, end = local_day(lo), local_day(hi)
                while d <= end:
                    days.add(d)
                    d += timedelta(days=1)
        else:
            assert since is not None
            changed = s.scalars(select(Case.reported_at).where(Case.updated_at >= since - OVERLAP))
            days = {local_day(r) for r in changed}
            # a case whose first report moved to another day (an earlier report linked late) left
            # its old day too
            for detail in s.scalars(select(CaseEvent.detail).where(CaseEvent.kind == REPORT_DAY_MOVED,
                                                                   CaseEvent.at >= since - OVERLAP)):
                moved_from = (detail or {}).get("from")
                if isinstance(moved_from, str):
                    days.add(local_day(datetime.fromisoformat(moved_from)))
        clock = WorkClock(WorkCalendar.load(s))
    rows = 0
    by_month: dict[date, list[date]] = defaultdict(list)
    for d in days:
        by_month[_month(d)].append(d)
    for month in sorted(by_month):
        with ctx.db.session() as s:
            _watermark(ctx, s)  # two refreshes at once take turns month by month
            for first, last in _runs(by_month[month]):
                rows += _rebuild_days(s, clock, first, last)
            _rebuild_month(s, month)
    with ctx.db.session() as s:
        mark = _watermark(ctx, s)
        if full:  # rows outside the filing days of today's cases (the store was emptied or rewritten)
            r = MetricsRollup
            if days:
                first, last = min(days), max(days)
                s.execute(delete(r).where(or_(and_(r.grain == "d", or_(r.day < first, r.day > last)),
                                              and_(r.grain == "m", or_(r.day < _month(first),
                                                                       r.day > _month(last))))))
            else:
                s.execute(delete(r))
        mark.at, mark.days, mark.finished_at = started, len(days), utcnow()
    return RefreshResult(days=len(days), rows=rows, full=full, watermark=started)


def refresh_quietly(ctx: HubContext) -> None:
    """For the poller's loop: a failed refresh is logged and retried next time."""
    try:
        r = refresh(ctx)
        if r.days:
            log.info("metrics rollup: %d day(s) recomputed%s", r.days, " (full rebuild)" if r.full else "")
    except Exception:
        log.exception("metrics rollup refresh")


def rollup_size(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(MetricsRollup)) or 0)


# --- questions ---------------------------------------------------------------------------------

@dataclass
class Report:
    first: date
    last: date
    by: str
    totals: Counts
    rows: list[tuple[str, str, Counts]]  # (key, label, counts)
    live: bool = False  # answered from the cases, not the rollup


def label_of(by: str, key: str) -> str:
    if by == "category":
        taxonomy = load_taxonomy()
        return taxonomy.name_of(key) if key in taxonomy.codes else key
    return key or UNKNOWN


def _period_key(by: str, d: date) -> str:
    if by == "week":
        monday = d - timedelta(days=d.weekday())
        return monday.isoformat()
    if by == "month":
        return d.strftime("%Y-%m")
    return d.isoformat()


def _segments(first: date, last: date, days_only: bool) -> list[tuple[str, date, date]]:
    """[first, last] as rollup reads: whole months from month rows, the edges from day rows."""
    if days_only:
        return [("d", first, last)]
    out: list[tuple[str, date, date]] = []
    m = _month(first)
    whole_first = m if m == first else _next_month(m)
    whole_end = _month(last + timedelta(days=1))  # first month not whole
    if whole_first >= whole_end:
        return [("d", first, last)]
    if first < whole_first:
        out.append(("d", first, whole_first - timedelta(days=1)))
    out.append(("m", whole_first, whole_end - timedelta(days=1)))
    if whole_end <= last:
        out.append(("d", whole_end, last))
    return out


def _from_rollup(session: Session, first: date, last: date, by: str, scope: str) -> dict[str, Counts]:
    r = MetricsRollup
    fine = len(scope) > STREET_DIGITS
    # for periods and streets, a dimension every case is in once: departments are the fewest rows,
    # grids the only ones finer than a street
    dim = by if by in DIMS else "grid" if fine else "department"
    group = {"category": r.key, "department": r.key, "grid": r.key, "street": r.street}.get(by, r.day)
    sums = [func.sum(getattr(r, c)) for c in ("filed", "closed", "closed_due", "on_time", "handling_s",
                                              "entries_saved", *BUCKET_COLUMNS)]
    out: dict[str, Counts] = defaultdict(Counts)
    for grain, lo, hi in _segments(first, last, days_only=by in ("day", "week")):
        q = select(group, *sums).where(r.grain == grain, r.dim == dim, r.day >= lo, r.day <= hi)
        if scope:
            q = q.where(r.street.startswith(scope[:STREET_DIGITS]))
            if fine:
                q = q.where(r.key.startswith(scope))
        for value, filed, closed, due, on_time, handling, saved, *buckets in session.execute(q.group_by(group)):
            key = _period_key(by, value) if isinstance(value, date) else str(value)
            out[key].add(Counts(int(filed or 0), int(closed or 0), int(due or 0), int(on_time or 0),
                                int(handling or 0), int(saved or 0), [int(b or 0) for b in buckets]))
    return out


def live_counts(session: Session, first: date, last: date, by: str, scope: str) -> dict[str, Counts]:
    """The same figures computed from the cases themselves (fine jurisdictions; the tests' reference)."""
    conditions = [Case.grid_code.startswith(scope)] if scope else []
    dim = by if by in DIMS else "category"
    counts = aggregate(session.execute(_facts(day_start(first), day_start(last + timedelta(days=1)), *conditions)),
                       WorkClock(WorkCalendar.load(session)), dims=(dim,))
    out: dict[str, Counts] = defaultdict(Counts)
    for (day, street, _dim, value), c in counts.items():
        key = value if by in DIMS else street if by == "street" else _period_key(by, day)
        out[key].add(c)
    return out


def report(session: Session, first: date, last: date, by: str, scope: str = "") -> Report:
    """Figures of the cases filed from ``first`` to ``last`` (local dates, inclusive) in ``scope``
    (a grid-code prefix; "" = everything), one row per value of ``by``. ValueError for a bad
    question (unknown ``by``, ``last`` before ``first``). A long period is cheap: whole months
    are read from the month rows."""
    if by not in BY:
        raise ValueError(f"by: one of {', '.join(BY)}")
    if last < first:
        raise ValueError("to: must not be before from")
    live = len(scope) > STREET_DIGITS and by in ("category", "department")
    counts = live_counts(session, first, last, by, scope) if live else _from_rollup(session, first, last, by, scope)
    totals = Counts()
    for c in counts.values():
        totals.add(c)
    periods = by in ("day", "week", "month")
    keys = sorted(counts) if periods else sorted(counts, key=lambda k: (-counts[k].filed, k))
    return Report(first, last, by, totals, [(k, label_of(by, k), counts[k]) for k in keys], live=live)


def last_refresh(session: Session) -> MetricsWatermark | None:
    return session.get(MetricsWatermark, WATERMARK)
