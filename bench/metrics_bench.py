"""Metrics at scale: fill a store with N cases (default 1 M) spread over two years, 32 categories,
four department systems and 300 grids in 12 streets, build the rollup, then time the metrics API
and the console page for typical questions.

    python -m bench.metrics_bench                      # 1 M cases in a temporary SQLite file
    python -m bench.metrics_bench --cases 20000        # a quick run
    python -m bench.metrics_bench --database-url postgresql+psycopg://...   # an EMPTY database

Cases and tickets go in through SQLAlchemy Core executemany in chunks (the ORM would take an
hour). Prints the fill and rollup build times, the rollup's row count, and p50/p95 per question.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.crypto import generate_key
from hub.migrate import upgrade
from hub.models import Case, Ticket
from hub.services import accounts
from hub.services.metrics import refresh, rollup_size
from hub.services.tokens import create_token
from hub.services.workdays import local_day
from mappings import load_taxonomy

CHUNK = 20000
DAYS = 730
STREETS = [f"310104{n:03d}" for n in range(1, 13)]
GRIDS = [f"{street}{c:03d}{g:03d}" for street in STREETS for c in range(1, 6) for g in range(1, 6)]
SYSTEMS = {"city_management": ["城管执法中队", "市容环卫所", "市政养护所"],
           "hotline12345": ["区市容局", "区住建委", "区市场监管局"],
           "law_enforcement": ["综合执法一队", "综合执法二队", "综合执法三队"],
           "police_patrol": ["斜土路派出所", "枫林路派出所", "交警支队"]}
PASSWORD = "bench-password-42"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _cases(n: int, seed: int, end: datetime) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Chunks of (case rows, ticket rows), ids given so tickets and merges can point at them."""
    rnd = random.Random(seed)
    categories = sorted(load_taxonomy().codes)
    weights = [1.0 / (i + 1) for i in range(len(categories))]  # a few categories are most of the volume
    start = end - timedelta(days=DAYS)
    owners = list(SYSTEMS)
    ticket_id = 0
    for base in range(0, n, CHUNK):
        cases, tickets = [], []
        for case_id in range(base + 1, min(n, base + CHUNK) + 1):
            reported = start + timedelta(seconds=rnd.randrange(DAYS * 86400))
            handling = timedelta(seconds=int(rnd.lognormvariate(10.5, 1.2)))
            closed = reported + handling if reported + handling < end and rnd.random() < 0.93 else None
            owner = rnd.choice(owners)
            merged = case_id - 1 if case_id > base + 1 and rnd.random() < 0.01 else None
            cases.append({"id": case_id, "number": f"B{case_id:09d}", "category": rnd.choices(categories, weights)[0],
                          "status": "CANCELLED" if merged else ("CLOSED" if closed else "IN_PROGRESS"),
                          "grid_code": rnd.choice(GRIDS), "owner_system": owner,
                          "department": rnd.choice(SYSTEMS[owner]), "reported_at": reported, "closed_at": closed,
                          "due_at": reported + timedelta(hours=rnd.choice([4, 24, 72, 168])),
                          "merged_into_id": merged, "created_at": reported, "updated_at": closed or reported})
            for extra in range(1 + (rnd.random() < 0.15)):
                ticket_id += 1
                tickets.append({"id": ticket_id, "system_key": owners[extra], "system_type": owners[extra],
                                "external_id": f"E{case_id}-{extra}", "case_id": case_id, "status_code": "1",
                                "status": "IN_PROGRESS", "category": "other", "reported_at": reported})
        yield cases, tickets


def fill(ctx: HubContext, n: int, seed: int, end: datetime) -> tuple[float, int]:
    """Seconds taken, and how many of the cases were made merged-away."""
    started, merged = time.perf_counter(), 0
    for cases, tickets in _cases(n, seed, end):
        merged += sum(1 for c in cases if c["merged_into_id"])
        with ctx.db.engine.begin() as conn:
            conn.execute(insert(Case.__table__), cases)
            conn.execute(insert(Ticket.__table__), tickets)
    return time.perf_counter() - started, merged


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _console(ctx: HubContext, app: Any) -> Any:
    with ctx.db.session() as s:
        accounts.create_user(s, username="bench", password=PASSWORD, role="admin", scope="", actor="bench")
    client = app.test_client()
    found = _CSRF.search(client.get("/console/login").get_data(as_text=True))
    assert found is not None
    client.post("/console/login", data={"username": "bench", "password": PASSWORD, "csrf": found.group(1)})
    return client


def questions(today: date) -> list[tuple[str, str]]:
    month_ago, year_ago = (today - timedelta(days=29)).isoformat(), (today - timedelta(days=364)).isoformat()
    t = today.isoformat()
    return [("API 30 days by category", f"/api/v1/metrics?from={month_ago}&to={t}&by=category"),
            ("API 12 months by month", f"/api/v1/metrics?from={year_ago}&to={t}&by=month"),
            ("API 30 days by grid", f"/api/v1/metrics?from={month_ago}&to={t}&by=grid"),
            ("API 12 months by grid", f"/api/v1/metrics?from={year_ago}&to={t}&by=grid"),
            ("API 12 months by category, one street", f"/api/v1/metrics?from={year_ago}&to={t}&by=category"
                                                      f"&_scope={STREETS[0]}"),
            ("CSV 12 months by department", f"/api/v1/metrics.csv?from={year_ago}&to={t}&by=department"),
            ("console 30 days by category", f"/console/metrics?from={month_ago}&to={t}&by=category"),
            ("console 12 months by month", f"/console/metrics?from={year_ago}&to={t}&by=month")]


def run(cases: int, database_url: str, repeat: int, seed: int, workdir: Path) -> dict[str, Any]:
    url = database_url or f"sqlite:///{workdir / 'metrics_bench.db'}"
    upgrade(url)
    ctx = build_context(HubConfig(database_url=url, broker_url="memory://", var_dir=str(workdir / "var"),
                                  secret_key=generate_key(), ingest_mode="inline"))
    try:
        end = datetime.now(UTC).replace(microsecond=0)
        fill_s, merged = fill(ctx, cases, seed, end)
        result: dict[str, Any] = {"cases": cases, "fill_s": fill_s, "merged": merged}
        started = time.perf_counter()
        built = refresh(ctx, full=True)
        result["rollup_s"], result["rollup_days"] = time.perf_counter() - started, built.days
        started = time.perf_counter()
        refresh(ctx)
        result["incremental_s"] = time.perf_counter() - started
        with ctx.db.read_session() as s:
            result["rollup_rows"] = rollup_size(s)
        app = create_app(context=ctx)
        with ctx.db.session() as s:
            tokens = {"": create_token(s, "bench", "admin", ""), STREETS[0]: create_token(s, "bench-street",
                                                                                          "operator", STREETS[0])}
        api, console = app.test_client(), _console(ctx, app)
        timings: dict[str, tuple[float, float]] = {}
        for name, path in questions(local_day(end)):
            scope = path.split("&_scope=")[1] if "&_scope=" in path else ""
            path = path.split("&_scope=")[0]
            client = console if path.startswith("/console") else api
            headers = {} if client is console else {"Authorization": f"Bearer {tokens[scope]}"}
            assert client.get(path, headers=headers).status_code == 200, path  # warm
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                answer = client.get(path, headers=headers)
                samples.append((time.perf_counter() - t0) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            timings[name] = (statistics.median(samples), percentile(samples, 0.95))
        result["timings"] = timings
        everything = (f"/api/v1/metrics?from={(local_day(end) - timedelta(days=DAYS + 1)).isoformat()}"
                      f"&to={local_day(end).isoformat()}&by=month")
        result["filed_total"] = api.get(everything, headers={"Authorization": f"Bearer {tokens['']}"}).json[
            "totals"]["filed"]
        return result
    finally:
        ctx.close()


def report(result: dict[str, Any]) -> str:
    lines = [f"cases: {result['cases']:,}   fill: {result['fill_s']:.1f} s   rollup build: {result['rollup_s']:.1f} s "
             f"({result['rollup_days']} days, {result['rollup_rows']:,} rows)   incremental refresh: "
             f"{result['incremental_s'] * 1000:.0f} ms", f"{'question':42} {'p50 ms':>8} {'p95 ms':>8}"]
    for name, (p50, p95) in result["timings"].items():
        lines.append(f"{name:42} {p50:8.1f} {p95:8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="an empty PostgreSQL database (default: SQLite in a "
                                                           "temporary directory)")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as tmp:
        result = run(args.cases, args.database_url, args.repeat, args.seed, Path(tmp))
    print(report(result))
    return result


if __name__ == "__main__":
    main()
