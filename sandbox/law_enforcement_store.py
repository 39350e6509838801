"""综合执法 simulator: the platform's cases and rules, thread-safe, in memory.

The exchange endpoint (``sandbox/law_enforcement.py``) translates GBK XML into calls on
:class:`LawEnforcement`; tests may call these methods directly.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sandbox.law_enforcement_xml import PlatformError, bad_parameter

Clock = Callable[[], datetime]
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991
TIME_FORMAT = "%Y%m%d%H%M%S"
_TIME_RE = re.compile(r"^\d{14}$")

SOURCES = ("网格", "12345", "巡查", "举报", "移送")
CATEGORIES = {
    "CG-0101": "违法建设", "CG-0201": "无照占道经营", "CG-0301": "乱倒建筑垃圾渣土",
    "CG-0401": "户外广告违规设置", "CG-0501": "社会生活噪声污染", "CG-0502": "建筑施工噪声污染",
    "CG-0601": "餐饮油烟污染", "CG-0701": "损坏市政设施",
}
STATUSES = ("XSDJ", "HC", "LA", "DCQZ", "SC", "CFJD", "ZX", "JA", "BYLA", "YS")
FINAL_STATUSES = ("JA", "BYLA", "YS")
# The department's own moves; any non-final case may also go to YS (移送其他部门).
MOVES: dict[str, tuple[str, ...]] = {
    "XSDJ": ("HC",), "HC": ("LA", "BYLA"), "LA": ("DCQZ",), "DCQZ": ("SC",), "SC": ("CFJD",),
    "CFJD": ("ZX",), "ZX": ("JA",),
}
DEFAULT_HANDLER = "徐汇区城管执法局第一中队"
LNG_RANGE = (73.0, 136.0)  # GCJ-02, inside China
LAT_RANGE = (3.0, 54.0)
CASE_ELEMENTS = ("ClueNo", "CaseNo", "ExternalNo", "Source", "Category", "Content", "Address", "Lng",
                 "Lat", "Status", "Result", "Penalty", "Handler", "Created", "Modified")


def local_now(clock: Clock) -> datetime:
    """The simulator clock as naive Asia/Shanghai time, to the second."""
    return clock().astimezone(SHANGHAI).replace(tzinfo=None, microsecond=0)


def parse_time(text: str, name: str) -> str:
    """Check a ``yyyyMMddHHmmss`` value; return it unchanged (it sorts as text)."""
    if not _TIME_RE.match(text):
        raise bad_parameter(name)
    try:
        datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise bad_parameter(name) from None
    return text


def _coordinate(text: str, name: str, bounds: tuple[float, float]) -> str:
    try:
        value = float(text)
    except ValueError:
        raise bad_parameter(name) from None
    if not bounds[0] <= value <= bounds[1]:
        raise bad_parameter(name)
    return f"{value:.6f}"


def _gbk_storable(text: str) -> str:
    """What a GBK database keeps of a string (control-endpoint data only)."""
    return text.encode("gbk", errors="replace").decode("gbk")


@dataclass
class _Clue:
    fields: dict[str, str]  # exactly the Case elements of the spec, as text
    reporter: str = ""
    report_time: str = ""
    attachments: list[str] = field(default_factory=list)
    remarks: list[dict[str, str]] = field(default_factory=list)


class LawEnforcement:
    """In-memory 综合执法 platform: one account, clues/cases, department state machine."""

    def __init__(self, user: str = "wgzx", password: str = "zf-demo-pass", clock: Clock | None = None,
                 rate_limit_per_s: float = 5) -> None:
        self.user = user
        self._password = password
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.rate_limit_per_s = rate_limit_per_s
        self._lock = threading.RLock()
        self._clues: dict[str, _Clue] = {}
        self._by_external: dict[str, str] = {}
        self._calls: dict[str, list[float]] = {}
        self._writes: list[dict[str, Any]] = []
        self._clue_seq = 4500
        self._case_seq = 100

    # ---- head checks -------------------------------------------------------------------------
    def authenticate(self, user: str, password: str) -> None:
        """PlatformError 1001 unless the head carries this account's credentials."""
        if user != self.user or password != self._password:
            raise PlatformError(1001)

    def admit(self, user: str) -> None:
        """Count one call of ``user``; PlatformError 1003 beyond the per-second limit."""
        if self.rate_limit_per_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._calls.get(user, []) if now - t < 1.0]
            if len(recent) >= self.rate_limit_per_s:
                self._calls[user] = recent
                raise PlatformError(1003)
            recent.append(now)
            self._calls[user] = recent

    def in_maintenance(self) -> bool:
        """The nightly window [01:00, 02:00) local time."""
        return local_now(self.clock).hour == 1

    # ---- methods -----------------------------------------------------------------------------
    def query_cases(self, since: str | None, after_clue_no: str | None,
                    max_count: int) -> tuple[list[dict[str, str]], bool]:
        """Cases with Modified ≥ since (minus rows of that second ≤ after_clue_no), oldest first.

        Returns (rows, more).
        """
        with self._lock:
            matching = []
            for clue in self._clues.values():
                modified, clue_no = clue.fields["Modified"], clue.fields["ClueNo"]
                if since is not None and modified < since:
                    continue
                if after_clue_no is not None and modified == since and clue_no <= after_clue_no:
                    continue
                matching.append(clue.fields)
            matching.sort(key=lambda c: (c["Modified"], c["ClueNo"]))
            return [dict(c) for c in matching[:max_count]], len(matching) > max_count

    def query_case(self, clue_no: str) -> dict[str, str]:
        """One case by ClueNo; PlatformError 2001 when unknown."""
        with self._lock:
            return dict(self._clue(clue_no).fields)

    def transfer_clue(self, clue: dict[str, Any]) -> str:
        """线索移送: validate, refuse a repeated ExternalNo (2003, Message = ClueNo), register XSDJ."""
        for name in ("ExternalNo", "Source", "Category", "Content"):
            if not clue.get(name):
                raise bad_parameter(name)
        if clue["Source"] not in SOURCES:
            raise bad_parameter("Source")
        if clue["Category"] not in CATEGORIES:
            raise bad_parameter("Category")
        lng, lat = clue.get("Lng", ""), clue.get("Lat", "")
        if bool(lng) != bool(lat):
            raise bad_parameter("Lat" if lng else "Lng")
        if lng:
            lng, lat = _coordinate(lng, "Lng", LNG_RANGE), _coordinate(lat, "Lat", LAT_RANGE)
        report_time = parse_time(clue["ReportTime"], "ReportTime") if clue.get("ReportTime") else ""
        with self._lock:
            existing = self._by_external.get(clue["ExternalNo"])
            if existing is not None:
                raise PlatformError(2003, existing)
            record = self._register({
                "ExternalNo": clue["ExternalNo"], "Source": clue["Source"], "Category": clue["Category"],
                "Content": clue["Content"], "Address": clue.get("Address", ""), "Lng": lng, "Lat": lat,
            })
            record.reporter = clue.get("Reporter", "")
            record.report_time = report_time
            record.attachments = list(clue.get("Attachments", []))
            return record.fields["ClueNo"]

    def add_remark(self, clue_no: str, text: str) -> dict[str, str]:
        """Append a remark (2002 once final); bumps Modified so the case comes back in QueryCases."""
        if not clue_no:
            raise bad_parameter("ClueNo")
        if not text:
            raise bad_parameter("Text")
        with self._lock:
            record = self._clue(clue_no)
            if record.fields["Status"] in FINAL_STATUSES:
                raise PlatformError(2002)
            now = self.local_time()
            record.remarks.append({"Time": now, "Text": text})
            record.fields["Modified"] = now
            return dict(record.fields)

    # ---- the platform's own side (control endpoints) -----------------------------------------
    def file_case(self, body: dict[str, Any]) -> dict[str, str]:
        """A case found by the platform's own patrol or a tip-off (lenient; codes still checked)."""
        values = {name: _gbk_storable(str(body.get(name) or "")) for name in CASE_ELEMENTS}
        values["Source"] = values["Source"] or "巡查"
        values["Category"] = values["Category"] or "CG-0201"
        values["Status"] = values["Status"] or "XSDJ"
        if values["Source"] not in SOURCES:
            raise bad_parameter("Source")
        if values["Category"] not in CATEGORIES:
            raise bad_parameter("Category")
        if values["Status"] not in STATUSES:
            raise bad_parameter("Status")
        if bool(values["Lng"]) != bool(values["Lat"]):
            raise bad_parameter("Lat" if values["Lng"] else "Lng")
        if values["Lng"]:
            values["Lng"] = _coordinate(values["Lng"], "Lng", LNG_RANGE)
            values["Lat"] = _coordinate(values["Lat"], "Lat", LAT_RANGE)
        with self._lock:
            if values["ExternalNo"] and values["ExternalNo"] in self._by_external:
                raise PlatformError(2003, self._by_external[values["ExternalNo"]])
            record = self._register(values)
            if values["Status"] not in ("XSDJ", "HC", "BYLA", "YS") and not values["CaseNo"]:
                record.fields["CaseNo"] = self._next_case_no()
            return dict(record.fields)

    def advance(self, clue_no: str, status: str, **details: str | None) -> dict[str, str]:
        """The department moves a case; details: Result, Penalty, Handler, CaseNo.

        PlatformError 2001 when unknown, 2002 for a move the platform does not allow.
        """
        with self._lock:
            record = self._clue(clue_no)
            current = record.fields["Status"]
            legal = MOVES.get(current, ())
            if current not in FINAL_STATUSES:
                legal = (*legal, "YS")
            if status not in legal:
                raise PlatformError(2002, f"当前状态{current}不允许变更为{status}")
            record.fields["Status"] = status
            for name in ("Result", "Penalty", "Handler", "CaseNo"):
                if details.get(name):
                    record.fields[name] = _gbk_storable(str(details[name]))
            if status == "LA" and not record.fields["CaseNo"]:
                record.fields["CaseNo"] = self._next_case_no()
            if status == "HC" and not record.fields["Handler"]:
                record.fields["Handler"] = DEFAULT_HANDLER
            record.fields["Modified"] = self.local_time()
            return dict(record.fields)

    def record_write(self, entry: dict[str, Any]) -> None:
        """Log one write request received from outside (for ``/_sandbox/state``)."""
        with self._lock:
            self._writes.append(entry)

    def state(self) -> dict[str, Any]:
        """Every case (with its remarks, reporter, attachments) and the log of outside writes."""
        with self._lock:
            cases = []
            for record in self._clues.values():
                item: dict[str, Any] = dict(record.fields)
                item.update(_Reporter=record.reporter, _ReportTime=record.report_time,
                            _Attachments=list(record.attachments), _Remarks=copy.deepcopy(record.remarks))
                cases.append(item)
            return {"cases": cases, "writes": copy.deepcopy(self._writes)}

    # ---- internals ---------------------------------------------------------------------------
    def local_time(self) -> str:
        """The simulator clock as local ``yyyyMMddHHmmss``."""
        return local_now(self.clock).strftime(TIME_FORMAT)

    def _clue(self, clue_no: str) -> _Clue:
        record = self._clues.get(clue_no)
        if record is None:
            raise PlatformError(2001)
        return record

    def _register(self, values: dict[str, str]) -> _Clue:
        now = self.local_time()
        self._clue_seq += 1
        clue_no = f"ZF-{now[:4]}-{self._clue_seq:06d}"
        fields = dict.fromkeys(CASE_ELEMENTS, "")
        fields.update({k: v for k, v in values.items() if k in CASE_ELEMENTS})
        fields.update(ClueNo=clue_no, Status=values.get("Status") or "XSDJ", Created=now, Modified=now)
        record = _Clue(fields)
        self._clues[clue_no] = record
        if fields["ExternalNo"]:
            self._by_external[fields["ExternalNo"]] = clue_no
        return record

    def _next_case_no(self) -> str:
        self._case_seq += 1
        return f"徐综执立字〔{self.local_time()[:4]}〕第{self._case_seq:05d}号"
