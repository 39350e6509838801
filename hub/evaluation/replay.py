"""``hub dedup eval``: replay canonical ticket JSONL (docs/dedup-jsonl.md) in time order through
the real engine — inbox, mapping, ingest, the ``hub_match_case`` matchers — in a throwaway
store, then score the cases it formed against the ``cluster`` ground truth."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from hub.config import HubConfig
from hub.context import DEDUP_PLUGIN, HubContext, build_context
from hub.crypto import generate_key
from hub.evaluation.metrics import Scores, bcubed, pairwise
from hub.evaluation.replay_source import SYSTEM_TYPE, ReplaySourcePlugin
from hub.facade import RawRecord
from hub.migrate import upgrade
from hub.models import MatchRecord, Ticket
from hub.services.inbox import Inbox
from hub.services.mapping_versions import ensure_default_mapping
from hub.services.systems import upsert_system
from mappings import load_taxonomy
from mappings.datum import to_wgs84

# a grid worker reports with the 12345 taxonomy (the short list of the reporting page)
CROSSWALK_OF = {"grid": "hotline12345"}
BATCH = 100  # records per inbox call, like a poll page


class EvalInputError(ValueError):
    """A JSONL line that does not follow docs/dedup-jsonl.md (the line number is in the message)."""


@dataclass
class EvalReport:
    tickets: int
    clusters: int
    cases: int
    pairwise: Scores
    bcubed: Scores
    seconds: float
    linked: int
    decisions: dict[str, int] = field(default_factory=dict)
    wrong_auto_links: int = 0

    @property
    def auto_links(self) -> int:
        return self.decisions.get("link", 0)

    @property
    def auto_link_precision(self) -> float:
        return 1 - self.wrong_auto_links / self.auto_links if self.auto_links else 1.0

    @property
    def review_share(self) -> float:
        return self.decisions.get("review", 0) / self.tickets if self.tickets else 0.0

    def lines(self) -> list[str]:
        per_ticket_ms = 1000 * self.seconds / self.tickets if self.tickets else 0.0
        return [
            f"tickets {self.tickets}, true clusters {self.clusters}, cases formed {self.cases}, "
            f"linked to an existing case {self.linked}",
            f"{'metric':<10} {'precision':>9} {'recall':>9} {'F1':>9}",
            *(f"{name:<10} {s.precision:>9.4f} {s.recall:>9.4f} {s.f1:>9.4f}"
              for name, s in (("pairwise", self.pairwise), ("B-cubed", self.bcubed))),
            f"decisions {dict(sorted(self.decisions.items()))}; automatic similarity links "
            f"{self.auto_links}, precision {self.auto_link_precision:.4f}; review share {self.review_share:.3%}",
            f"replay {self.seconds:.1f}s, {per_ticket_ms:.2f} ms/ticket, "
            f"{self.tickets / self.seconds if self.seconds else 0:.0f} tickets/s",
        ]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalInputError(f"line {number}: not JSON ({exc.msg})") from exc
    return rows


def prepare(row: dict[str, Any], number: int) -> dict[str, Any]:
    """One JSONL line → the replay source's canonical payload (category and point normalized)."""
    for required in ("system", "external_id", "reported_at"):
        if not row.get(required):
            raise EvalInputError(f"line {number}: {required} is required")
    system = str(row["system"])
    category = row.get("category")
    if not category:
        code = str(row.get("category_code") or "")
        category = load_taxonomy().crosswalk(CROSSWALK_OF.get(system, system)).get(code)
        if category is None:
            raise EvalInputError(f"line {number}: {system} category code {code!r} has no crosswalk entry")
    lng, lat = _point(row)
    try:
        reported = datetime.fromisoformat(str(row["reported_at"]))
    except ValueError as exc:
        raise EvalInputError(f"line {number}: reported_at is not ISO-8601") from exc
    if reported.tzinfo is None:
        raise EvalInputError(f"line {number}: reported_at has no offset")
    return {"id": f"{system}:{row['external_id']}", "system": system, "category": category,
            "category_code": str(row.get("category_code") or ""), "reported_at": reported.isoformat(),
            "title": row.get("title") or "", "description": row.get("description") or "",
            "address": row.get("address") or "", "lng": lng, "lat": lat, "phone": row.get("phone"),
            "refs": row.get("refs") or [], "_sort": reported.timestamp()}


def _point(row: dict[str, Any]) -> tuple[float | None, float | None]:
    datum = str(row.get("datum") or "wgs84")
    if datum == "epsg4549":
        if row.get("x") is None or row.get("y") is None:
            return None, None
        lng, lat = to_wgs84(datum, float(row["x"]), float(row["y"]))
        return lng, lat
    if row.get("lng") is None or row.get("lat") is None:
        return None, None
    lng, lat = to_wgs84(datum, float(row["lng"]), float(row["lat"]))
    return lng, lat


@dataclass
class _Store:
    ctx: HubContext
    inbox: Inbox


def _store(workdir: Path, database_url: str | None, extra_plugins: tuple[Any, ...],
           model_path: Path | None = None, explicit_only: bool = False) -> _Store:
    db_url = database_url or f"sqlite:///{workdir / 'eval.db'}"
    upgrade(db_url)
    config = HubConfig(database_url=db_url, broker_url="memory://", var_dir=str(workdir / "var"),
                       secret_key=generate_key(), ingest_mode="inline",
                       dedup_model=str(model_path) if model_path else "",
                       blocked_plugins=(DEDUP_PLUGIN,) if explicit_only else ())
    plugin = ReplaySourcePlugin(workdir / "replay_source.yaml")
    ctx = build_context(config, extra_plugins=(plugin, *extra_plugins))
    with ctx.db.session() as s:
        ensure_default_mapping(ctx, s, upsert_system(ctx, s, {"key": SYSTEM_TYPE, "plugin": SYSTEM_TYPE,
                                                              "name": "评估回放"}))
    return _Store(ctx, Inbox(ctx, SYSTEM_TYPE))


def replay(rows: Iterable[dict[str, Any]], *, database_url: str | None = None,
           extra_plugins: tuple[Any, ...] = (), model_path: Path | None = None,
           explicit_only: bool = False, batch: int = BATCH) -> EvalReport:
    """Replay rows in ``reported_at`` order through a fresh store; score against ``cluster``.

    Records are handed to the inbox ``batch`` at a time, as a poll page would be (one
    transaction per page); ``explicit_only`` blocks the dedup matcher (the baseline)."""
    rows = list(rows)
    prepared = sorted((prepare(r, n) for n, r in enumerate(rows, 1)), key=lambda p: p["_sort"])
    truth = {f"{r['system']}:{r['external_id']}": str(r.get("cluster", "")) for r in rows}
    with tempfile.TemporaryDirectory(prefix="gridhub-eval-") as tmp:
        store = _store(Path(tmp), database_url, extra_plugins, model_path, explicit_only)
        try:
            started = time.perf_counter()
            page: list[RawRecord] = []
            for payload in _without_sort(prepared):
                page.append(RawRecord(event_id=payload["id"], external_id=payload["id"],
                                      raw=json.dumps(payload, ensure_ascii=False)))
                if len(page) >= batch:
                    store.inbox.store_many(page)
                    page = []
            if page:
                store.inbox.store_many(page)
            seconds = time.perf_counter() - started
            with store.ctx.db.read_session() as s:
                predicted = {t.external_id: t.case_id for t in s.scalars(select(Ticket))}
                decisions = {action: count for action, count in s.execute(
                    select(MatchRecord.action, func.count()).group_by(MatchRecord.action))}
                wrong_links = _wrong_auto_links(s, truth)
        finally:
            store.ctx.close()
    linked = len(predicted) - len(set(predicted.values()))
    return EvalReport(tickets=len(rows), clusters=len(set(truth.values())), cases=len(set(predicted.values())),
                      pairwise=pairwise(predicted, truth), bcubed=bcubed(predicted, truth),
                      seconds=seconds, linked=linked, decisions=decisions, wrong_auto_links=wrong_links)


def _wrong_auto_links(s: Any, truth: dict[str, str]) -> int:
    """Automatic similarity links whose ticket shares no true cluster with the case as it stood
    when it was linked (the tickets decided before it)."""
    members: dict[int, set[str]] = {}
    wrong = 0
    for action, matcher, case_id, external_id in s.execute(
            select(MatchRecord.action, MatchRecord.matcher, MatchRecord.case_id, Ticket.external_id)
            .join(Ticket, Ticket.id == MatchRecord.ticket_id).order_by(MatchRecord.id)).all():
        cluster = truth.get(external_id, "")
        if action == "link" and matcher == "dedup" and cluster not in members.get(case_id, set()):
            wrong += 1
        members.setdefault(case_id, set()).add(cluster)
    return wrong


def _without_sort(prepared: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for payload in prepared:
        yield {k: v for k, v in payload.items() if k != "_sort"}
