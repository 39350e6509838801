"""In-memory state of the police linkage system: 警情, their moves, feedback and reconciliation."""

from __future__ import annotations

import copy
import hmac
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sandbox.police_patrol_webhook import WebhookDispatcher

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
CATEGORIES = {
    "LD01": "占道经营", "LD02": "噪声扰民", "LD03": "机动车乱停放阻碍交通", "LD04": "违章搭建",
    "LD05": "垃圾堆放焚烧", "LD06": "井盖缺失道路险情", "LD07": "邻里纠纷", "LD08": "群租隐患",
    "LD09": "私设地锁",
}
MOVES = {"01": {"02", "99"}, "02": {"03", "99"}, "03": {"04", "99"}, "04": {"05", "06", "99"},
         "05": {"09", "99"}, "06": {"09", "99"}}
CLOSED = frozenset({"09", "99"})
RESULT_STATES = frozenset({"05", "06", "99"})
TRANSFER_UNITS = frozenset({"城管", "综合执法"})
FEEDBACK_TYPES = frozenset({"JS", "CZ", "BJ"})
DEFAULT_PATROL = "巡逻一组"
DEFAULT_RESULTS = {"05": "已现场处置完毕", "06": "已移交联动单位处置", "99": "经核实为无效警情"}
RETENTION = timedelta(days=7)


class ControlError(Exception):
    """A refused police-side step (control endpoint): HTTP ``status`` with a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso(moment: datetime) -> str:
    """ISO-8601 with ``+08:00``, seconds precision (the police wire format)."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def parse_instant(text: Any) -> datetime | None:
    """An ISO-8601 time that carries its offset; None when malformed or zone-less."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class Incident:
    seq: int
    jq: dict[str, Any]
    bj_accepted: bool = False


class PoliceSimulator:
    """警情 state machine, feedback desk and reconciliation queries (thread-safe)."""

    def __init__(self, *, dispatcher: WebhookDispatcher, clock: Callable[[], datetime], feedback_token: str,
                 reconcile_min_interval_s: float = 60) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self._token = feedback_token
        self.reconcile_min_interval_s = reconcile_min_interval_s
        self._lock = threading.RLock()
        self._incidents: dict[str, Incident] = {}
        self._serial = 0
        self._feedback: list[dict[str, Any]] = []
        self._feedback_keys: set[tuple[str, str, datetime]] = set()
        self._writes: list[dict[str, Any]] = []
        self._last_list_call: dict[str, datetime] = {}

    # ----- police side (control endpoints) ----------------------------------------------------
    def report(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A call is taken: create the 警情 (``01``, or ``02`` when already dispatched)."""
        now = self.clock()
        category = fields.get("JQLBDM")
        if category not in CATEGORIES:
            raise ControlError(400, "JQLBDM: one of LD01..LD09")
        status = fields.get("JQZTDM", "01")
        if status not in ("01", "02"):
            raise ControlError(400, "JQZTDM at creation: 01 or 02")
        reported = parse_instant(fields["BJSJ"]) if "BJSJ" in fields else now
        if reported is None:
            raise ControlError(400, "BJSJ: ISO-8601 with offset")
        jq = {
            "JJDBH": "", "BJSJ": iso(reported), "JQLBDM": category, "JQLBMC": CATEGORIES[str(category)],
            "JYQK": _text(fields, "JYQK"), "SFDD": _text(fields, "SFDD"),
            "JD": _coordinate(fields, "JD", 180), "WD": _coordinate(fields, "WD", 90),
            "GXDWDM": _text(fields, "GXDWDM", "310104550000"),
            "GXDWMC": _text(fields, "GXDWMC", "斜土路派出所"),
            "JQZTDM": status, "CJDW": _text(fields, "CJDW", DEFAULT_PATROL) if status == "02" else "",
            "CLJG": None, "YJDW": None, "GXSJ": iso(now),
        }
        with self._lock:
            self._serial += 1
            generated = f"310104{now.astimezone(SHANGHAI):%Y%m%d}{self._serial:04d}"  # 区划 + 日期 + 序号
            jq["JJDBH"] = _text(fields, "JJDBH") or generated
            if jq["JJDBH"] in self._incidents:
                raise ControlError(409, f"JJDBH {jq['JJDBH']} exists")
            incident = Incident(1, jq)
            self._incidents[jq["JJDBH"]] = incident
            self.dispatcher.enqueue("JQ_CREATED", 1, jq)
            return self._row(incident)

    def move(self, jjdbh: str, change: dict[str, Any]) -> dict[str, Any]:
        """Move a 警情 to ``JQZTDM`` (legal moves only) and emit ``JQ_UPDATED``/``JQ_CLOSED``."""
        target = change.get("JQZTDM")
        with self._lock:
            incident = self._incidents.get(jjdbh)
            if incident is None:
                raise ControlError(404, f"unknown JJDBH {jjdbh}")
            jq = incident.jq
            if target not in MOVES.get(jq["JQZTDM"], set()):
                raise ControlError(409, f"{jq['JQZTDM']} → {target} is not a legal move")
            if jq["JQZTDM"] == "06" and target == "09" and not incident.bj_accepted:
                raise ControlError(409, "06 → 09 only after the hub's BJ feedback was accepted")
            updates = _move_fields(jq, str(target), change)
            now = self.clock()
            jq.update(updates, JQZTDM=target, GXSJ=iso(now))
            incident.seq += 1
            self.dispatcher.enqueue("JQ_CLOSED" if target in CLOSED else "JQ_UPDATED", incident.seq, jq)
            return self._row(incident)

    # ----- hub side (API) ---------------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        """True when ``Authorization`` carries the gateway's Bearer token."""
        return bool(header) and hmac.compare_digest(str(header), f"Bearer {self._token}")

    def feedback(self, body: Any) -> tuple[int, dict[str, Any]]:
        """Take one feedback; answers (HTTP status, JSON body)."""
        field, instant = _invalid_feedback_field(body)
        if field:
            return 400, {"success": False, "errorCode": "INVALID_PARAM", "field": field}
        assert instant is not None
        key = (body["JJDBH"], body["FKLX"], instant.astimezone(UTC))
        with self._lock:
            incident = self._incidents.get(body["JJDBH"])
            if incident is None:
                return 200, {"success": False, "errorCode": "JQ_NOT_FOUND"}
            if key in self._feedback_keys:  # before the state check: a retry is always "done"
                return 200, {"success": False, "errorCode": "DUPLICATE_FEEDBACK"}
            if incident.jq["JQZTDM"] != "06" or (body["FKLX"] == "BJ" and incident.bj_accepted):
                return 200, {"success": False, "errorCode": "INVALID_STATE"}
            self._feedback_keys.add(key)
            self._feedback.append({**{k: body[k] for k in ("JJDBH", "FKLX", "FKNR", "FKSJ", "FKDW")},
                                   "receivedAt": iso(self.clock())})
            if body["FKLX"] == "BJ":
                incident.bj_accepted = True
            return 200, {"success": True}

    def current(self, jjdbh: str) -> dict[str, Any] | None:
        """``{"seq", "jq"}`` of one 警情, or None."""
        with self._lock:
            incident = self._incidents.get(jjdbh)
            return self._row(incident) if incident else None

    def reconcile_wait(self, token_header: str) -> float:
        """Seconds before this token may list again (0: go ahead; the call is counted)."""
        now = self.clock()
        with self._lock:
            last = self._last_list_call.get(token_header)
            if last is not None:
                remaining = self.reconcile_min_interval_s - (now - last).total_seconds()
                if remaining > 0:
                    return remaining
            self._last_list_call[token_header] = now
            return 0.0

    def changed_since(self, since: datetime, page_no: int, page_size: int) -> dict[str, Any]:
        """Incidents changed at or after ``since`` (kept 7 days), by GXSJ then JJDBH."""
        horizon = self.clock() - RETENTION
        with self._lock:
            hits = [i for i in self._incidents.values() if _changed(i) >= max(since, horizon)]
            hits.sort(key=lambda i: (_changed(i), i.jq["JJDBH"]))
            start = (page_no - 1) * page_size
            return {"total": len(hits), "rows": [self._row(i) for i in hits[start:start + page_size]]}

    # ----- bookkeeping -------------------------------------------------------------------------
    def log_write(self, entry: dict[str, Any]) -> None:
        """Keep one write request received from outside (for ``/_sandbox/state``)."""
        with self._lock:
            self._writes.append(entry)

    def state(self) -> dict[str, Any]:
        """Everything held, for convergence checks."""
        with self._lock:
            incidents = [{**self._row(i), "bjAccepted": i.bj_accepted}
                         for _, i in sorted(self._incidents.items())]
            return {"incidents": incidents, "feedback": copy.deepcopy(self._feedback),
                    "writes": copy.deepcopy(self._writes), **self.dispatcher.state()}

    @staticmethod
    def _row(incident: Incident) -> dict[str, Any]:
        return {"seq": incident.seq, "jq": copy.deepcopy(incident.jq)}


def _changed(incident: Incident) -> datetime:
    """GXSJ as an instant: reconciliation filters and orders by what the hub sees."""
    return datetime.fromisoformat(incident.jq["GXSJ"])


def _text(fields: dict[str, Any], name: str, default: str = "") -> str:
    value = fields.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ControlError(400, f"{name} must be a string")
    return value


def _coordinate(fields: dict[str, Any], name: str, bound: float) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or abs(value) > bound:
        raise ControlError(400, f"{name}: number within ±{bound} or null")
    return float(value)


def _move_fields(jq: dict[str, Any], target: str, change: dict[str, Any]) -> dict[str, Any]:
    """Field updates that come with a move; refuses fields the target status does not carry."""
    updates: dict[str, Any] = {}
    if target == "02":
        updates["CJDW"] = _text(change, "CJDW") or DEFAULT_PATROL
    elif change.get("CJDW"):
        if not jq["CJDW"]:
            raise ControlError(400, "CJDW is set at 02 (派警)")
        updates["CJDW"] = _text(change, "CJDW")
    if target in RESULT_STATES:
        updates["CLJG"] = _text(change, "CLJG") or DEFAULT_RESULTS[target]
    elif change.get("CLJG"):
        raise ControlError(400, "CLJG is set at 05, 06 and 99")
    if target == "06":
        if change.get("YJDW") not in TRANSFER_UNITS:
            raise ControlError(400, "YJDW: exactly 城管 or 综合执法")
        updates["YJDW"] = change["YJDW"]
    elif change.get("YJDW"):
        raise ControlError(400, "YJDW is set with 06")
    return updates


def _invalid_feedback_field(body: Any) -> tuple[str | None, datetime | None]:
    """The first malformed field of a feedback body (None when fine), and its FKSJ instant."""
    if not isinstance(body, dict):
        return "body", None
    for name in ("JJDBH", "FKLX", "FKNR"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return name, None
    if body["FKLX"] not in FEEDBACK_TYPES:
        return "FKLX", None
    instant = parse_instant(body.get("FKSJ"))
    if instant is None:
        return "FKSJ", None
    if not isinstance(body.get("FKDW"), str) or not body["FKDW"].strip():
        return "FKDW", None
    return None, instant
