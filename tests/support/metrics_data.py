"""Cases for the metrics tests: a deterministic helper and a random spread over streets, grids,
categories and departments (some closed, late, merged away, with several tickets)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.models import Case, Ticket

STREET_A = "310104001"
STREET_B = "310104002"
GRIDS = [f"{street}{community:03d}{grid:03d}" for street in (STREET_A, STREET_B) for community in (1, 2)
         for grid in (1, 2, 3)]
CATEGORIES = ["street_vending", "garbage_exposed", "illegal_construction", "group_rental", "small_ads"]
DEPARTMENTS = [("city_management", "城管执法中队"), ("hotline12345", "区市容局"), ("law_enforcement", ""), ("", "")]
_numbers = iter(range(1, 10**9))


def add_case(s: Session, *, reported: datetime, closed: datetime | None = None, due: datetime | None = None,
             grid: str = GRIDS[0], category: str = "street_vending", owner: str = "city_management",
             department: str = "城管执法中队", tickets: int = 1, status: str | None = None,
             merged_into: int | None = None) -> Case:
    n = next(_numbers)
    case = Case(number=f"M{n:08d}", category=category, status=status or ("CLOSED" if closed else "IN_PROGRESS"),
                grid_code=grid, owner_system=owner, department=department, reported_at=reported, closed_at=closed,
                due_at=due, merged_into_id=merged_into)
    s.add(case)
    s.flush()
    for i in range(tickets):
        s.add(Ticket(system_key=f"sys{i}", system_type="fakesys", external_id=f"T{n}-{i}", case_id=case.id,
                     status_code="1", status=case.status, category=category, reported_at=reported))
    s.flush()
    return case


def seed_random(ctx: HubContext, n: int, *, seed: int = 7, start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
                days: int = 75) -> list[dict[str, Any]]:
    """``n`` random cases filed over ``days`` from ``start``; returns what was made."""
    rnd = random.Random(seed)
    made: list[dict[str, Any]] = []
    with ctx.db.session() as s:
        kept: list[int] = []
        for _ in range(n):
            reported = start + timedelta(seconds=rnd.randrange(days * 86400))
            closed = reported + timedelta(seconds=int(rnd.expovariate(1 / 200000))) if rnd.random() < 0.7 else None
            due = reported + timedelta(hours=rnd.choice([4, 24, 72, 168])) if rnd.random() < 0.8 else None
            owner, dept = rnd.choice(DEPARTMENTS)
            merged = rnd.choice(kept) if kept and rnd.random() < 0.05 else None
            case = add_case(s, reported=reported, closed=closed, due=due, grid=rnd.choice(GRIDS),
                            category=rnd.choice(CATEGORIES), owner=owner, department=dept,
                            tickets=rnd.choice([1, 1, 1, 2, 3]), merged_into=merged,
                            status="CANCELLED" if merged else None)
            if merged is None:
                kept.append(case.id)
            made.append({"id": case.id, "merged": merged is not None})
    return made
