"""数字城管 outbound: cases the hub creates, and the operations it may perform on cases.

* ``create`` → ``POST /dcm/api/cases`` under ``source`` 07 (网格上报) or 03 (12345转办). The
  platform de-duplicates on ``source`` + ``externalNo``: the second create of one number, ours
  after a lost answer or ours after the hotline's own transfer of the same ``gdbh``, is answered
  409 ``DUPLICATE_EXTERNAL_NO`` with the existing ``caseId``, which is a success. The category
  becomes ``smallClass`` through the mapping's ``outbound_codes.category`` (``bigClass`` is its
  first two digits, ``eventType`` 1 部件 for codes starting with 1, else 2 事件); the WGS-84
  location becomes EPSG:4549 metres, ``x`` = northing, ``y`` = easting.
* ``status`` → ``VERIFY`` (the mapping's ``args.result`` PASS/FAIL) or ``CANCEL``; ``note`` →
  ``SUPPLEMENT``; ``merge`` → ``CANCEL`` while the case is still at 01, else ``SUPPLEMENT``.

Every operation reads the case first and decides from its status by the spec's table: an effect
that already holds is a success without a call (a repeat after a lost answer, or 核查 done
already), one the case cannot take yet (``VERIFY`` before 05) is transient, one it can never take
is permanent or, for a note on a closed case, refused (``ok=False``). ``CANCEL`` is the creating
client's only: answered 403 ``NOT_CREATOR``, or asked of a case past 01, the hub supplements the
case with its reason instead, so the platform's people read why. A 409 ``INVALID_STATE`` (the case
moved between our read and our call) is re-read once and decided again.

``SUPPLEMENT`` has no request memory on the platform: a retry after a lost answer may add the
text twice (at least once). ``VERIFY`` and ``CANCEL`` are safe to retry: the re-read sees them done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any, Protocol
from urllib.parse import quote

from adapters.base import AdapterError, AuthError
from hub.facade import (
    OP_CREATE,
    OP_MERGE,
    OP_NOTE,
    OP_STATUS,
    DeliveryError,
    DeliveryResult,
    EffectPayload,
    OutboundEffect,
    mapping_error,
    text_of,
)
from mappings.datum import wgs84_to_epsg4549
from mappings.document import MappingDocument
from mappings.engine import outbound_code
from mappings.errors import MappingError

OPERATIONS = (OP_STATUS, OP_CREATE, OP_NOTE, OP_MERGE)  # what deliver() applies
CASES_PATH = "/dcm/api/cases"
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # the spec's local time, no zone
SOURCES = ("07", "03")  # the only sources a client may create under
X_RANGE = (2_000_000.0, 6_000_000.0)  # spec: plausible EPSG:4549 northing
Y_RANGE = (340_000.0, 660_000.0)  # spec: plausible easting (500 000 m false easting)
COORDINATE_DECIMALS = 3  # millimetres

STATUS_LABELS = {
    "01": "上报待立案",
    "02": "已立案",
    "03": "已派遣",
    "04": "处置中",
    "05": "处置完成待核查",
    "06": "核查通过",
    "07": "已结案",
    "08": "已作废",
    "09": "回退返工",
    "10": "挂账",
}
CLOSED = frozenset({"07", "08"})  # SUPPLEMENT is refused there
DEPARTMENT_WORKING = frozenset({"01", "02", "03", "04"})  # not at 05 yet
REWORK = frozenset({"09", "03", "04"})  # where a case goes after VERIFY FAIL
VERIFY_RESULTS = ("PASS", "FAIL")

DUPLICATE, INVALID_FIELD, INVALID_STATE, NOT_CREATOR, NOT_FOUND = (
    "DUPLICATE_EXTERNAL_NO", "INVALID_FIELD", "INVALID_STATE", "NOT_CREATOR", "NOT_FOUND")

# The words sent when the effect brings none (the platform's people read them).
DEFAULT_VERIFY_TEXT = {"PASS": "网格员现场核查：问题已处置到位。", "FAIL": "网格员现场核查：问题未处置到位，请返工。"}
DEFAULT_CANCEL_REASON = "网格中心撤销该事项。"
CANCEL_SUPPLEMENT_PREFIX = "网格中心已撤销该事项，请核实后作废："
DEFAULT_PHOTO_NOTE = "补充现场照片。"


@dataclass(frozen=True)
class Answer:
    """The platform's own answer to one call: HTTP status and its JSON object."""

    status: int
    body: Mapping[str, Any]

    @property
    def code(self) -> str:
        value = self.body.get("code")
        return value if isinstance(value, str) else ""


class CaseApi(Protocol):
    """What the writer needs from the connector: one authorized call, answered by the platform.

    Answers the platform gives in its own words (2xx, and 4xx with a JSON ``code``) come back as
    an ``Answer``; 401 after a token renewal, 429, 5xx and transport trouble raise the adapters'
    classified errors."""

    def exchange(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer: ...


@dataclass(frozen=True)
class Operation:
    """One ``POST /cases/{caseId}/operations`` to send; ``detail`` says what it does."""

    op: str
    body: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""


# A plan decides from the case as just read (and whether CANCEL was refused as NOT_CREATOR):
# the operation to send, or the result without a call. It raises DeliveryError to give up.
Plan = Callable[[Mapping[str, Any], bool], Operation | DeliveryResult]


def describe(status: str) -> str:
    label = STATUS_LABELS.get(status)
    return f"{status} ({label})" if label else repr(status)


# ----- create -------------------------------------------------------------------------------------


def small_class(mapping: Any, category: str, where: str) -> str:
    """``smallClass`` of canonical ``category`` (``outbound_codes.category``); a category without
    one is no city-management matter: a mapping error, never a guess."""
    if not isinstance(mapping, MappingDocument):
        raise mapping_error(where, "no active mapping document to turn the category into a smallClass")
    try:
        code = outbound_code(mapping, "category", category)
    except MappingError as exc:
        raise mapping_error(where, f"category {category or '(none)'} is no 数字城管 matter: {exc}") from None
    if len(code) != 4 or not code.isdigit():
        raise mapping_error(where, f"outbound_codes.category gives {code!r} for {category}; a smallClass "
                                    f"is four digits")
    return code


def plane_coordinates(location: Any, where: str) -> dict[str, float]:
    """``{"x": northing, "y": easting}`` in EPSG:4549 for a WGS-84 ``{"lng", "lat"}``; ``{}``
    without a location (the spec wants both or neither)."""
    if location is None:
        return {}
    try:
        lng, lat = float(location["lng"]), float(location["lat"])
        northing, easting = wgs84_to_epsg4549(lng, lat)
    except (TypeError, KeyError, ValueError):
        raise mapping_error(where, f"location is not {{lng, lat}} in degrees: {location!r}") from None
    if not (X_RANGE[0] <= northing <= X_RANGE[1] and Y_RANGE[0] <= easting <= Y_RANGE[1]):
        raise mapping_error(where, f"location ({lng}, {lat}) lies outside the platform's plane (EPSG:4549, "
                                    f"3-degree zone at 120°E): x {northing:.0f}, y {easting:.0f}")
    return {"x": round(northing, COORDINATE_DECIMALS), "y": round(easting, COORDINATE_DECIMALS)}


def case_body(effect: OutboundEffect) -> dict[str, Any]:
    """The ``POST /dcm/api/cases`` body of a ``create`` effect; ``DeliveryError(kind="mapping")``
    when the effect lacks what the platform requires or cannot be put in its terms."""
    payload = effect.payload
    read = EffectPayload(payload, f"数字城管 create {text_of(payload, 'external_no') or '?'}")
    where = read.where
    external_no = read.required("external_no", "create effect without external_no (externalNo)")
    source = read.one_of("source", SOURCES, "is not one a client may create under")
    description = read.required("description", "create effect without a description (required by the platform)")
    code = small_class(effect.mapping, read.text("category"), where)
    body: dict[str, Any] = {
        "source": source,
        "externalNo": external_no,
        "eventType": "1" if code.startswith("1") else "2",  # 部件 codes start with 1
        "bigClass": code[:2],
        "smallClass": code,
        "description": description,
        **plane_coordinates(payload.get("location"), where),
    }
    optional = {"address": read.text("address"), "reporter": read.text("reporter"),
                "reportTime": read.local_time("reported_at", TIME_FORMAT, SHANGHAI),
                "photos": read.photos()}
    body.update({name: value for name, value in optional.items() if value})
    return body


def created(answer: Answer, where: str) -> DeliveryResult:
    """201 (a new case) or 409 ``DUPLICATE_EXTERNAL_NO`` (the earlier create went through)."""
    case_id = answer.body.get("caseId")
    if answer.status == 201 or (answer.status == 409 and answer.code == DUPLICATE):
        if not isinstance(case_id, str) or not case_id:
            raise DeliveryError(f"{where}: answer {answer.status} without a caseId", "permanent")
        if answer.status == 201:
            return DeliveryResult(ok=True, detail=f"created {case_id}", external_ref=case_id)
        return DeliveryResult(ok=True, detail=f"already existed as {case_id} ({DUPLICATE})", external_ref=case_id)
    if answer.code == INVALID_FIELD:
        field_name = answer.body.get("field") or "?"
        raise DeliveryError(f"{where}: the platform refused field {field_name} (422 {INVALID_FIELD})",
                            "permanent")
    raise refused(where, answer)


# ----- operations on a case -----------------------------------------------------------------------


def status_plan(payload: Mapping[str, Any], where: str) -> Plan:
    """The plan of a ``status`` effect: the mapping's ``VERIFY`` or ``CANCEL``."""
    spec = payload.get("action")
    if isinstance(spec, str):
        spec = {"action": spec}
    status = text_of(payload, "status") or "?"
    if not isinstance(spec, Mapping) or not spec.get("action"):
        raise mapping_error(where, f"the mapping has no outbound action for status {status} (status_map.outbound)")
    action = str(spec["action"]).strip().upper()
    args = spec.get("args") or {}
    if not isinstance(args, Mapping):
        raise mapping_error(where, f"args of action {action} are not a mapping")
    if action == "VERIFY":
        result = str(args.get("result", "")).strip().upper()
        if result not in VERIFY_RESULTS:
            raise mapping_error(where, f"VERIFY needs args.result PASS or FAIL, got {result or 'none'}")
        # the verifying grid worker's words (reason) first; else the result text; else a default
        text = text_of(payload, "reason") or text_of(payload, "result_text") or DEFAULT_VERIFY_TEXT[result]
        return verify_plan(result, text, where)
    if action == "CANCEL":
        reason = text_of(payload, "reason") or DEFAULT_CANCEL_REASON
        return cancel_plan(reason, f"{CANCEL_SUPPLEMENT_PREFIX}{reason}")
    raise mapping_error(where, f"unknown action {action!r} for status {status} (数字城管 takes VERIFY and CANCEL "
                                f"from status_map.outbound)")


def verify_plan(result: str, text: str, where: str) -> Plan:
    """``VERIFY`` at 05. Already verified the same way: done. Before 05 (or back in rework for a
    PASS): the department is still working, transient. Anything else: permanent."""

    def plan(case: Mapping[str, Any], _creator: bool) -> Operation | DeliveryResult:
        status = str(case.get("status") or "")
        if status == "05":
            return Operation("VERIFY", {"result": result, "text": text}, f"VERIFY {result}")
        if verified_already(result, case):
            return nothing_sent(case, status)
        if status in DEPARTMENT_WORKING or (result == "PASS" and status == "09"):
            raise DeliveryError(f"{where}: VERIFY {result} waits for 05 (处置完成待核查); the case is at "
                                f"{describe(status)}, the department is still working", "transient")
        raise DeliveryError(f"{where}: VERIFY {result} is not possible at {describe(status)}; the spec allows "
                            f"it at 05 only", "permanent")

    return plan


def verified_already(result: str, case: Mapping[str, Any]) -> bool:
    """Whether the case shows ``VERIFY result`` done: PASS leads to 06 and on to 07; FAIL to 09
    and, by the centre, back to 03/04 with ``verifyResult`` FAIL."""
    status = case.get("status")
    if result == "PASS":
        return status in ("06", "07")
    return status in REWORK and case.get("verifyResult") == "FAIL"


def cancel_plan(reason: str, supplement_text: str) -> Plan:
    """``CANCEL`` while the case is at 01 and ours; otherwise ``SUPPLEMENT`` with the reason (the
    spec lets only the creating client cancel, and only before 立案). Already 08: done. Closed
    (07): the platform works on it no more and takes no note; nothing is owed, so done as well."""

    def plan(case: Mapping[str, Any], creator: bool) -> Operation | DeliveryResult:
        status = str(case.get("status") or "")
        if status in CLOSED:
            return nothing_sent(case, status)
        if status == "01" and creator:
            return Operation("CANCEL", {"reason": reason}, "CANCEL")
        why = "not the creating client" if status == "01" else f"past 01 at {describe(status)}"
        return Operation("SUPPLEMENT", {"text": supplement_text}, f"SUPPLEMENT (cannot cancel: {why})")

    return plan


def note_plan(text: str, photos: list[str], where: str) -> Plan:
    """``SUPPLEMENT``; a closed case (07/08) takes no note: refused for good (``ok=False``)."""

    def plan(case: Mapping[str, Any], _creator: bool) -> Operation | DeliveryResult:
        status = str(case.get("status") or "")
        if status in CLOSED:
            return DeliveryResult(ok=False, detail=f"{where}: no note on a closed case: {describe(status)}",
                                  external_ref=str(case.get("caseId") or "") or None)
        body: dict[str, Any] = {"text": text, **({"photos": photos} if photos else {})}
        return Operation("SUPPLEMENT", body, "SUPPLEMENT")

    return plan


def nothing_sent(case: Mapping[str, Any], status: str) -> DeliveryResult:
    return DeliveryResult(ok=True, detail=f"nothing sent: already {describe(status)}",
                          external_ref=str(case.get("caseId") or "") or None)


def refused(where: str, answer: Answer) -> DeliveryError:
    """An answer no plan expects: permanent, naming the platform's code."""
    shown = answer.code or "no code"
    extra = answer.body.get("field") or answer.body.get("status")
    return DeliveryError(f"{where}: refused by 数字城管: HTTP {answer.status} {shown}"
                         + (f" ({extra})" if extra else ""), "permanent")


def delivery_error(where: str, exc: AdapterError) -> DeliveryError:
    """The adapter's classified error as the outbox's; messages never hold the secret or token."""
    if exc.kind == "transient":
        return DeliveryError(f"{where}: {exc}", "transient", exc.retry_after)
    if isinstance(exc, AuthError):
        return DeliveryError(f"{where}: the OAuth2 client or its token was refused: {exc}", "permanent")
    return DeliveryError(f"{where}: {exc}", "permanent")


# ----- the writer ---------------------------------------------------------------------------------


class CaseWriter:
    """Applies outbound effects to 数字城管 through ``CaseApi``."""

    def __init__(self, api: CaseApi) -> None:
        self.api = api

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """One effect: a create, or an operation decided from the case as the platform has it."""
        if effect.operation == OP_CREATE:
            return self.create(effect)
        if effect.operation not in OPERATIONS:
            raise mapping_error("数字城管", f"takes {', '.join(OPERATIONS)} effects, not {effect.operation!r}")
        payload = effect.payload
        case_id = text_of(payload, "external_id")
        where = f"数字城管 {effect.operation} {case_id or '?'}"
        if not case_id:
            raise mapping_error(where, f"{effect.operation} effect without external_id (caseId)")
        plan = self._plan(effect.operation, payload, where)
        try:
            return self._walk(case_id, plan, where)
        except AdapterError as exc:
            raise delivery_error(where, exc) from None

    def create(self, effect: OutboundEffect) -> DeliveryResult:
        """``POST /dcm/api/cases``; the duplicate answer is the earlier create's success."""
        body = case_body(effect)
        where = f"数字城管 create {body['source']}/{body['externalNo']}"
        try:
            answer = self.api.exchange("POST", CASES_PATH, body)
        except AdapterError as exc:
            raise delivery_error(where, exc) from None
        return created(answer, where)

    @staticmethod
    def _plan(operation: str, payload: Mapping[str, Any], where: str) -> Plan:
        if operation == OP_STATUS:
            return status_plan(payload, where)
        if operation == OP_NOTE:
            photos = EffectPayload(payload, where).photos()
            text = text_of(payload, "text") or (DEFAULT_PHOTO_NOTE if photos else "")
            if not text:
                raise mapping_error(where, "note effect without text or photos (SUPPLEMENT needs a text)")
            return note_plan(text, photos, where)
        master = text_of(payload, "master_case_number") or text_of(payload, "master_external_id")
        text = text_of(payload, "text") or (f"与 {master} 为同一事件，重复上报。" if master else "重复上报。")
        return cancel_plan(text, text)

    def _walk(self, case_id: str, plan: Plan, where: str) -> DeliveryResult:
        """Read, decide, send. ``NOT_CREATOR`` decides again as a non-creator; ``INVALID_STATE``
        (the case moved since our read) re-reads once and decides again."""
        case = self.read(case_id, where)
        creator, re_read = True, False
        while True:
            decided = plan(case, creator)
            if isinstance(decided, DeliveryResult):
                return decided
            answer = self.api.exchange("POST", f"{CASES_PATH}/{quote(case_id, safe='')}/operations",
                                       {"op": decided.op, **decided.body})
            if answer.status == 200:
                return DeliveryResult(ok=True, detail=decided.detail, external_ref=case_id)
            if answer.code == NOT_CREATOR and creator:
                creator = False
            elif answer.code == INVALID_STATE and not re_read:
                case, re_read = self.read(case_id, where), True
            elif answer.code == INVALID_STATE:
                raise DeliveryError(f"{where}: {decided.op} refused again after a re-read (the case is moving, "
                                    f"at {describe(str(answer.body.get('status') or ''))})", "transient")
            else:
                raise refused(f"{where} {decided.op}", answer)

    def read(self, case_id: str, where: str) -> Mapping[str, Any]:
        """The case as the platform has it now; unknown → permanent."""
        answer = self.api.exchange("GET", f"{CASES_PATH}/{quote(case_id, safe='')}")
        if answer.status == 404:
            raise DeliveryError(f"{where}: the platform does not know case {case_id} (404 {NOT_FOUND})", "permanent")
        if answer.status != 200 or not isinstance(answer.body.get("status"), str):
            raise DeliveryError(f"{where}: reading the case answered {answer.status} without a status", "permanent")
        return answer.body


__all__ = ["OPERATIONS", "STATUS_LABELS", "Answer", "CaseApi", "CaseWriter", "Operation", "cancel_plan",
           "case_body", "note_plan", "plane_coordinates", "verified_already", "verify_plan"]
