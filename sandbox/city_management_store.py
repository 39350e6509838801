"""数字城管 simulator: the platform's state (tokens, cases, state machine), thread-safe, in memory.

The HTTP layer (``sandbox/city_management.py``) only translates requests into calls on
:class:`CityManagement`; tests may call these methods directly.
"""

from __future__ import annotations

import copy
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.city_management_rules import (
    DEFAULT_DEPARTMENTS,
    DEPARTMENT_MOVES,
    HUB_VERIFIED_SOURCES,
    SOURCES,
    STATUSES,
    TAXONOMY,
    X_RANGE,
    Y_RANGE,
    FieldError,
    deadline_for,
    fmt,
    grid_code,
    local_now,
    parse_time,
    photos_of,
    validate_new_case,
)

Clock = Callable[[], datetime]


class Refusal(Exception):
    """The platform refuses a request: HTTP status and the JSON body it answers."""

    def __init__(self, http_status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{http_status} {body}")
        self.http_status = http_status
        self.body = body


def invalid_field(name: str) -> Refusal:
    return Refusal(422, {"code": "INVALID_FIELD", "field": name})


@dataclass
class _Token:
    client_id: str
    expires_at: datetime  # aware


@dataclass
class _CaseRecord:
    fields: dict[str, Any]  # exactly the Case of the spec
    creator: str | None  # API client that created it; None for cases filed inside the platform
    reporter: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)  # SUPPLEMENT / VERIFY / CANCEL texts
    dispatched_at: datetime | None = None
    close_due: datetime | None = None  # when a 06 case closes to 07 by itself


class CityManagement:
    """In-memory 数字城管 platform: OAuth2 clients, cases, department state machine."""

    def __init__(self, client_id: str = "gridhub", client_secret: str = "dcm-demo-secret",
                 clock: Clock | None = None, token_ttl_s: int = 7200, close_after_s: int = 30) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.token_ttl_s = token_ttl_s
        self.close_after_s = close_after_s
        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._cases: dict[str, _CaseRecord] = {}
        self._by_external: dict[tuple[str, str], str] = {}
        self._writes: list[dict[str, Any]] = []
        self._legacy_seq = 187
        self._case_no_seq = 1233

    # ---- OAuth2 client credentials -------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        """A new access token for a known client, or None (invalid_client)."""
        if not (secrets.compare_digest(client_id, self.client_id)
                and secrets.compare_digest(client_secret, self._client_secret)):
            return None
        token = secrets.token_urlsafe(24)
        with self._lock:
            expires_at = self.clock() + timedelta(seconds=self.token_ttl_s)
            self._tokens[token] = _Token(client_id, expires_at)
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl_s}

    def client_of(self, token: str) -> str | None:
        """The client a live token belongs to; None when unknown, expired or revoked."""
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None:
                return None
            if self.clock() >= issued.expires_at:
                del self._tokens[token]
                return None
            return issued.client_id

    def revoke_tokens(self) -> int:
        """Invalidate every issued token (as a server restart does); return how many."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
            return count

    # ---- reading -------------------------------------------------------------------------
    def list_cases(self, updated_from: datetime | None, page_no: int, page_size: int) -> dict[str, Any]:
        """One page of the live set sorted by updateTime, caseId (offset paging: the set moves)."""
        with self._lock:
            self._settle()
            since = fmt(updated_from) if updated_from else ""
            matching = sorted(
                (r.fields for r in self._cases.values() if r.fields["updateTime"] >= since),
                key=lambda c: (c["updateTime"], c["caseId"]),
            )
            start = (page_no - 1) * page_size
            rows = [copy.deepcopy(c) for c in matching[start:start + page_size]]
            return {"total": len(matching), "pageNo": page_no, "pageSize": page_size, "rows": rows}

    def get_case(self, case_id: str) -> dict[str, Any]:
        """One case; Refusal 404 NOT_FOUND when unknown."""
        with self._lock:
            self._settle()
            return copy.deepcopy(self._record(case_id).fields)

    # ---- API writes ----------------------------------------------------------------------
    def create_case(self, body: dict[str, Any], client_id: str) -> dict[str, Any]:
        """``POST /dcm/api/cases``: validation first, then the duplicate check, then 01."""
        with self._lock:
            self._settle()
            now = local_now(self.clock)
            try:
                clean = validate_new_case(body, now)
            except FieldError as exc:
                raise invalid_field(exc.field) from None
            self._refuse_duplicate(clean["source"], clean["externalNo"])
            record = self._new_record(str(uuid.uuid4()), clean, now, creator=client_id)
            return {"caseId": record.fields["caseId"], "status": record.fields["status"]}

    def operate(self, case_id: str, body: dict[str, Any], client_id: str) -> dict[str, Any]:
        """``POST /dcm/api/cases/{caseId}/operations``: SUPPLEMENT, VERIFY or CANCEL."""
        with self._lock:
            self._settle()
            record = self._record(case_id)
            op = body.get("op")
            if op == "SUPPLEMENT":
                self._supplement(record, body)
            elif op == "VERIFY":
                self._verify(record, body)
            elif op == "CANCEL":
                self._cancel(record, body, client_id)
            else:
                raise invalid_field("op")
            return copy.deepcopy(record.fields)

    def _supplement(self, record: _CaseRecord, body: dict[str, Any]) -> None:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise invalid_field("text")
        photos = self._photos(body)
        self._require_state(record, ("01", "02", "03", "04", "05", "06", "09", "10"))
        record.fields["photos"].extend(photos)
        self._note(record, "SUPPLEMENT", text)
        self._touch(record)

    def _verify(self, record: _CaseRecord, body: dict[str, Any]) -> None:
        result = body.get("result")
        if result not in ("PASS", "FAIL"):
            raise invalid_field("result")
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise invalid_field("text")
        photos = self._photos(body)
        self._require_state(record, ("05",))
        record.fields["photos"].extend(photos)
        self._note(record, "VERIFY", text or "", result=result)
        self._verified(record, result)
        self._touch(record)

    def _cancel(self, record: _CaseRecord, body: dict[str, Any], client_id: str) -> None:
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise invalid_field("reason")
        self._require_state(record, ("01",))
        if record.creator != client_id:
            raise Refusal(403, {"code": "NOT_CREATOR"})
        self._note(record, "CANCEL", reason or "")
        record.fields["status"] = "08"
        self._touch(record)

    # ---- the platform's own side (control endpoints) -------------------------------------
    def file_case(self, body: dict[str, Any]) -> dict[str, Any]:
        """The platform's inspector (or the hotline's own transfer, source 03) files a case."""
        with self._lock:
            self._settle()
            now = local_now(self.clock)
            clean = self._inspector_fields(body, now)
            if clean["externalNo"]:
                self._refuse_duplicate(clean["source"], clean["externalNo"])
            record = self._new_record(self._legacy_id(), clean, now, creator=None)
            status = body.get("status") or "01"
            if status not in STATUSES:
                raise invalid_field("status")
            if status != "01":
                self._enter(record, status, now, body)
            return copy.deepcopy(record.fields)

    def advance(self, case_id: str, status: str, dept_name: str | None = None,
                handle_result: str | None = None) -> dict[str, Any]:
        """The department moves a case (legal moves only, else Refusal 409 INVALID_STATE)."""
        with self._lock:
            self._settle()
            record = self._record(case_id)
            current = record.fields["status"]
            legal = DEPARTMENT_MOVES.get(current, ())
            if current in ("02", "03", "04"):
                legal = (*legal, "10")
            if current == "05" and record.fields["source"] in HUB_VERIFIED_SOURCES:
                legal = ()  # those wait for VERIFY through the API
            if status not in legal:
                raise Refusal(409, {"code": "INVALID_STATE", "status": current})
            self._enter(record, status, local_now(self.clock),
                        {"deptName": dept_name, "handleResult": handle_result})
            self._touch(record)
            return copy.deepcopy(record.fields)

    def record_write(self, entry: dict[str, Any]) -> None:
        """Log one write request received from outside (for ``/_sandbox/state``)."""
        with self._lock:
            self._writes.append(entry)

    def state(self) -> dict[str, Any]:
        """Every record the simulator holds, plus the log of outside writes."""
        with self._lock:
            self._settle()
            cases = []
            for record in self._cases.values():
                item = copy.deepcopy(record.fields)
                item["_creator"] = record.creator
                item["_reporter"] = record.reporter
                item["_notes"] = copy.deepcopy(record.notes)
                cases.append(item)
            return {"cases": cases, "writes": copy.deepcopy(self._writes),
                    "activeTokens": len(self._tokens)}

    # ---- internals -----------------------------------------------------------------------
    def _settle(self) -> None:
        """Apply what the platform's jobs would have done by now: 06 closes to 07."""
        now = local_now(self.clock)
        for record in self._cases.values():
            due = record.close_due
            if record.fields["status"] == "06" and due is not None and due <= now:
                record.fields["status"] = "07"
                record.close_due = None
                record.fields["version"] += 1
                record.fields["updateTime"] = fmt(due)  # the moment the job closed it

    def _record(self, case_id: str) -> _CaseRecord:
        record = self._cases.get(case_id)
        if record is None:
            raise Refusal(404, {"code": "NOT_FOUND"})
        return record

    def _refuse_duplicate(self, source: str, external_no: str) -> None:
        existing = self._by_external.get((source, external_no))
        if existing is not None:
            raise Refusal(409, {"code": "DUPLICATE_EXTERNAL_NO", "caseId": existing})

    def _new_record(self, case_id: str, clean: dict[str, Any], now: datetime,
                    creator: str | None) -> _CaseRecord:
        fields = {
            "caseId": case_id, "caseNo": "", "source": clean["source"], "externalNo": clean["externalNo"],
            "eventType": clean["eventType"], "bigClass": clean["bigClass"],
            "smallClass": clean["smallClass"], "description": clean["description"],
            "address": clean["address"], "gridCode": grid_code(clean["x"], clean["y"]),
            "x": clean["x"], "y": clean["y"], "status": "01", "deptName": "", "deadline": "",
            "reportTime": clean["reportTime"], "updateTime": fmt(now), "version": 1,
            "photos": clean["photos"], "handleResult": "", "verifyResult": None,
        }
        record = _CaseRecord(fields, creator, reporter=clean["reporter"])
        self._cases[case_id] = record
        if clean["externalNo"]:
            self._by_external[(clean["source"], clean["externalNo"])] = case_id
        return record

    def _inspector_fields(self, body: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Lenient reading of a case filed inside the platform; taxonomy and x/y still checked."""
        source = str(body.get("source") or "01")
        if source not in SOURCES:
            raise invalid_field("source")
        big_class = str(body.get("bigClass") or "05")
        if big_class not in TAXONOMY:
            raise invalid_field("bigClass")
        small_classes = TAXONOMY[big_class][1]
        small_class = str(body.get("smallClass") or next(iter(small_classes)))
        if small_class not in small_classes:
            raise invalid_field("smallClass")
        x, y = body.get("x"), body.get("y")
        if (x is None) != (y is None):
            raise invalid_field("y" if y is None else "x")
        for name, value, bounds in (("x", x, X_RANGE), ("y", y, Y_RANGE)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not bounds[0] <= value <= bounds[1]):
                raise invalid_field(name)
        report_time = now
        if body.get("reportTime"):
            try:
                report_time = parse_time(body["reportTime"], "reportTime")
            except FieldError as exc:
                raise invalid_field(exc.field) from None
        return {
            "source": source, "externalNo": str(body.get("externalNo") or ""),
            "eventType": "1" if big_class.startswith("1") else "2", "bigClass": big_class,
            "smallClass": small_class, "description": str(body.get("description") or ""),
            "address": str(body.get("address") or ""),
            "x": None if x is None else float(x), "y": None if y is None else float(y),
            "reportTime": fmt(report_time), "reporter": str(body.get("reporter") or ""),
            "photos": self._photos(body),
        }

    def _enter(self, record: _CaseRecord, status: str, now: datetime, body: dict[str, Any]) -> None:
        """Put a case into ``status`` with the side effects the platform attaches to it."""
        fields = record.fields
        fields["status"] = status
        if status != "08" and not fields["caseNo"] and status != "01":
            self._case_no_seq += 1
            fields["caseNo"] = f"{now:%Y%m}{self._case_no_seq:07d}"
        if body.get("deptName"):
            fields["deptName"] = str(body["deptName"])
        if body.get("handleResult"):
            fields["handleResult"] = str(body["handleResult"])
        if status == "03":
            fields["deptName"] = fields["deptName"] or DEFAULT_DEPARTMENTS[fields["bigClass"]]
            record.dispatched_at = now
            fields["deadline"] = fmt(deadline_for(fields["smallClass"], status, now))
        elif status == "04" and record.dispatched_at is not None:
            fields["deadline"] = fmt(deadline_for(fields["smallClass"], status, record.dispatched_at))
        elif status in ("06", "09"):
            self._verified(record, "PASS" if status == "06" else "FAIL")
        elif status == "07":
            record.close_due = None

    def _verified(self, record: _CaseRecord, result: str) -> None:
        record.fields["verifyResult"] = result
        record.fields["status"] = "06" if result == "PASS" else "09"
        if result == "PASS":
            record.close_due = local_now(self.clock) + timedelta(seconds=self.close_after_s)

    def _require_state(self, record: _CaseRecord, allowed: tuple[str, ...]) -> None:
        if record.fields["status"] not in allowed:
            raise Refusal(409, {"code": "INVALID_STATE", "status": record.fields["status"]})

    def _touch(self, record: _CaseRecord) -> None:
        record.fields["version"] += 1
        record.fields["updateTime"] = fmt(local_now(self.clock))

    def _note(self, record: _CaseRecord, op: str, text: str, **extra: Any) -> None:
        record.notes.append({"op": op, "text": text, "time": fmt(local_now(self.clock)), **extra})

    @staticmethod
    def _photos(body: dict[str, Any]) -> list[str]:
        try:
            return photos_of(body)
        except FieldError as exc:
            raise invalid_field(exc.field) from None

    def _legacy_id(self) -> str:
        self._legacy_seq += 1
        return f"c{self._legacy_seq:07d}-{secrets.token_hex(4)}"
