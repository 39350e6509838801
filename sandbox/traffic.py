"""Traffic generator: plays realistic incidents through the simulators' control endpoints.

Each incident has a true spot (sandbox.geo) and a canonical kind (sandbox.traffic_kinds) and
reaches 1–4 systems: 12345 callers (often two or three for one incident), a police linkage
incident, a 数字城管 case by its own inspector or the hotline's own transfer (``source`` 03,
``externalNo`` = the 12345 ``gdbh``), a 综合执法 case from its own patrol. Later the departments
move their records along (police 02→…→05/06, 数字城管 02→03→04…, 综合执法 HC→LA) and the hotline
calls citizens back. What was reported where is kept as ground truth (``incidents``,
``dump_truth``) so the hub's dedup can be scored.

Time: ``rate_per_min`` counts incidents per minute of the generator's clock; the story delays
between channels and life-cycle steps (minutes in reality) are divided by ``time_scale``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from sandbox import geo
from sandbox import traffic_reports as reports
from sandbox.traffic_kinds import KINDS, Kind

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Action = Callable[[], None]

SYSTEMS = ("hotline12345", "police_patrol", "city_management", "law_enforcement")
# Each system's clock is off by a few minutes (seconds, drawn once per generator).
CLOCK_SKEW_S: dict[str, tuple[float, float]] = {
    "hotline12345": (-60, 30), "police_patrol": (-30, 90),
    "city_management": (-180, 60), "law_enforcement": (-120, 120),
}
ID_KEYS = {"hotline12345": "gdbh", "police_patrol": "JJDBH",
           "city_management": "caseId", "law_enforcement": "ClueNo"}
STATUS_KEYS = {"hotline12345": "zt", "police_patrol": "JQZTDM",
               "city_management": "status", "law_enforcement": "Status"}
STEP_PATHS = {"hotline12345": "/_sandbox/workorders/{id}/hotline",
              "police_patrol": "/_sandbox/jq/{id}/status",
              "city_management": "/_sandbox/cases/{id}/advance",
              "law_enforcement": "/_sandbox/cases/{id}/advance"}
STATE_LISTS = {"hotline12345": "workorders", "police_patrol": "incidents",
               "city_management": "cases", "law_enforcement": "cases"}
TIME_KEYS = {"hotline12345": "ldsj", "police_patrol": "BJSJ",
             "city_management": "reportTime", "law_enforcement": "Created"}
SWEEP_MIN = 5.0  # story minutes between the hotline's visit-back rounds
MAX_ARRIVALS_PER_STEP = 20  # after a long pause, skip missed arrivals instead of flooding


def _now() -> datetime:
    return datetime.now(reports.SHANGHAI)


def control_root(url: str) -> str:
    """``http://host:port`` of a system base URL: control endpoints live at the app root."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def find_value(obj: Any, key: str) -> Any:
    """First value of ``key`` in a nested JSON answer (envelopes differ per simulator)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        children: list[Any] = list(obj.values())
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for child in children:
        found = find_value(child, key)
        if found is not None:
            return found
    return None


@dataclass
class Record:
    """One record an incident produced in one system."""

    system: str
    external_id: str
    channel: str  # caller | police | inspector | transfer | patrol
    reported_at: str  # in the system's own time format
    status: str = ""
    link: str = ""  # transfers: the 12345 gdbh carried as externalNo

    def as_dict(self) -> dict[str, str]:
        out = {"system": self.system, "external_id": self.external_id, "channel": self.channel,
               "reported_at": self.reported_at, "status": self.status}
        if self.link:
            out["link"] = self.link
        return out


@dataclass
class Incident:
    """The ground truth of one street incident and every record it produced."""

    id: str
    kind: Kind
    spot: geo.Spot
    started_at: datetime
    records: list[Record] = field(default_factory=list)

    @property
    def refs(self) -> list[tuple[str, str]]:
        """(system, external id) of every record reported for this incident."""
        return [(r.system, r.external_id) for r in self.records]

    def truth(self) -> dict[str, Any]:
        """The JSON line of ``dump_truth``."""
        return {
            "incident": self.id, "kind": self.kind.key, "kind_name": self.kind.name,
            "place": self.spot.place.name, "address": geo.canonical_address(self.spot),
            "street": self.spot.street, "community": self.spot.community,
            "lng": round(self.spot.lng, 7), "lat": round(self.spot.lat, 7),
            "started_at": self.started_at.isoformat(), "records": [r.as_dict() for r in self.records],
        }


@dataclass(frozen=True)
class _Planned:
    offset_min: float  # story minutes after the incident started
    channel: str
    transfer_after_min: float | None = None  # callers only: the hotline transfers to 数字城管


class TrafficGenerator:
    """Plays incidents into the four simulators and remembers what belongs together."""

    def __init__(self, urls: Mapping[str, str], seed: int = 1, rate_per_min: float = 6.0,
                 clock: Clock = _now, *, time_scale: float = 1.0, timeout_s: float = 10.0) -> None:
        """``urls``: system key → its base URL (only scheme, host and port are used)."""
        self.roots = {key: control_root(url) for key, url in urls.items() if key in SYSTEMS}
        self.rng = random.Random(seed)
        self.seed = seed
        self.rate_per_min = rate_per_min
        self.clock = clock
        self.time_scale = max(time_scale, 1e-6)
        self.timeout_s = timeout_s
        self.incidents: list[Incident] = []
        self.failures = 0
        self._session = requests.Session()
        self._lock = threading.RLock()
        self._queue: list[tuple[datetime, int, Action]] = []
        self._seq = itertools.count()
        self._skew = {s: timedelta(seconds=self.rng.uniform(*CLOCK_SKEW_S[s])) for s in SYSTEMS}
        self._next_arrival: datetime | None = None
        self._next_sweep: datetime | None = None
        self._visited: set[str] = set()

    # --- public ---------------------------------------------------------------------------

    def step(self) -> int:
        """Play every arrival and life-cycle step due by now; return how many actions ran."""
        with self._lock:
            now = self.clock()
            self._arrivals(now)
            self._sweep_due(now)
            ran = 0
            while self._queue and self._queue[0][0] <= now:
                _, _, action = heapq.heappop(self._queue)
                action()
                ran += 1
            return ran

    def run(self, stop_event: threading.Event, tick_s: float = 0.25) -> None:
        """Call :meth:`step` until ``stop_event`` is set."""
        while not stop_event.is_set():
            try:
                self.step()
            except Exception:  # the demo's traffic must outlive one bad step; the log shows it
                log.exception("traffic step failed")
            stop_event.wait(tick_s)

    def play_burst(self, n: int) -> list[Incident]:
        """Seed ``n`` incidents now, as if they had happened over the last few hours."""
        with self._lock:
            now = self.clock()
            played = []
            for _ in range(n):
                plan = self._plan_channels(kind := self._pick_kind())
                span = max(p.offset_min + (p.transfer_after_min or 0) for p in plan)
                started = now - timedelta(minutes=span + self.rng.uniform(5, 180))
                incident = self._new_incident(kind, started)
                for planned in plan:
                    self._play(incident, planned, burst=True)
                played.append(incident)
            return played

    def dump_truth(self, path: str | Path) -> int:
        """Write one JSON line per incident (with its records); return how many were written."""
        with self._lock:
            lines = [json.dumps(i.truth(), ensure_ascii=False) for i in self.incidents]
        Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return len(lines)

    def summary(self) -> dict[str, int]:
        """How many records each system has received, plus incidents and failures."""
        with self._lock:
            counts = dict.fromkeys(SYSTEMS, 0)
            for incident in self.incidents:
                for record in incident.records:
                    counts[record.system] += 1
            return {"incidents": len(self.incidents), **counts, "failures": self.failures}

    # --- planning -------------------------------------------------------------------------

    def _pick_kind(self) -> Kind:
        return self.rng.choices(KINDS, weights=[k.weight for k in KINDS])[0]

    def _new_incident(self, kind: Kind, started: datetime) -> Incident:
        place_kind = kind.place_kind if self.rng.random() < 0.85 else None
        incident = Incident(f"T{self.seed}-{len(self.incidents) + 1:05d}", kind,
                            geo.random_spot(self.rng, place_kind), started)
        self.incidents.append(incident)
        return incident

    def _plan_channels(self, kind: Kind) -> list[_Planned]:
        """Which channels report the incident, and when (story minutes, earliest at 0)."""
        rng, has = self.rng, self.roots.__contains__
        plan: list[_Planned] = []
        if has("hotline12345") and rng.random() < 0.8:
            callers = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
            offsets = sorted([0.0] + [rng.uniform(3, 90) for _ in range(callers - 1)])
            transfer = (kind.dcm is not None and has("city_management") and rng.random() < 0.3)
            for i, offset in enumerate(offsets):
                after = rng.uniform(5, 30) if transfer and i == 0 else None
                plan.append(_Planned(offset, "caller", after))
        if kind.jqlbdm and has("police_patrol") and rng.random() < 0.45:
            plan.append(_Planned(rng.uniform(-5, 15), "police"))
        if kind.dcm and has("city_management") and rng.random() < 0.4:
            plan.append(_Planned(rng.uniform(5, 60), "inspector"))
        if kind.zf and has("law_enforcement") and rng.random() < 0.3:
            plan.append(_Planned(rng.uniform(10, 120), "patrol"))
        if not plan:
            plan.append(self._fallback_channel(kind))
        start = min(p.offset_min for p in plan)
        return sorted((_Planned(p.offset_min - start, p.channel, p.transfer_after_min) for p in plan),
                      key=lambda p: p.offset_min)

    def _fallback_channel(self, kind: Kind) -> _Planned:
        own = [("caller", "hotline12345"), ("police", "police_patrol" if kind.jqlbdm else ""),
               ("inspector", "city_management" if kind.dcm else ""),
               ("patrol", "law_enforcement" if kind.zf else "")]
        channels = [c for c, system in own if system in self.roots]
        return _Planned(0.0, channels[0] if channels else "caller")

    # --- scheduling -----------------------------------------------------------------------

    def _later(self, minutes: float) -> timedelta:
        return timedelta(seconds=minutes * 60.0 / self.time_scale)

    def _schedule(self, at: datetime, action: Action) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), action))

    def _arrivals(self, now: datetime) -> None:
        if self.rate_per_min <= 0:
            return
        gap = self._gap
        if self._next_arrival is None:
            self._next_arrival = now + gap()
        for _ in range(MAX_ARRIVALS_PER_STEP):
            if self._next_arrival > now:
                return
            kind = self._pick_kind()
            incident = self._new_incident(kind, now)
            for planned in self._plan_channels(kind):
                self._schedule(now + self._later(planned.offset_min),
                               partial(self._play, incident, planned, False))
            self._next_arrival += gap()
        self._next_arrival = max(self._next_arrival, now + gap())

    def _gap(self) -> timedelta:
        return timedelta(seconds=self.rng.expovariate(self.rate_per_min / 60.0))

    def _stamp(self, system: str, story_at: datetime) -> datetime:
        """When the system says it happened: story time (never ahead of now) on its skewed clock."""
        return min(story_at, self.clock()) + self._skew[system]

    # --- playing one channel --------------------------------------------------------------

    def _play(self, incident: Incident, planned: _Planned, burst: bool) -> None:
        story_at = incident.started_at + timedelta(minutes=planned.offset_min)
        if planned.channel == "caller":
            self._call(incident, story_at, planned.transfer_after_min, burst)
        elif planned.channel == "police":
            self._police(incident, story_at)
        elif planned.channel == "inspector":
            self._inspect(incident, story_at)
        elif planned.channel == "patrol":
            self._patrol(incident, story_at)

    def _call(self, incident: Incident, story_at: datetime, transfer_after: float | None,
              burst: bool) -> None:
        rng, spot = self.rng, incident.spot
        pin = geo.jitter(spot.lng, spot.lat, rng.uniform(10, 60), rng) if rng.random() < 0.6 else None
        at = self._stamp("hotline12345", story_at) - timedelta(minutes=rng.uniform(0.5, 4))
        order = reports.hotline_order(incident.kind, spot, rng, at, pin)
        record = self._file(incident, "hotline12345", "caller", "/_sandbox/workorders", order,
                            reports.hotline_time(at))
        if record is None:
            return
        if transfer_after is not None:
            transfer_at = story_at + timedelta(minutes=transfer_after)
            transfer = partial(self._transfer, incident, order, record.external_id, transfer_at, pin)
            if burst:
                transfer()
            else:
                self._schedule(self.clock() + self._later(transfer_after), transfer)
        if rng.random() < 0.04:  # the citizen withdraws the call
            self._chain(incident, record, [(rng.uniform(5, 30), {"op": "CX"})])

    def _police(self, incident: Incident, story_at: datetime) -> None:
        at = self._stamp("police_patrol", story_at)
        body = reports.police_incident(incident.kind, incident.spot, self.rng, at)
        record = self._file(incident, "police_patrol", "police", "/_sandbox/jq", body,
                            reports.police_time(at))
        if record is not None:
            self._chain(incident, record, reports.police_steps(incident.kind, self.rng))

    def _inspect(self, incident: Incident, story_at: datetime) -> None:
        at = self._stamp("city_management", story_at)
        body = reports.inspector_case(incident.kind, incident.spot, self.rng, at)
        record = self._file(incident, "city_management", "inspector", "/_sandbox/cases", body,
                            reports.dcm_time(at))
        if record is not None:
            self._chain(incident, record, reports.dcm_steps(incident.kind, self.rng, "01"))

    def _transfer(self, incident: Incident, order: dict[str, Any], gdbh: str, story_at: datetime,
                  pin: tuple[float, float] | None) -> None:
        at = self._stamp("city_management", story_at)
        body = reports.transfer_case(incident.kind, order, gdbh, at, pin)
        record = self._file(incident, "city_management", "transfer", "/_sandbox/cases", body,
                            reports.dcm_time(at), link=gdbh)
        if record is not None:
            self._chain(incident, record, reports.dcm_steps(incident.kind, self.rng, "03"))

    def _patrol(self, incident: Incident, story_at: datetime) -> None:
        at = self._stamp("law_enforcement", story_at)
        body = reports.patrol_case(incident.kind, incident.spot, self.rng, at)
        record = self._file(incident, "law_enforcement", "patrol", "/_sandbox/cases", body,
                            reports.zf_time(at))
        if record is not None:
            self._chain(incident, record, reports.zf_steps(self.rng))

    def _file(self, incident: Incident, system: str, channel: str, path: str, body: dict[str, Any],
              reported_at: str, link: str = "") -> Record | None:
        answer = self._post(system, path, body)
        external_id = find_value(answer, ID_KEYS[system]) if answer is not None else None
        if not external_id:
            return None
        status = find_value(answer, STATUS_KEYS[system])
        # the system's own stamp wins: some platforms set it themselves on registration
        reported_at = str(find_value(answer, TIME_KEYS[system]) or reported_at)
        record = Record(system, str(external_id), channel, reported_at, str(status or ""), link)
        incident.records.append(record)
        return record

    # --- life cycle -----------------------------------------------------------------------

    def _chain(self, incident: Incident, record: Record,
               steps: list[tuple[float, dict[str, Any]]]) -> None:
        """Schedule the record's next moves one after the other; a refused move ends the chain."""
        if not steps:
            return
        delay, body = steps[0]

        def advance() -> None:
            path = STEP_PATHS[record.system].format(id=record.external_id)
            answer = self._post(record.system, path, body)
            if answer is None:
                return
            status = find_value(answer, STATUS_KEYS[record.system])
            record.status = str(status or record.status)
            self._chain(incident, record, steps[1:])

        self._schedule(self.clock() + self._later(delay), advance)

    def _sweep_due(self, now: datetime) -> None:
        if "hotline12345" not in self.roots:
            return
        if self._next_sweep is None:
            self._next_sweep = now + self._later(SWEEP_MIN)
        if now >= self._next_sweep:
            self._next_sweep = now + self._later(SWEEP_MIN)
            self.visit_back()

    def held(self, system: str) -> dict[str, dict[str, Any]]:
        """The records one simulator holds now (``/_sandbox/state``), by external id."""
        state = self._get(system, "/_sandbox/state")
        rows = state.get(STATE_LISTS[system], []) if isinstance(state, dict) else []
        rows = [row.get("jq", row) for row in rows if isinstance(row, dict)]
        return {str(row[ID_KEYS[system]]): row for row in rows if ID_KEYS[system] in row}

    def refresh_statuses(self) -> None:
        """Re-read every record's status: systems also move records by themselves (06 → 07)."""
        with self._lock:
            for system in self.roots:
                held = self.held(system)
                for record in (r for i in self.incidents for r in i.records if r.system == system):
                    row = held.get(record.external_id)
                    if row is not None:
                        record.status = str(row.get(STATUS_KEYS[system]) or record.status)

    def visit_back(self) -> int:
        """The hotline calls back citizens of our orders now in 40 (HF); return how many."""
        with self._lock:
            ours = {r.external_id: r for i in self.incidents for r in i.records
                    if r.system == "hotline12345"}
            if not ours:
                return 0
            done = 0
            for gdbh, order in self.held("hotline12345").items():
                record = ours.get(gdbh)
                if record is None:
                    continue
                record.status = str(order.get("zt") or record.status)
                if record.status != "40" or gdbh in self._visited:
                    continue
                solved = self.rng.random() >= 0.15
                body = {"op": "HF", "myd": self.rng.choice(("1", "1", "2")) if solved else "3",
                        "sfjj": "1" if solved else "0"}
                answer = self._post("hotline12345", f"/_sandbox/workorders/{gdbh}/hotline", body)
                if answer is not None:
                    self._visited.add(gdbh)
                    record.status = str(find_value(answer, "zt") or record.status)
                    done += 1
            return done

    # --- HTTP -----------------------------------------------------------------------------

    def _post(self, system: str, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", system, path, body)

    def _get(self, system: str, path: str) -> Any:
        return self._request("GET", system, path, None)

    def _request(self, method: str, system: str, path: str, body: dict[str, Any] | None) -> Any:
        """JSON answer of a control endpoint, or None (logged) when it refused or failed."""
        url = self.roots[system] + path
        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            self.failures += 1
            log.warning("traffic: %s %s failed: %s", method, url, exc)
            return None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        envelope_code = answer.get("code") if isinstance(answer, dict) else None
        if response.status_code >= 300 or envelope_code not in (None, 0):
            self.failures += 1
            log.info("traffic: %s %s refused: %s %s", method, url, response.status_code,
                     response.text[:200])
            return None
        return answer if answer is not None else {}
