"""12345 outbound: a canonical status the hub wants becomes the gateway actions the spec allows.

One ``status`` effect names the work order (``gdbh``), the canonical target status and the
mapping's action for it (``QS``/``YQ``/``BJ``/``TD``/``CF``, ``BC`` too). Delivering it:

1. **Read** the order (``GET /workorders/{gdbh}``): its ``zt``, ``version`` and ``cbdw``.
2. **Plan** from the spec's state table: nothing when the order is already at the target or
   beyond it (an idempotent repeat, or the echo of a change made in 12345 itself); the action
   alone when the order is where the action starts; ``QS`` 签收 first when the order still
   waits at ``20`` for a signature (``BJ``/``YQ``/``BC`` start at ``30``); otherwise a
   permanent refusal that names the state.
3. **Check** every planned step's fields before the first call (``BJ`` needs the handling
   department's own result text of ≥ 10 chars, ``TD``/``YQ`` a reason, ``CF`` the master):
   a missing one is a mapping error, and no step has been sent.
4. **Act**: one ``POST /workorders/{gdbh}/actions`` per step with ``expectedVersion`` of the
   snapshot just read (or answered by the previous step) and ``X-Request-Id`` = the effect's
   idempotency key (walked steps: ``{key}:{step}``), so a repeat after a lost answer is
   answered from the system's memory and done once.
5. On ``4009`` (version conflict) or ``4002`` (state does not allow it) the spec says
   "re-read, then decide": re-read once and plan again. The retried step's id carries the
   version (``{id}@v{version}``) because the system also remembers refusals by request id,
   and answers a repeated id with the first answer. A second conflict is transient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from adapters.base import AdapterError, AuthError, BusinessError, PermanentError
from adapters.signed_rest import SignedJsonClient
from hub.facade import OP_MERGE, OP_NOTE, OP_STATUS, DeliveryError, DeliveryResult, OutboundEffect, text_of

STATUS_OPERATION = OP_STATUS
OPERATIONS = (OP_STATUS, OP_NOTE, OP_MERGE)  # what deliver() applies
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China
CZSJ_FORMAT = "%Y-%m-%d %H:%M:%S"

# zt, as the spec names it
STATUS_LABELS: dict[str, str] = {
    "10": "已受理待派单",
    "20": "已派单待签收",
    "30": "办理中",
    "35": "延期办理中",
    "40": "已办结待回访",
    "50": "已回访归档",
    "60": "已退单",
    "70": "已撤销",
    "80": "重复件",
}
ACTION_LABELS: dict[str, str] = {"QS": "签收", "BC": "补充办理情况", "YQ": "申请延期", "BJ": "办结",
                                 "TD": "退单", "CF": "标记重复件"}
# The spec's action table: the statuses each action starts from.
STARTS_FROM: dict[str, frozenset[str]] = {
    "QS": frozenset({"20"}),
    "BC": frozenset({"30", "35"}),
    "YQ": frozenset({"30"}),
    "BJ": frozenset({"30", "35"}),
    "TD": frozenset({"20", "30"}),
    "CF": frozenset({"20", "30"}),
}
# Where the action's effect already holds: at its target or beyond it. 80 (merged into a
# master) is final and the master carries on, so nothing but CF is owed to a 重复件.
ALREADY_DONE: dict[str, frozenset[str]] = {
    "QS": frozenset({"30", "35", "40", "50", "80"}),
    "BC": frozenset({"80"}),
    "YQ": frozenset({"35", "40", "50", "80"}),
    "BJ": frozenset({"40", "50", "80"}),
    "TD": frozenset({"60", "80"}),
    "CF": frozenset(),  # 80 only with the same master: see plan_steps
}
# Actions that start at 30: from 20 the gateway signs for the order first.
AFTER_QS = frozenset({"BC", "YQ", "BJ"})
BJ_TYPES = ("1", "2", "3")  # 已解决 / 部分解决 / 未解决已解释
BJ_MIN_TEXT = 10  # spec: BJ nr ≥ 10 chars
YQ_DAYS = (1, 15)  # spec: yqts 1..15
DEFAULT_YQ_DAYS = 5
# The common fields the plugin fills in; mapping args cannot override them.
COMMON_FIELDS = frozenset({"action", "expectedVersion", "cbdw", "czr", "czsj"})
CONFLICT, NOT_ALLOWED, NOT_FOUND = "4009", "4002", "4004"


class Refused(Exception):
    """The order's state rules the effect out (permanent)."""


@dataclass(frozen=True)
class StatusEffect:
    """A ``status`` effect's payload, checked."""

    gdbh: str
    status: str
    action: str
    args: Mapping[str, Any] = field(default_factory=dict)
    result_text: str = ""
    reason: str = ""
    master: str = ""
    yqts: Any = None


def parse_effect(effect: OutboundEffect) -> StatusEffect:
    """The effect's payload as a ``StatusEffect``; ``DeliveryError(kind="mapping")`` when it is
    not a status effect or names no action 12345 knows."""
    payload = effect.payload
    if effect.operation == OP_NOTE:  # a progress note is 补充办理情况
        return _as_status(payload, "BC", result_text=text_of(payload, "text"))
    if effect.operation == OP_MERGE:  # a duplicate is marked 重复件 against its master
        return _as_status(payload, "CF", status="DUPLICATE", master=text_of(payload, "master_external_id"),
                          reason=text_of(payload, "text"))
    if effect.operation != STATUS_OPERATION:
        raise DeliveryError(f"12345 delivers {', '.join(OPERATIONS)} effects, not {effect.operation!r}", "mapping")
    gdbh, status = text_of(payload, "external_id"), text_of(payload, "status")
    if not gdbh:
        raise DeliveryError("12345 status effect without external_id (工单编号 gdbh)", "mapping")
    spec = payload.get("action")
    if isinstance(spec, str):
        spec = {"action": spec}
    if not isinstance(spec, Mapping) or not spec.get("action"):
        raise DeliveryError(f"12345 {gdbh}: the mapping has no outbound action for status {status or '?'} "
                            f"(status_map.outbound)", "mapping")
    action = str(spec["action"]).strip().upper()
    if action not in STARTS_FROM:
        raise DeliveryError(f"12345 {gdbh}: unknown action {action!r} for status {status or '?'} "
                            f"(12345 knows {', '.join(STARTS_FROM)})", "mapping")
    args = spec.get("args") or {}
    if not isinstance(args, Mapping):
        raise DeliveryError(f"12345 {gdbh}: args of action {action} are not a mapping", "mapping")
    return StatusEffect(gdbh=gdbh, status=status, action=action, args=dict(args),
                        result_text=text_of(payload, "result_text"), reason=text_of(payload, "reason"),
                        master=text_of(payload, "master_external_id"), yqts=payload.get("yqts"))


def _as_status(payload: Mapping[str, Any], action: str, *, status: str = "", result_text: str = "",
               master: str = "", reason: str = "") -> StatusEffect:
    gdbh = text_of(payload, "external_id")
    if not gdbh:
        raise DeliveryError(f"12345 {action} effect without external_id (工单编号 gdbh)", "mapping")
    return StatusEffect(gdbh=gdbh, status=status, action=action, result_text=result_text, reason=reason,
                        master=master)


def describe(zt: str) -> str:
    label = STATUS_LABELS.get(zt)
    return f"{zt} ({label})" if label else repr(zt)


def plan_steps(effect: StatusEffect, zt: str, zgdbh: str | None) -> tuple[str, ...]:
    """The actions to send, in order, for an order at ``zt``; ``()`` when the effect already
    holds. Raises ``Refused`` when the spec allows no way from ``zt`` to the effect."""
    action = effect.action
    if action == "CF" and zt == "80":
        if (zgdbh or "") == effect.master:
            return ()
        raise Refused(f"already a 重复件 of {zgdbh}, not of {effect.master}")
    if zt in ALREADY_DONE[action]:
        return ()
    if zt in STARTS_FROM[action]:
        return (action,)
    if zt == "20" and action in AFTER_QS:
        return ("QS", action)
    starts = "/".join(sorted(STARTS_FROM[action]))
    raise Refused(f"{action} ({ACTION_LABELS[action]}) is not possible from {describe(zt)}; "
                  f"the spec allows it from {starts}")


def step_fields(step: str, effect: StatusEffect, default_yq_days: int) -> dict[str, Any]:
    """The fields ``step`` needs beyond the common ones; ``DeliveryError(kind="mapping")``
    when the effect lacks what the spec requires (nothing is invented for the department)."""
    where = f"12345 {effect.gdbh}"
    # The mapping's args belong to its own action, not to a step walked on the way.
    args = {k: v for k, v in effect.args.items() if k not in COMMON_FIELDS} if step == effect.action else {}
    given = args.get("nr")
    given_nr = given.strip() if isinstance(given, str) else ""
    if step == "QS":
        return args
    if step == "BJ":
        text = effect.result_text
        if len(text) < BJ_MIN_TEXT:
            got = f"only {len(text)} chars" if text else "none"
            raise DeliveryError(f"{where}: BJ (办结) needs the handling department's result text, at least "
                                f"{BJ_MIN_TEXT} chars (spec: nr); got {got}. The hub never reports work "
                                f"done without the department's own words", "mapping")
        bjlx = str(args.get("bjlx", "")).strip()
        if bjlx not in BJ_TYPES:
            raise DeliveryError(f"{where}: BJ needs bjlx 1/2/3 (已解决/部分解决/未解决已解释) in the mapping's "
                                f"args, got {bjlx or 'none'}", "mapping")
        return {**args, "nr": text, "bjlx": bjlx}
    if step in ("TD", "YQ"):
        nr = effect.reason or given_nr
        if not nr:
            label = "退单" if step == "TD" else "申请延期"
            raise DeliveryError(f"{where}: {step} ({label}) needs a reason (spec: nr is required; the "
                                f"effect's reason is empty and the mapping gives none)", "mapping")
        if step == "TD":
            return {**args, "nr": nr}
        days = _yq_days(effect.yqts, args.get("yqts"), default_yq_days)
        if days is None:
            raise DeliveryError(f"{where}: YQ needs yqts, whole working days {YQ_DAYS[0]}..{YQ_DAYS[1]}",
                                "mapping")
        return {**args, "nr": nr, "yqts": days}
    if step == "BC":
        nr = effect.result_text or effect.reason or given_nr
        if not nr:
            raise DeliveryError(f"{where}: BC (补充办理情况) needs a text (spec: nr)", "mapping")
        return {**args, "nr": nr}
    # CF
    if not effect.master:
        raise DeliveryError(f"{where}: CF (标记重复件) needs the master's work order number "
                            f"(master_external_id → zgdbh)", "mapping")
    if effect.master == effect.gdbh:
        raise DeliveryError(f"{where}: CF names the order itself as its master", "mapping")
    return {**args, "zgdbh": effect.master}


def _yq_days(*candidates: Any) -> int | None:
    for value in candidates:
        if value is None or value == "":
            continue
        try:
            days = int(value)
        except (TypeError, ValueError):
            return None
        return days if YQ_DAYS[0] <= days <= YQ_DAYS[1] else None
    return None


def _order_state(gdbh: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("zt"), str) \
            or not isinstance(data.get("version"), int) or isinstance(data.get("version"), bool):
        raise PermanentError(f"12345 {gdbh}: answer is not a work order snapshot (zt, version)")
    return data


class StatusWriter:
    """Applies ``status`` effects to 12345 work orders through a signed client."""

    def __init__(self, client: SignedJsonClient, units: tuple[str, ...], operator: str,
                 clock: Callable[[], float], default_yq_days: int = DEFAULT_YQ_DAYS) -> None:
        self.client = client
        self.units = units
        self.operator = operator
        self.clock = clock
        self.default_yq_days = default_yq_days

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        request = parse_effect(effect)
        try:
            return self._walk(request, effect.idempotency_key)
        except Refused as exc:
            raise DeliveryError(f"12345 {request.gdbh}: {exc}", "permanent") from None
        except AdapterError as exc:
            raise _delivery_error(request, exc) from None

    # ----- the walk ---------------------------------------------------------------------------
    def _walk(self, effect: StatusEffect, key: str) -> DeliveryResult:
        done: list[str] = []
        order = self.read(effect.gdbh)
        retry_suffix = ""
        while True:
            steps = plan_steps(effect, order["zt"], order.get("zgdbh"))
            if not steps:
                return self._result(effect, done, order)
            bodies = {step: step_fields(step, effect, self.default_yq_days) for step in steps}
            self._check_unit(effect, order)
            try:
                for step in steps:
                    request_id = (key if step == effect.action else f"{key}:{step}") + retry_suffix
                    order = self._act(effect.gdbh, step, order, bodies[step], request_id)
                    done.append(step)
                return self._result(effect, done, order)
            except BusinessError as exc:
                # spec: 4009 and 4002 → re-read, then decide (once per delivery)
                if exc.code not in (CONFLICT, NOT_ALLOWED) or retry_suffix:
                    raise
                order = self.read(effect.gdbh)
                retry_suffix = f"@v{order['version']}"

    def read(self, gdbh: str) -> dict[str, Any]:
        return _order_state(gdbh, self.client.request("GET", f"/workorders/{gdbh}"))

    def _act(self, gdbh: str, step: str, order: dict[str, Any], fields: dict[str, Any],
             request_id: str) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), SHANGHAI).strftime(CZSJ_FORMAT)
        body = {**fields, "action": step, "expectedVersion": order["version"], "cbdw": order["cbdw"],
                "czr": self.operator, "czsj": now}
        data = self.client.request("POST", f"/workorders/{gdbh}/actions", json=body,
                                   headers={"X-Request-Id": request_id})
        try:
            return _order_state(gdbh, data)
        except PermanentError:
            return self.read(gdbh)  # done; the next step needs the current version

    def _check_unit(self, effect: StatusEffect, order: dict[str, Any]) -> None:
        """spec: ``cbdw`` must be the order's current 承办单位 and one of the gateway's units."""
        holder = order.get("cbdw") or ""
        if self.units and holder not in self.units:
            raise Refused(f"held by {holder or 'nobody'} at {describe(order['zt'])}, not by one of this "
                          f"gateway's units ({', '.join(self.units)}); {effect.action} is theirs to do")

    @staticmethod
    def _result(effect: StatusEffect, done: list[str], order: dict[str, Any]) -> DeliveryResult:
        """``detail``: the actions sent (``QS+BJ``), or why none was needed."""
        detail = "+".join(done) if done else f"nothing sent: already {describe(order['zt'])}"
        return DeliveryResult(ok=True, detail=detail, external_ref=effect.gdbh)


def _delivery_error(effect: StatusEffect, exc: AdapterError) -> DeliveryError:
    """The adapter's classified error as the outbox's: messages hold codes and the system's own
    words, never credentials (the adapters never put them into messages)."""
    where = f"12345 {effect.action} {effect.gdbh}"
    if exc.kind == "transient":
        return DeliveryError(f"{where}: {exc}", "transient", exc.retry_after)
    if isinstance(exc, BusinessError) and exc.code == CONFLICT:
        return DeliveryError(f"{where}: version conflict again after a re-read: {exc}", "transient")
    if isinstance(exc, BusinessError) and exc.code == NOT_FOUND:
        return DeliveryError(f"{where}: work order unknown or not visible to this gateway: {exc}", "permanent")
    if isinstance(exc, AuthError):
        return DeliveryError(f"{where}: signature, clock or app key refused: {exc}", "permanent")
    if isinstance(exc, BusinessError):
        return DeliveryError(f"{where}: refused by 12345: {exc}", "permanent")
    return DeliveryError(f"{where}: {exc}", "permanent")


__all__ = ["ACTION_LABELS", "STATUS_LABELS", "STATUS_OPERATION", "StatusEffect", "StatusWriter",
           "parse_effect", "plan_steps", "step_fields"]
