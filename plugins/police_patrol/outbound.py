"""Police outbound: a canonical status the hub wants becomes one feedback (反馈) on a 警情.

The police take feedback only on a 警情 handed over to a linkage department (``06``), and a
``BJ`` (办结) only once (shared/world/police_patrol.md, "Feedback: hub → police"). Delivering a
``status`` effect:

1. **Plan** (no call): ``FKLX`` is the mapping's action (``JS``/``CZ``/``BJ``); ``FKNR`` the
   handling department's words, or a fixed sentence for ``JS``/``CZ`` (never for ``BJ``: the
   hub does not report work done without the department's own text); ``FKSJ`` the effect's
   ``changed_at`` in +08:00; ``FKDW`` the gateway's unit. Anything missing is a mapping error.
2. **Send** ``POST /ldpt/api/feedback``. ``FKSJ`` is the hub change's time, not the send time,
   so every retry of one effect is the same ``JJDBH``+``FKLX``+``FKSJ``: the police answer a
   repeat after a lost answer with ``DUPLICATE_FEEDBACK`` (checked before the state), which is
   a success.
3. On ``INVALID_STATE`` the spec's answer "not in 06" does not say whether the feedback is
   still owed, so **re-read** the 警情 (``GET /ldpt/api/jq/{JJDBH}``) and decide: ``01``–``04``
   may still be handed over (retry later); ``05``/``09``/``99`` finished without a handover
   owe nothing (refused for good, naming the state). In ``06`` the state allows feedback now
   (it moved in meanwhile): send once more; a second ``INVALID_STATE`` in ``06`` means the one
   ``BJ`` the police accept is already taken, which holds the effect. A ``09`` reached from
   ``06`` (``YJDW`` set) was closed after an accepted ``BJ`` as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import requests

from adapters.base import AdapterError, AuthError, PermanentError
from adapters.http import raise_for_transport
from hub.facade import OP_STATUS, DeliveryError, DeliveryResult, OutboundEffect, text_of

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # the police wire format's offset
FEEDBACK_PATH = "/ldpt/api/feedback"
INCIDENT_PATH = "/ldpt/api/jq"
DEFAULT_UNIT = "网格化综合管理中心"

# JQZTDM, as the spec names it
STATUS_LABELS: dict[str, str] = {
    "01": "已接警",
    "02": "已派警",
    "03": "已到场",
    "04": "处置中",
    "05": "处置完毕",
    "06": "已移交联动单位",
    "09": "已结束",
    "99": "无效警情",
}
FEEDBACK_LABELS: dict[str, str] = {"JS": "已接收", "CZ": "处置进展", "BJ": "办结"}
# FKNR is required; for a receipt or a progress report without the department's words the hub
# can speak for itself. A 办结 it cannot.
DEFAULT_TEXTS: dict[str, str] = {
    "JS": "网格化综合管理中心已接收，已转相关部门处置。",
    "CZ": "相关部门正在处置。",
}
HANDED_OVER = "06"
NOT_YET_HANDED_OVER = frozenset({"01", "02", "03", "04"})
FINISHED = frozenset({"05", "09", "99"})
CLOSED_AFTER_BJ = "09"  # from 06 only after an accepted BJ
DUPLICATE, NOT_FOUND, INVALID_STATE = "DUPLICATE_FEEDBACK", "JQ_NOT_FOUND", "INVALID_STATE"

Call = Callable[[str, str, Mapping[str, Any] | None], requests.Response]
"""``(method, path, json body)`` → the police API's answer, sent with the gateway's token."""


@dataclass(frozen=True)
class Feedback:
    """One feedback body, checked: what ``POST /ldpt/api/feedback`` receives."""

    jjdbh: str
    fklx: str
    fknr: str
    fksj: str
    fkdw: str

    def body(self) -> dict[str, str]:
        return {"JJDBH": self.jjdbh, "FKLX": self.fklx, "FKNR": self.fknr, "FKSJ": self.fksj,
                "FKDW": self.fkdw}

    @property
    def where(self) -> str:
        return f"police {self.fklx} {self.jjdbh}"


def feedback_time(changed_at: Any) -> str:
    """``FKSJ``: the hub change's instant (ISO 8601; zone-less is read as UTC, as the facade
    documents it) in +08:00 to the second. Raises ``ValueError`` when it is no time at all."""
    if not isinstance(changed_at, str) or not changed_at.strip():
        raise ValueError("missing")
    moment = datetime.fromisoformat(changed_at.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def plan_feedback(effect: OutboundEffect, unit: str) -> Feedback:
    """The feedback a ``status`` effect asks for; ``DeliveryError(kind="mapping")`` when it
    cannot be expressed in the police's terms (nothing is invented for the department)."""
    if effect.operation != OP_STATUS:
        raise DeliveryError(f"police delivers only '{OP_STATUS}' effects, not {effect.operation!r}", "mapping")
    payload = effect.payload
    jjdbh, status = text_of(payload, "external_id"), text_of(payload, "status") or "?"
    if not jjdbh:
        raise DeliveryError("police status effect without external_id (接警单编号 JJDBH)", "mapping")
    spec = payload.get("action")
    name = spec.get("action") if isinstance(spec, Mapping) else spec
    fklx = name.strip().upper() if isinstance(name, str) else ""
    if fklx not in FEEDBACK_LABELS:
        got = f"{fklx!r}" if fklx else "none"
        raise DeliveryError(f"police {jjdbh}: the mapping's action for status {status} is {got}; the police "
                            f"know {', '.join(FEEDBACK_LABELS)} (status_map.outbound)", "mapping")
    fknr = text_of(payload, "result_text") or DEFAULT_TEXTS.get(fklx, "")
    if not fknr:
        raise DeliveryError(f"police BJ {jjdbh}: the handling department's result text is missing (FKNR); "
                            f"the hub never reports 办结 without the department's own words", "mapping")
    try:
        fksj = feedback_time(payload.get("changed_at"))
    except ValueError:
        raise DeliveryError(f"police {fklx} {jjdbh}: changed_at is missing or not an ISO 8601 time "
                            f"(FKSJ must be the hub change's time, the same on every retry)", "mapping") from None
    if not unit.strip():
        raise DeliveryError("police: setting feedback_unit (FKDW) is empty", "mapping")
    return Feedback(jjdbh=jjdbh, fklx=fklx, fknr=fknr, fksj=fksj, fkdw=unit.strip())


def describe(code: str) -> str:
    label = STATUS_LABELS.get(code)
    return f"{code} ({label})" if label else repr(code)


def settle(feedback: Feedback, code: str) -> DeliveryResult | None:
    """The result of a business answer (``""``: taken); None for ``INVALID_STATE``, which
    needs the 警情's state to decide. Raises a permanent ``DeliveryError`` for a refusal."""
    if not code:
        return DeliveryResult(ok=True, detail=f"{feedback.fklx} taken (FKSJ {feedback.fksj})",
                              external_ref=feedback.jjdbh)
    if code == DUPLICATE:
        return DeliveryResult(ok=True, detail=f"{feedback.fklx} was already taken (DUPLICATE_FEEDBACK, "
                                              f"FKSJ {feedback.fksj})", external_ref=feedback.jjdbh)
    if code == NOT_FOUND:
        raise DeliveryError(f"{feedback.where}: 警情 unknown to the police (JQ_NOT_FOUND)", "permanent")
    if code == INVALID_STATE:
        return None
    raise DeliveryError(f"{feedback.where}: refused by the police ({code})", "permanent")


def after_invalid_state(feedback: Feedback, jq: Mapping[str, Any], resent: bool) -> DeliveryResult | None:
    """What ``INVALID_STATE`` means for a 警情 now in ``jq``: None to send once more (it is in
    06 now); a result when the feedback is done or not owed; ``DeliveryError`` otherwise."""
    state = str(jq.get("JQZTDM") or "")
    handed_over = bool(jq.get("YJDW"))
    bj_taken = DeliveryResult(ok=True, external_ref=feedback.jjdbh,
                              detail=f"BJ was already taken: the police accept one 办结 per 警情 "
                                     f"(now {describe(state)})")
    if state == HANDED_OVER:
        if not resent:
            return None
        if feedback.fklx == "BJ":
            return bj_taken
        raise DeliveryError(f"{feedback.where}: INVALID_STATE although the 警情 is {describe(state)}",
                            "transient")
    if state in NOT_YET_HANDED_OVER:
        raise DeliveryError(f"{feedback.where}: not handed over yet, the 警情 is {describe(state)}; "
                            f"feedback is taken from 06 on and the handover may still come", "transient")
    if feedback.fklx == "BJ" and state == CLOSED_AFTER_BJ and handed_over:
        return bj_taken
    if state in FINISHED:
        how = "after the handover" if handed_over else "without a handover"
        return DeliveryResult(ok=False, external_ref=feedback.jjdbh,
                              detail=f"{feedback.where}: feedback not owed, the 警情 is {describe(state)}, "
                                     f"finished by the police {how}")
    raise DeliveryError(f"{feedback.where}: INVALID_STATE at a state the spec does not name: {describe(state)}",
                        "permanent")


def _answer(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


class FeedbackWriter:
    """Applies ``status`` effects as police feedback through ``call`` (which authenticates)."""

    def __init__(self, call: Call, unit: str = DEFAULT_UNIT, secrets: Sequence[str] = ()) -> None:
        self.call = call
        self.unit = unit
        self.secrets = tuple(secrets)  # scrubbed from answer excerpts in messages

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        feedback = plan_feedback(effect, self.unit)
        try:
            return self._send(feedback)
        except AdapterError as exc:
            raise _delivery_error(feedback, exc) from None

    def _send(self, feedback: Feedback) -> DeliveryResult:
        resent = False
        while True:
            result = settle(feedback, self._post(feedback))
            if result is not None:
                return result
            # spec: INVALID_STATE = "not in 06"; whether the feedback is owed depends on where it is
            result = after_invalid_state(feedback, self.read(feedback.jjdbh), resent)
            if result is not None:
                return result
            resent = True

    def _post(self, feedback: Feedback) -> str:
        """The business answer's ``errorCode`` (``""`` when taken); raises for HTTP errors."""
        resp = self.call("POST", FEEDBACK_PATH, feedback.body())
        data = _answer(resp)
        if resp.status_code == 400 and isinstance(data, dict) and data.get("errorCode") == "INVALID_PARAM":
            raise DeliveryError(f"{feedback.where}: the police refused field {data.get('field') or '?'} "
                                f"(INVALID_PARAM)", "permanent")
        raise_for_transport(resp, secrets=self.secrets)
        if not isinstance(data, dict):
            raise PermanentError(f"POST {FEEDBACK_PATH}: HTTP {resp.status_code} answer is not a JSON object")
        if data.get("success") is True:
            return ""
        code = data.get("errorCode")
        return code if isinstance(code, str) and code else "no errorCode"

    def read(self, jjdbh: str) -> Mapping[str, Any]:
        """The 警情's current ``jq``; a vanished one is a permanent error."""
        resp = self.call("GET", f"{INCIDENT_PATH}/{quote(jjdbh, safe='')}", None)
        data = _answer(resp)
        if resp.status_code == 404 and isinstance(data, dict) and data.get("errorCode") == NOT_FOUND:
            raise PermanentError(f"GET {INCIDENT_PATH}/…: 警情 unknown to the police (JQ_NOT_FOUND)")
        raise_for_transport(resp, secrets=self.secrets)
        jq = data.get("jq") if isinstance(data, dict) else None
        if not isinstance(jq, dict):
            raise PermanentError(f"GET {INCIDENT_PATH}/…: answer without jq")
        return jq


def _delivery_error(feedback: Feedback, exc: AdapterError) -> DeliveryError:
    """The adapter's classified error as the outbox's (messages hold no token: the adapters
    scrub it and never put headers into messages)."""
    if exc.kind == "transient":
        return DeliveryError(f"{feedback.where}: {exc}", "transient", exc.retry_after)
    if isinstance(exc, AuthError):
        return DeliveryError(f"{feedback.where}: feedback token refused: {exc}", "permanent")
    return DeliveryError(f"{feedback.where}: {exc}", "permanent")


__all__ = ["DEFAULT_TEXTS", "DEFAULT_UNIT", "FEEDBACK_LABELS", "STATUS_LABELS", "Feedback", "FeedbackWriter",
           "after_invalid_state", "feedback_time", "plan_feedback", "settle"]
