"""In-memory state of the 12345 simulator: work orders, change feed, actions, hotline steps."""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandbox import hotline12345_actions as actions
from sandbox.hotline12345_auth import HotlineError
from sandbox.hotline12345_calendar import add_working_days, deadline, format_local, parse_local

TAXONOMY = {
    "0101": "城乡建设>违法建设>违章搭建",
    "0102": "城乡建设>违法建设>群租",
    "0201": "市容环卫>垃圾>暴露垃圾",
    "0202": "市容环卫>垃圾>垃圾清运不及时",
    "0203": "市容环卫>道路保洁",
    "0301": "市场监管>无证经营>占道经营(流动摊贩)",
    "0302": "市场监管>无证经营>跨门营业",
    "0401": "交通管理>停车>机动车乱停放",
    "0402": "交通管理>停车>非机动车乱停放",
    "0403": "交通管理>停车>私设地锁",
    "0501": "环境保护>噪声>施工噪声",
    "0502": "环境保护>噪声>社会生活噪声",
    "0503": "环境保护>大气>餐饮油烟",
    "0601": "市政设施>井盖缺损",
    "0602": "市政设施>路灯不亮",
    "0603": "市政设施>道路破损",
    "0701": "园林绿化>树木倒伏毁绿",
    "0801": "社区事务>物业纠纷",
    "0901": "政策咨询",
}
# Operator-entered fields and their defaults; allowed values where the spec fixes them.
CALL_FIELDS: dict[str, str] = {
    "gdly": "1", "sqxz": "1", "sqbt": "", "sqnr": "", "ldsj": "", "ldrxm": "匿名", "ldrdh": "",
    "bmbz": "0", "qx": "徐汇区", "jd": "", "fsdz": "", "zb": "", "wtfl": "0203", "jjcd": "1",
}
CODE_SETS = {"gdly": {"1", "2", "3", "4", "5"}, "sqxz": {"1", "2", "3", "4", "5", "6"},
             "bmbz": {"0", "1"}, "jjcd": {"1", "2", "3"}, "wtfl": set(TAXONOMY)}
FINAL = frozenset({"50", "70", "80"})
HOTLINE_UNIT = "12345热线"
IDEMPOTENT_CODES = frozenset({0, 4001, 4002, 4004, 4009})
IDEMPOTENCY_TTL = timedelta(hours=24)
MYD_TEXT = {"1": "满意", "2": "基本满意", "3": "不满意"}


class ControlError(Exception):
    """A refused hotline-side step (control endpoint): HTTP ``status`` with a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Change:
    seq: int
    gdbh: str
    at: datetime
    visible: bool  # visible to the gateway when it happened
    snapshot: dict[str, Any]


def envelope(data: Any = None, code: int = 0, message: str = "成功") -> dict[str, Any]:
    """The 12345 answer envelope."""
    return {"code": code, "message": message, "data": data}


class HotlineSimulator:
    """The 12345 work-order system as one handling-unit gateway sees it (thread-safe)."""

    def __init__(self, *, app_key: str, units: Sequence[str], clock: Callable[[], datetime],
                 retention_days: int = 30) -> None:
        self.app_key = app_key
        self.units = list(units)
        self.clock = clock
        self.retention = timedelta(days=retention_days)
        self._lock = threading.RLock()
        self._orders: dict[str, dict[str, Any]] = {}
        self._visible: set[str] = set()
        self._changes: list[Change] = []
        self._seq = 0
        self._serial = 0
        self._epoch = secrets.token_hex(4)  # a restarted simulator never honours old cursors
        self._answers: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
        self._writes: list[dict[str, Any]] = []

    # ----- hotline side (control endpoints) -------------------------------------------------
    def take_call(self, fields: dict[str, Any], *, cbdw: str | None = None,
                  dispatch: bool = True) -> dict[str, Any]:
        """An operator creates a work order (``10``) and, unless told not to, dispatches it."""
        now = self.clock()
        order = self._new_order(fields, now)
        with self._lock:
            if order["gdbh"] in self._orders:
                raise ControlError(409, f"gdbh {order['gdbh']} exists")
            self._orders[order["gdbh"]] = order
            self._record(order)
            if dispatch:
                self.dispatch(order["gdbh"], cbdw or self.units[0])
            return copy.deepcopy(order)

    def _new_order(self, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
        values = {name: fields.get(name, default) for name, default in CALL_FIELDS.items()}
        values["ldsj"] = values["ldsj"] or format_local(now)
        for name, value in values.items():
            if not isinstance(value, str):
                raise ControlError(400, f"{name} must be a string")
            if name in CODE_SETS and value not in CODE_SETS[name]:
                raise ControlError(400, f"{name}: unknown code {value}")
        if len(values["sqbt"]) > 50 or len(values["sqnr"]) > 2000:
            raise ControlError(400, "sqbt ≤ 50 and sqnr ≤ 2000 chars")
        try:
            ldsj = parse_local(values["ldsj"])
        except ValueError:
            raise ControlError(400, "ldsj: yyyy-MM-dd HH:mm:ss") from None
        if values["zb"]:
            _check_point(values["zb"])
        with self._lock:
            self._serial += 1
            gdbh = fields.get("gdbh") or f"GD{now.strftime('%Y%m%d')}{self._serial:06d}"
        if not isinstance(gdbh, str):
            raise ControlError(400, "gdbh must be a string")
        return {
            "gdbh": gdbh, "version": 0, **{k: values[k] for k in ("gdly", "sqxz", "sqbt", "sqnr", "ldsj",
                                                                 "ldrxm", "ldrdh", "bmbz", "qx", "jd",
                                                                 "fsdz", "zb", "wtfl")},
            "wtflmc": TAXONOMY[values["wtfl"]], "jjcd": values["jjcd"], "zt": "10", "cbdw": "",
            "blsx": format_local(deadline(ldsj, values["sqxz"], values["jjcd"])),
            "blgc": [], "hfjg": None, "zgdbh": None, "gxsj": "",
        }

    def hotline_step(self, gdbh: str, step: dict[str, Any]) -> dict[str, Any]:
        """Apply ``{"op": "PD"|"HF"|"CX", …}`` from the hotline side; answers the snapshot."""
        op = step.get("op")
        if op == "PD":
            return self.dispatch(gdbh, step.get("cbdw") or self.units[0])
        if op == "HF":
            return self.visit_back(gdbh, str(step.get("myd", "")), str(step.get("sfjj", "")))
        if op == "CX":
            return self.withdraw(gdbh)
        raise ControlError(400, "op must be PD, HF or CX")

    def dispatch(self, gdbh: str, cbdw: str) -> dict[str, Any]:
        """派单 (from ``10``) or re-dispatch (from ``60``) to ``cbdw`` → ``20``."""
        with self._lock:
            order = self._order(gdbh)
            if order["zt"] not in ("10", "60"):
                raise ControlError(409, f"PD not allowed in {order['zt']}")
            if not isinstance(cbdw, str) or not cbdw:
                raise ControlError(400, "cbdw required")
            order.update(zt="20", cbdw=cbdw)
            order["blgc"].append(self._entry("PD", HOTLINE_UNIT, f"派单至{cbdw}"))
            if cbdw in self.units:
                self._visible.add(gdbh)
            self._record(order)
            return copy.deepcopy(order)

    def visit_back(self, gdbh: str, myd: str, sfjj: str) -> dict[str, Any]:
        """回访 of a finished order: ``40`` → ``50``, or → ``30`` (重办) when not solved."""
        if myd not in MYD_TEXT or sfjj not in ("0", "1"):
            raise ControlError(400, "myd 1|2|3, sfjj 1|0")
        with self._lock:
            order = self._order(gdbh)
            if order["zt"] != "40":
                raise ControlError(409, f"HF not allowed in {order['zt']}")
            order["hfjg"] = {"hfsj": format_local(self.clock()), "myd": myd, "sfjj": sfjj}
            solved = "已解决" if sfjj == "1" else "未解决"
            order["blgc"].append(self._entry("HF", HOTLINE_UNIT, f"回访：{MYD_TEXT[myd]}，{solved}"))
            if sfjj == "1":
                order["zt"] = "50"
            else:
                order["zt"] = "30"
                order["blgc"].append(self._entry("CB", HOTLINE_UNIT, "市民反映问题未解决，重办"))
            self._record(order)
            return copy.deepcopy(order)

    def withdraw(self, gdbh: str) -> dict[str, Any]:
        """The citizen withdrew the request: any non-final status → ``70``."""
        with self._lock:
            order = self._order(gdbh)
            if order["zt"] in FINAL:
                raise ControlError(409, f"CX not allowed in {order['zt']}")
            order["zt"] = "70"
            order["blgc"].append(self._entry("CX", HOTLINE_UNIT, "市民撤销诉求"))
            self._record(order)
            return copy.deepcopy(order)

    # ----- gateway side (open API) -----------------------------------------------------------
    def get(self, gdbh: str) -> dict[str, Any]:
        """Current snapshot of a visible order, else 4004."""
        with self._lock:
            return copy.deepcopy(self._visible_order(gdbh))

    def changes(self, cursor: str | None, limit: int) -> dict[str, Any]:
        """One page of the change feed after ``cursor`` (``None``/empty: from the start)."""
        with self._lock:
            self._prune()
            after = self._decode_cursor(cursor)
            seqs = [c.seq for c in self._changes]
            items: list[dict[str, Any]] = []
            last = after
            has_more = False
            for change in self._changes[bisect.bisect_right(seqs, after):]:
                if change.visible:
                    if len(items) == limit:
                        has_more = True
                        break
                    items.append(copy.deepcopy(change.snapshot))
                last = change.seq
            return {"items": items, "nextCursor": self._encode_cursor(last), "hasMore": has_more}

    def perform_action(self, app_key: str, request_id: str, gdbh: str, body: Any) -> dict[str, Any]:
        """Run one action with ``X-Request-Id`` idempotency; answers the envelope."""
        with self._lock:
            now = self.clock()
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < IDEMPOTENCY_TTL}
            key = (app_key, request_id)
            if key in self._answers:
                return copy.deepcopy(self._answers[key][1])
            try:
                answer = envelope(self._apply_action(gdbh, body))
            except HotlineError as refusal:
                answer = envelope(None, refusal.code, refusal.message)
            if answer["code"] in IDEMPOTENT_CODES:
                self._answers[key] = (now, copy.deepcopy(answer))
            return answer

    def _apply_action(self, gdbh: str, body: Any) -> dict[str, Any]:
        action = actions.validate(gdbh, body, self._usable_master)
        order = self._visible_order(gdbh)
        if body["expectedVersion"] != order["version"]:
            raise HotlineError(4009, f"版本冲突: 当前版本 {order['version']}")
        if body["cbdw"] != order["cbdw"] or body["cbdw"] not in self.units:
            raise HotlineError(4002, "状态不允许该操作: 非当前承办单位")
        allowed_from, target = actions.MOVES[action]
        if order["zt"] not in allowed_from:
            raise HotlineError(4002, f"状态不允许该操作: {action} 不适用于状态 {order['zt']}")
        entry = {"czsj": body["czsj"], "czlx": action, "cbdw": body["cbdw"], "nr": actions.default_note(body)}
        order["blgc"].append(entry)
        if target:
            order["zt"] = target
        if action == "YQ":
            order["blsx"] = format_local(add_working_days(parse_local(order["blsx"]), body["yqts"]))
        if action == "CF":
            order["zgdbh"] = body["zgdbh"]
            master = self._orders[body["zgdbh"]]
            if master["zt"] in ("40", "50"):  # master already finished: its 办结 reaches us now
                order["blgc"].append(copy.deepcopy(_last_finish(master)))
        self._record(order)
        if action == "BJ":
            self._propagate_finish(order, entry)
        return copy.deepcopy(order)

    def _propagate_finish(self, master: dict[str, Any], entry: dict[str, Any]) -> None:
        for duplicate in self._orders.values():
            if duplicate["zt"] == "80" and duplicate["zgdbh"] == master["gdbh"]:
                duplicate["blgc"].append(copy.deepcopy(entry))
                self._record(duplicate)

    def _usable_master(self, gdbh: str) -> bool | None:
        master = self._orders.get(gdbh)
        if master is None or gdbh not in self._visible:
            return False
        return None if master["zt"] == "80" else True

    # ----- bookkeeping -------------------------------------------------------------------------
    def log_write(self, entry: dict[str, Any]) -> None:
        """Keep one write request received from outside (for ``/_sandbox/state``)."""
        with self._lock:
            self._writes.append(entry)

    def state(self) -> dict[str, Any]:
        """Everything held, for convergence checks."""
        with self._lock:
            return {
                "workorders": [copy.deepcopy(o) for _, o in sorted(self._orders.items())],
                "visible": sorted(self._visible),
                "units": list(self.units),
                "changes": {"count": len(self._changes),
                            "lastSeq": self._changes[-1].seq if self._changes else 0},
                "writes": copy.deepcopy(self._writes),
            }

    def _order(self, gdbh: str) -> dict[str, Any]:
        order = self._orders.get(gdbh)
        if order is None:
            raise ControlError(404, f"unknown gdbh {gdbh}")
        return order

    def _visible_order(self, gdbh: str) -> dict[str, Any]:
        order = self._orders.get(gdbh)
        if order is None or gdbh not in self._visible:
            raise HotlineError(4004, "工单不存在")
        return order

    def _entry(self, czlx: str, cbdw: str, nr: str) -> dict[str, Any]:
        return {"czsj": format_local(self.clock()), "czlx": czlx, "cbdw": cbdw, "nr": nr}

    def _record(self, order: dict[str, Any]) -> None:
        now = self.clock()
        order["version"] += 1
        order["gxsj"] = format_local(now)
        self._seq += 1
        visible = order["gdbh"] in self._visible
        self._changes.append(Change(self._seq, order["gdbh"], now, visible, copy.deepcopy(order)))

    def _prune(self) -> None:
        horizon = self.clock() - self.retention
        keep = next((i for i, c in enumerate(self._changes) if c.at >= horizon), len(self._changes))
        del self._changes[:keep]

    def _encode_cursor(self, seq: int) -> str:
        return base64.urlsafe_b64encode(f"{self._epoch}:{seq}".encode()).decode().rstrip("=")

    def _decode_cursor(self, cursor: str | None) -> int:
        if not cursor:
            return 0
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            epoch, seq_text = text.split(":")
            seq = int(seq_text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise HotlineError(4001, "参数错误: cursor") from None
        if seq < 0 or (epoch == self._epoch and seq > self._seq):
            raise HotlineError(4001, "参数错误: cursor")
        # another epoch = another life of the system: continue at the oldest retained change
        return seq if epoch == self._epoch else 0


def _last_finish(order: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in reversed(order["blgc"]) if e["czlx"] == "BJ")


def _check_point(zb: str) -> None:
    try:
        lng, lat = (float(part) for part in zb.split(","))
    except ValueError:
        raise ControlError(400, "zb: \"lng,lat\"") from None
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise ControlError(400, "zb out of range")
