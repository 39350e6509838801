"""Dedup decision latency as the store grows over time: 10k → 100k → 1M cases, SQLite and PostgreSQL.

    .venv/bin/python -m bench.dedup_speed [--sizes 10000,100000,1000000] [--database sqlite|postgresql|both]
                                          [--probe 2000] [--seed 1] [--explain]

Why this exists: blocking (``hub.dedup.blocking``) promises that the cost of one decision depends
on how many reports land in the same few cells within a time window, not on how many tickets the
store holds. This checks the promise the way a real hub grows: by **time**, at a constant rate.
A year of history does not make one area report 100× more incidents per day; it makes the tables
longer. So every store here has the scenario generator's density (≈110 tickets a day, the
default ``generate(20000, seed, days=180)``) and the size only sets how many days of history it
holds (N / 110 days: 10k ≈ 3 months, 1M ≈ 25 years).

How the store is built: the base scenario is generated once, mapped and normalized exactly as
``hub dedup eval`` ingests it (the replay source's mapping document, ``map_payload``, ingestion's
``_apply_fields`` onto a ``Ticket``, the engine's own ``normalize``), then replicated backwards in
time, 180 days per copy, with fresh external ids; each ticket becomes one case with one ticket,
its ``ticket_reference`` rows, its ``dedup_entry`` and its ``dedup_key`` rows — the same values
``DedupEngine.index`` writes (``engine_rows``), including the shared-point check, replayed in time
order in memory. Rows go in with SQLAlchemy Core ``insert()`` executemany, 10k per call, one
transaction per copy; the ``dedup_key`` indexes are dropped during the load and recreated before
measuring. PostgreSQL is then ``VACUUM ANALYZE``d, as autovacuum would after such a load.

What is timed: ``--probe`` fresh tickets (another seed, reported in the newest week of the
history, the same probes for every size), each inserted as a ``Ticket`` row and flushed in a
transaction that is rolled back afterwards; only ``engine.hub_match_case(ticket=view,
references=[], finder=StoreFinder(session))`` is timed, after 100 warm-up probes; each step of the
engine and each SQL statement is timed too, and ``--explain`` prints the plan of every query on the
probe where it was slowest. The decisions themselves should not change with the size (every store
holds more history than the widest window), except where the shared-point check — which looks at
the whole history — sees a centroid the shorter history did not yet show; the table counts both.

PostgreSQL runs in its own database ``gridhub_bench`` (created, and dropped at the end), never in
the test suite's database.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from sqlalchemy import Engine, create_engine, event, insert, make_url, text
from sqlalchemy.orm import Session

from hub.config import HubConfig
from hub.context import HubContext, build_context
from hub.crypto import SecretBox, generate_key
from hub.db import make_engine
from hub.dedup.engine import DedupEngine, _address_json, _point_key
from hub.dedup.model import load_model
from hub.dedup.normalize import NormalizedTicket
from hub.evaluation.replay import prepare
from hub.evaluation.replay_source import SYSTEM_TYPE, mapping_document
from hub.gridlayer import EMPTY as EMPTY_GRIDS
from hub.migrate import upgrade
from hub.models import Base, DedupKey, Ticket
from hub.services.cases import StoreFinder, ticket_view
from hub.services.ingest import _apply_fields
from hub.services.mapping_versions import check_document
from mappings import load_taxonomy, map_payload
from sandbox.scenario import DEFAULT_START, generate

BASE_TICKETS = 20_000
BASE_DAYS = 180  # the generator's default density: ≈110 tickets a day
PER_DAY = BASE_TICKETS / BASE_DAYS
CHUNK = 10_000  # rows per executemany call
WARMUP = 100
PROBE_DAYS = 7  # probes are reported in the newest week of the history
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_DATABASE = "gridhub_bench"
SHARED_POINT_THRESHOLD = 5  # hub.dedup.engine: distinct addresses on one point make it a centroid
DEDUP_KEY_INDEXES = ("ix_dedup_key_key_reported", "ix_dedup_key_ticket_id")


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def engine_fingerprint() -> str:
    """The dedup code measured (it changes often): a short hash of the matcher's sources."""
    root = Path(__file__).resolve().parents[1] / "hub" / "dedup"
    digest = hashlib.sha256()
    for name in ("engine.py", "blocking.py", "scoring.py", "normalize.py", "default_model.yaml"):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


def rss_mb() -> float:
    """This process's resident set now (``VmRSS``), 0 where /proc is missing."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- the tickets


@dataclass(frozen=True)
class Template:
    """One scenario ticket as ingestion stores it, to be replicated into any copy of the history.

    ``columns`` are the ``ticket`` row without id/case/timestamps; ``norm`` is the engine's
    normalization before the store-dependent shared-point check (done while loading)."""

    columns: dict[str, Any]
    payload: dict[str, Any]
    norm: NormalizedTicket
    refs: tuple[str, ...]
    fields_reported: datetime
    payload_reported: datetime
    index: int  # position in the base scenario: the same ticket gets the same case life in every copy


def _ingested(box: SecretBox, doc: Any, payload: dict[str, Any], suffix: str) -> Ticket:
    """The ``Ticket`` ingestion would write for one replay payload (its mapping, then
    ``_apply_fields``: redaction, PII removed, phone hash, sealed reporter)."""
    payload = {**payload, "id": f"{payload['id']}{suffix}"}
    fields = dict(map_payload(doc, payload).fields)
    ticket = Ticket(system_key=SYSTEM_TYPE, system_type=SYSTEM_TYPE, external_id=str(fields["external_id"]))
    raw = json.dumps(payload, ensure_ascii=False)
    # no grid layer, as in ``hub dedup eval``'s store (grids stay as the records give them)
    _apply_fields(SimpleNamespace(box=box, grids=lambda: EMPTY_GRIDS), ticket, fields, None,  # type: ignore[arg-type]
                  SimpleNamespace(payload=raw, content_type="application/json"),  # type: ignore[arg-type]
                  SimpleNamespace(id=None))  # type: ignore[arg-type]
    return ticket


def templates_of(rows: Sequence[dict[str, Any]], engine: DedupEngine, box: SecretBox,
                 suffix: str = "") -> list[Template]:
    """Map and normalize scenario rows through the hub's own code (an in-memory scratch store
    gives ``engine.normalize`` the ticket row it reads the phone hash from)."""
    doc = check_document(yaml.safe_dump(mapping_document(), allow_unicode=True, sort_keys=False))
    payloads = [{k: v for k, v in prepare(row, n).items() if k != "_sort"} for n, row in enumerate(rows, 1)]
    scratch = create_engine("sqlite://")
    Base.metadata.create_all(scratch)
    out: list[Template] = []
    with Session(scratch) as s:
        tickets = [_ingested(box, doc, p, suffix) for p in payloads]
        s.add_all(tickets)
        s.flush()
        skip = {"id", "case_id", "created_at", "updated_at"}
        for ticket, payload in zip(tickets, payloads, strict=True):
            norm = engine.normalize(s, ticket_view(ticket, payload))
            columns = {c.key: getattr(ticket, c.key) for c in Ticket.__table__.columns if c.key not in skip}
            refs = tuple(f"{r['system']}:{r['external_id']}" for r in payload.get("refs") or ()
                         if isinstance(r, dict))
            out.append(Template(columns, payload, norm, refs,
                                datetime.fromisoformat(str(ticket.fields["reported_at"])),
                                datetime.fromisoformat(str(payload["reported_at"])), len(out)))
        s.rollback()
    scratch.dispose()
    engine._normalized.clear()
    return out


def engine_rows(engine: DedupEngine, ticket_id: int, norm: NormalizedTicket
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``dedup_entry`` row and ``dedup_key`` rows ``DedupEngine.index`` files for ``norm``."""
    entry = {
        "ticket_id": ticket_id, "system_type": norm.system, "category": norm.category, "grp": norm.group,
        "reported_at": norm.reported_at, "lat": norm.lat, "lng": norm.lng,
        "location_weak": norm.location_weak or "", "address": _address_json(norm.address),
        "tokens": " ".join(sorted(norm.tokens))[:4000], "phone_hash": norm.phone_hash or "",
        "point_key": _point_key(norm.lat, norm.lng),
        "address_key": (norm.address.key or f"{norm.system}:{norm.external_id}")[:120],
    }
    keys = [{"ticket_id": ticket_id, "key": k[:160], "reported_at": norm.reported_at} for k in engine.keys_of(norm)]
    return entry, keys


class SharedPoints:
    """``DedupEngine._shared_point`` replayed in memory while loading in time order: a point where
    tickets with ≥ 5 different addresses were pinned is a centroid."""

    def __init__(self) -> None:
        self.addresses: dict[str, set[str]] = {}

    def judge(self, norm: NormalizedTicket) -> NormalizedTicket:
        if norm.lat is None or norm.location_weak == "shared_point":
            return norm
        seen = self.addresses.get(_point_key(norm.lat, norm.lng), set())
        if len(seen | {norm.address.key or f"{norm.system}:{norm.external_id}"}) >= SHARED_POINT_THRESHOLD:
            return replace(norm, location_weak="shared_point")
        return norm

    def file(self, entry: dict[str, Any]) -> None:
        seen = self.addresses.setdefault(entry["point_key"], set())
        if len(seen) < SHARED_POINT_THRESHOLD:
            seen.add(entry["address_key"])


def _resolve_hours(index: int) -> float:
    """A case's time to closure, 1–13 days, spread deterministically over the tickets."""
    return 24.0 * (1 + (index * 2_654_435_761 >> 7) % 13)


def copy_rows(engine: DedupEngine, templates: Sequence[Template], copy: int, shift: timedelta,
              first_id: int, history_end: datetime, points: SharedPoints) -> dict[str, list[dict[str, Any]]]:
    """One copy of the history (``shift`` back in time) as table rows, ids from ``first_id``.

    Each ticket is its own case; a case is closed 1–13 days after its report if that is before
    the end of the history (old cases are closed, the newest ones partly open), which is what
    the recurrence query of the engine looks at."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for offset, tpl in enumerate(templates):
        tid = first_id + offset
        ext = f"{tpl.columns['external_id']}~{copy}"
        reported = tpl.columns["reported_at"] + shift
        closed = reported + timedelta(hours=_resolve_hours(tpl.index))
        status = ("RESOLVED" if tpl.index % 3 == 0 else "CLOSED") if closed <= history_end else "IN_PROGRESS"
        closed_at = closed if status != "IN_PROGRESS" else None
        payload = {**tpl.payload, "id": ext, "reported_at": (tpl.payload_reported + shift).isoformat()}
        fields = {**tpl.columns["fields"], "external_id": ext,
                  "reported_at": (tpl.fields_reported + shift).isoformat()}
        ticket = {**tpl.columns, "id": tid, "external_id": ext, "case_id": tid, "reported_at": reported,
                  "fields": fields, "raw_payload": json.dumps(payload, ensure_ascii=False), "status": status,
                  "created_at": reported, "updated_at": closed_at or reported}
        rows["case"].append({
            "id": tid, "number": f"GB{tid:010d}", "title": ticket["title"] or ticket["description"][:60],
            "description": ticket["description"], "category": ticket["category"], "status": status,
            "lat": ticket["lat"], "lng": ticket["lng"], "address": ticket["address"],
            "district": str(fields.get("district") or ""), "street": str(fields.get("street") or ""),
            "grid_code": ticket["grid_code"], "owner_system": SYSTEM_TYPE, "department": ticket["department"],
            "deadline": None, "reported_at": reported, "closed_at": closed_at, "merged_into_id": None,
            "recurrence_of_id": None, "created_at": reported, "updated_at": closed_at or reported})
        rows["ticket"].append(ticket)
        rows["ticket_reference"].extend(
            {"ticket_id": tid, "ref_system_type": SYSTEM_TYPE, "ref_external_id": f"{ref}~{copy}",
             "relation": "same_incident"} for ref in tpl.refs)
        norm = points.judge(replace(tpl.norm, external_id=ext, reported_at=tpl.norm.reported_at + shift))
        entry, keys = engine_rows(engine, tid, norm)
        points.file(entry)
        rows["dedup_entry"].append(entry)
        rows["dedup_key"].extend(keys)
    return rows


# --------------------------------------------------------------------------- stores


@dataclass
class LoadReport:
    rows: dict[str, int]
    insert_s: float
    index_s: float
    analyze_s: float
    days: float


@contextmanager
def sqlite_store() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gridhub-speed-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def postgres_store(admin_url: str) -> Iterator[str]:
    """A fresh database ``gridhub_bench`` next to the test database, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    url = make_url(admin_url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        admin.dispose()


def _load_engine(url: str) -> Engine:
    """The hub's engine settings, plus a larger page cache and no fsync for the SQLite load only
    (the measuring context opens its own connections with the hub's settings)."""
    eng = make_engine(url)
    if eng.dialect.name == "sqlite":
        @event.listens_for(eng, "connect")
        def _bulk_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA cache_size=-524288")
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()
    return eng


TABLE_ORDER = ("case", "ticket", "ticket_reference", "dedup_entry", "dedup_key")  # parents first


def _insert_copy(eng: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """One copy of the history in one transaction, ``CHUNK`` rows per executemany."""
    tables = Base.metadata.tables
    with eng.begin() as conn:
        for name in TABLE_ORDER:
            data = rows[name]
            for i in range(0, len(data), CHUNK):
                conn.execute(insert(tables[name]), data[i:i + CHUNK])


def load(url: str, engine: DedupEngine, templates: Sequence[Template], n: int) -> LoadReport:
    """Bulk-load ``n`` cases: the newest ``n`` tickets of the base scenario replicated back in time.

    Copies are built in time order here (the shared-point state depends on it) while earlier
    copies are being inserted by worker threads (the drivers release the GIL while the database
    works): one writer on SQLite, two connections on PostgreSQL."""
    copies = math.ceil(n / len(templates))
    history_end = max(t.columns["reported_at"] for t in templates)
    eng = _load_engine(url)
    key_indexes = [ix for ix in DedupKey.__table__.indexes if ix.name in DEDUP_KEY_INDEXES]
    counts: dict[str, int] = defaultdict(int)
    points = SharedPoints()
    started = time.perf_counter()
    with eng.begin() as conn:
        for ix in key_indexes:
            ix.drop(conn)
    workers = 2 if eng.dialect.name == "postgresql" else 1
    next_id = 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-load") as pool:
        pending: deque[Future[None]] = deque()
        for copy in range(copies):
            part = templates if copy else templates[len(templates) * copies - n:]
            shift = timedelta(days=-(copies - 1 - copy) * BASE_DAYS)
            rows = copy_rows(engine, part, copy, shift, next_id, history_end, points)
            next_id += len(part)
            for name in TABLE_ORDER:
                counts[name] += len(rows[name])
            while len(pending) >= workers:
                pending.popleft().result()
            pending.append(pool.submit(_insert_copy, eng, rows))
            del rows
            if copy % 5 == 4 or copy == copies - 1:
                log(f"  copy {copy + 1}/{copies} built: {next_id - 1} tickets, {counts['dedup_key']} keys, "
                    f"{time.perf_counter() - started:.0f}s")
        while pending:
            pending.popleft().result()
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    with eng.begin() as conn:
        for ix in key_indexes:
            ix.create(conn)
        if eng.dialect.name == "postgresql":
            for table in ("case", "ticket", "ticket_reference", "dedup_key"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                  f"(SELECT max(id) FROM \"{table}\"))"))
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    if eng.dialect.name == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with eng.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    analyze_s = time.perf_counter() - started
    eng.dispose()
    return LoadReport(dict(counts), insert_s, index_s, analyze_s, n / PER_DAY)


# --------------------------------------------------------------------------- measuring


def _label(statement: str) -> str:
    """A short name for each statement a decision runs."""
    s = " ".join(statement.split())
    if "pg_advisory_xact_lock" in s:
        return "advisory lock"
    if "ticket_reference" in s:
        return "cases_referencing"
    if "DISTINCT dedup_entry.address_key" in s:
        return "shared_point"
    if "dedup_key" in s and "status IN" in s:
        return "recurrence query"
    if "dedup_key" in s:
        return "window query"
    return s[:40]


@dataclass
class Probe:
    columns: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class Measurement:
    latencies: list[float] = field(default_factory=list)  # seconds, per probe
    cpu: list[float] = field(default_factory=list)  # this thread's CPU seconds, per probe
    load_avg: float = 0.0  # the machine's 1-minute load average when measuring ended
    parts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    sql: list[dict[str, float]] = field(default_factory=list)  # per probe: seconds per statement label
    blocked: list[int] = field(default_factory=list)
    decisions: list[tuple[str, float]] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)  # the probe's location_weak as normalized
    explain: list[str] = field(default_factory=list)

    def sql_times(self, label: str) -> list[float]:
        return [per[label] for per in self.sql if label in per]


EXPLAINED = ("window query", "recurrence query", "shared_point", "cases_referencing")


class Instrument:
    """Times the engine's steps (instance-level wrappers) and every SQL statement (cursor events)
    while ``active``; nothing is recorded outside the timed call."""

    STEPS = ("normalize", "lock_blocks", "candidates", "_recurrence_candidates")

    def __init__(self, engine: DedupEngine, db_engine: Engine) -> None:
        self.engine, self.db_engine = engine, db_engine
        self.active = False
        self.steps: dict[str, float] = defaultdict(float)
        self.returned: dict[str, Any] = {}
        self.sql: list[tuple[str, float]] = []
        self.capture: list[tuple[str, Any]] | None = None
        self._started: list[float] = []
        for name in self.STEPS:
            setattr(engine, name, self._timed(name, getattr(engine, name)))
        event.listen(db_engine, "before_cursor_execute", self._before)
        event.listen(db_engine, "after_cursor_execute", self._after)

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
                self.returned[name] = result
                return result
            finally:
                self.steps[name] += time.perf_counter() - t0
        return wrapper

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        self._started.append(time.perf_counter())
        if self.capture is not None and self.active:
            self.capture.append((statement, parameters))

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        if self.active:
            self.sql.append((_label(statement), elapsed))

    def reset(self) -> None:
        self.steps.clear()
        self.returned.clear()
        self.sql.clear()

    def close(self) -> None:
        for name in self.STEPS:
            delattr(self.engine, name)
        event.remove(self.db_engine, "before_cursor_execute", self._before)
        event.remove(self.db_engine, "after_cursor_execute", self._after)


def _decide(ctx: HubContext, probe: Probe, inst: Instrument, explain: str | None = None
            ) -> tuple[float, float, dict[str, Any], list[str]]:
    """One timed decision (wall and this thread's CPU seconds): the probe's ticket row exists
    (flushed) during it, and is rolled back. With ``explain`` (a statement label) the statements
    of that label are then explained."""
    session = ctx.db.sessionmaker()
    plans: list[str] = []
    try:
        session.begin()
        ticket = Ticket(**probe.columns)
        session.add(ticket)
        session.flush()
        view = ticket_view(ticket, probe.payload)
        finder = StoreFinder(session)
        inst.reset()
        inst.capture = [] if explain is not None else None
        inst.active = True
        c0, t0 = time.thread_time(), time.perf_counter()
        decision = ctx.dedup.hub_match_case(ticket=view, references=[], finder=finder)
        elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
        inst.active = False
        if decision is None and hasattr(ctx.dedup, "undecided"):
            decision = ctx.dedup.undecided(view.id)  # "new case" is held back for later matchers
        if decision is None:
            raise RuntimeError(f"the engine made no decision for probe {view.external_id}")
        if explain is not None and inst.capture is not None:
            plans = _explain(session, [(st, pa) for st, pa in inst.capture if _label(st) == explain])
    finally:
        inst.active = False
        inst.capture = None
        session.rollback()
        session.close()
    return elapsed, cpu, dict(decision.detail) | {"reason": decision.reason}, plans


def _explain(session: Session, captured: list[tuple[str, Any]]) -> list[str]:
    """The plans of captured statements, run again with the same parameters (PostgreSQL: executed,
    with buffers; SQLite: the query plan)."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    out = []
    for statement, params in captured:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
        rows = conn.exec_driver_sql(prefix + statement, params).all()
        out.append("\n".join(str(r[0]) if postgres else f"{'  ' * (r[1] > 0)}{r[-1]}" for r in rows))
    return out


def measure(ctx: HubContext, probes: Sequence[Probe], warmup: Sequence[Probe], explain: bool) -> Measurement:
    inst = Instrument(ctx.dedup, ctx.db.engine)
    result = Measurement()
    try:
        for probe in warmup:
            _decide(ctx, probe, inst)
        gc.collect()
        for probe in probes:
            elapsed, cpu, detail, _ = _decide(ctx, probe, inst)
            result.latencies.append(elapsed)
            result.cpu.append(cpu)
            for name in Instrument.STEPS:
                result.parts[name].append(inst.steps.get(name, 0.0))
            per_label: dict[str, float] = defaultdict(float)
            for label, seconds in inst.sql:
                per_label[label] += seconds
            per_label["(all SQL)"] = sum(per_label.values())
            result.sql.append(dict(per_label))
            best = detail.get("best") or {}
            result.blocked.append(int(detail.get("blocked") or 0))
            result.decisions.append((str(detail.get("action")), round(float(best.get("probability") or 0.0), 4)))
            norm = inst.returned.get("normalize")
            result.weak.append(str(getattr(norm, "location_weak", None) or ""))
        if explain:  # each query explained on the probe where it took longest
            for label in EXPLAINED:
                times = [per.get(label, -1.0) for per in result.sql]
                worst = max(range(len(probes)), key=times.__getitem__)
                if times[worst] < 0:
                    continue
                _, _, _, plans = _decide(ctx, probes[worst], inst, explain=label)
                result.explain.extend(f"-- {label}: probe #{worst}, {1000 * times[worst]:.2f} ms in the run, "
                                      f"{result.blocked[worst]} blocked members\n{plan}" for plan in plans)
        result.load_avg = os.getloadavg()[0]
    finally:
        inst.close()
    return result


# --------------------------------------------------------------------------- report


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1), nearest rank: p99 of 2000 probes is the 20th slowest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Row:
    store: str
    size: int
    load: LoadReport
    m: Measurement
    peak_mb: float
    now_mb: float


def print_tables(rows: Sequence[Row], probes: int) -> None:
    print(f"\n## Decision latency per ticket ({probes} probes in the newest week, after {WARMUP} warm-up)\n")
    print("| store | cases stored | history (days) | p50 (ms) | p99 (ms) | decisions/s | p99 / p99(smallest) "
          "| CPU p50 / p99 (ms) | blocked members p50 / p99 | same decisions as smallest "
          "| load: insert / index / analyze (s) | RSS after measuring / peak so far (MB) | load avg |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    smallest: dict[str, Row] = {}
    for r in rows:
        base = smallest.setdefault(r.store, r)
        lat = r.m.latencies
        p99 = pct(lat, 0.99)
        differ = [i for i, (a, b) in enumerate(zip(r.m.decisions, base.m.decisions, strict=True)) if a != b]
        centroid = sum(r.m.weak[i] != base.m.weak[i] for i in differ)
        same = f"{len(lat) - len(differ)}/{len(lat)}" + (f" ({centroid} of the rest: shared-point verdict)"
                                                          if differ else "")
        print(f"| {r.store} | {r.size:,} | {r.load.days:,.0f} | {1000 * pct(lat, 0.5):.2f} | {1000 * p99:.2f} "
              f"| {len(lat) / sum(lat):.0f} | {p99 / pct(base.m.latencies, 0.99):.2f} "
              f"| {1000 * pct(r.m.cpu, 0.5):.2f} / {1000 * pct(r.m.cpu, 0.99):.2f} "
              f"| {pct(r.m.blocked, 0.5):.0f} / {pct(r.m.blocked, 0.99):.0f} | {same} "
              f"| {r.load.insert_s:.0f} / {r.load.index_s:.0f} / {r.load.analyze_s:.0f} "
              f"| {r.now_mb:.0f} / {r.peak_mb:.0f} | {r.m.load_avg:.1f} |")
    print("\n## Where the time goes (ms per decision, p50 / p99)\n")
    labels = sorted({label for r in rows for per in r.m.sql for label in per}, key=lambda s: (s.startswith("("), s))
    steps = ("normalize", "candidates", "_recurrence_candidates")
    head = [*(f"{s}()" for s in steps), *labels]
    print("| store | cases | " + " | ".join(head) + " |")
    print("| --- | ---: |" + " ---: |" * len(head))
    for r in rows:
        cells = []
        for name in steps:
            v = r.m.parts[name]
            cells.append(f"{1000 * pct(v, 0.5):.2f} / {1000 * pct(v, 0.99):.2f}")
        for label in labels:
            v = r.m.sql_times(label)
            cells.append(f"{1000 * pct(v, 0.5):.2f} / {1000 * pct(v, 0.99):.2f}" if v else "–")
        print(f"| {r.store} | {r.size:,} | " + " | ".join(cells) + " |")
    print("\n`candidates()` includes `_recurrence_candidates()`; SQL columns are the time inside the DBAPI "
          "`execute` (on SQLite rows stepped after the first are fetched outside it). CPU is this thread's: "
          "on SQLite nearly the whole decision, on PostgreSQL without the server's share; the load average "
          "shows whether other work shared the machine's cores.")


# --------------------------------------------------------------------------- main


def _context(url: str, workdir: Path, secret: str) -> HubContext:
    upgrade(url)
    config = HubConfig(database_url=url, broker_url="memory://", var_dir=str(workdir / "var"),
                       secret_key=secret, ingest_mode="inline")
    return build_context(config)


def run_store(kind: str, sizes: Sequence[int], templates: Sequence[Template], probes: Sequence[Probe],
              warmup: Sequence[Probe], secret: str, prep: DedupEngine, pg_url: str, explain: bool,
              done: Callable[[Row], None]) -> None:
    for size in sizes:
        log(f"{kind}: loading {size:,} cases")
        store = sqlite_store() if kind == "sqlite" else postgres_store(pg_url)
        with store as url, tempfile.TemporaryDirectory(prefix="gridhub-speed-var-") as var:
            upgrade(url)
            report = load(url, prep, templates, size)
            log(f"{kind}: {size:,} loaded in {report.insert_s:.0f}s + index {report.index_s:.0f}s "
                f"+ analyze {report.analyze_s:.0f}s; rows {report.rows}")
            ctx = _context(url, Path(var), secret)
            try:
                log(f"{kind}: measuring {len(probes)} probes at {size:,}")
                m = measure(ctx, probes, warmup, explain)
            finally:
                ctx.close()
            row = Row(kind, size, report, m, peak_rss_mb(), rss_mb())
            log(f"{kind} {size:,}: p50 {1000 * pct(m.latencies, 0.5):.2f} ms, p99 {1000 * pct(m.latencies, 0.99):.2f}"
                f" ms, RSS {row.now_mb:.0f} MB, peak {row.peak_mb:.0f} MB")
            for plan in m.explain:
                print(f"\nEXPLAIN, {kind} {size:,}:\n```\n{plan}\n```", flush=True)
            done(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dedup_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="cases stored, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--probe", type=int, default=2000, help="timed decisions per size (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="scenario seed (probes use seed + 1)")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL server to use; the bench creates and drops its own database "
                             f"{BENCH_DATABASE} there")
    parser.add_argument("--explain", action="store_true",
                        help="print each query's plan, on the probe where it was slowest")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)

    secret = generate_key()
    box = SecretBox(secret)
    prep = DedupEngine(load_model(None), load_taxonomy(), box.keyed_hash)
    started = time.perf_counter()
    templates = templates_of(generate(BASE_TICKETS, args.seed, days=BASE_DAYS), prep, box)
    end = DEFAULT_START + timedelta(days=BASE_DAYS)
    probe_rows = generate(WARMUP + args.probe, args.seed + 1, start=end - timedelta(days=PROBE_DAYS),
                          days=PROBE_DAYS)
    probe_templates = templates_of(probe_rows, prep, box, suffix="~probe")
    probes = [Probe(t.columns, t.payload) for t in probe_templates]
    log(f"base scenario {len(templates)} tickets and {len(probes)} probes prepared in "
        f"{time.perf_counter() - started:.0f}s")

    rows: list[Row] = []
    for kind in kinds:
        run_store(kind, sizes, templates, probes[WARMUP:], probes[:WARMUP], secret, prep, args.pg_url,
                  args.explain, rows.append)
    print(f"\nhub/dedup sources: {engine_fingerprint()} (sha256 of engine, blocking, scoring, normalize, model)")
    print_tables(rows, args.probe)
    largest = max(sizes)
    print(f"\nPeak RSS of this process after the {largest:,} measurement(s): {peak_rss_mb():.0f} MB "
          "(SQLite runs in-process; PostgreSQL's server memory is not included).")
    for kind in kinds:
        mine = [r for r in rows if r.store == kind]
        if len(mine) > 1:
            ratio = pct(mine[-1].m.latencies, 0.99) / pct(mine[0].m.latencies, 0.99)
            verdict = "meets" if ratio <= 1.5 else "MISSES"
            print(f"{kind}: p99 at {mine[-1].size:,} is {ratio:.2f}× p99 at {mine[0].size:,} "
                  f"({verdict} the ≤ 1.5× requirement)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
