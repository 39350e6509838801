"""The gateway's actions on a 12345 work order: field checks (4001) and status moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.hotline12345_auth import HotlineError
from sandbox.hotline12345_calendar import parse_local

# action → statuses it may start from, and the status it leads to (None: unchanged)
MOVES: dict[str, tuple[frozenset[str], str | None]] = {
    "QS": (frozenset({"20"}), "30"),
    "BC": (frozenset({"30", "35"}), None),
    "YQ": (frozenset({"30"}), "35"),
    "BJ": (frozenset({"30", "35"}), "40"),
    "TD": (frozenset({"20", "30"}), "60"),
    "CF": (frozenset({"20", "30"}), "80"),
}
COMMON_FIELDS = ("action", "expectedVersion", "cbdw", "czr", "czsj")
MAX_NR = 2000


def _bad(field: str) -> HotlineError:
    return HotlineError(4001, f"参数错误: {field}")


def _text(body: dict[str, Any], field: str, *, min_len: int = 1) -> str:
    value = body.get(field)
    if not isinstance(value, str) or len(value.strip()) < min_len or len(value) > MAX_NR:
        raise _bad(field)
    return value


def validate(gdbh: str, body: Any, master_exists: Callable[[str], bool | None]) -> str:
    """Check an action body (all 4001 checks); return the action code.

    ``master_exists(zgdbh)`` answers True (usable master), False (unknown) or None (itself
    a 重复件), so that CF's 主工单 is checked with the other parameters, before 4004.
    """
    if not isinstance(body, dict):
        raise _bad("body")
    action = body.get("action")
    if action not in MOVES:
        raise _bad("action")
    version = body.get("expectedVersion")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad("expectedVersion")
    _text(body, "cbdw")
    _text(body, "czr")
    try:
        parse_local(body.get("czsj"))  # type: ignore[arg-type]
    except ValueError:
        raise _bad("czsj") from None
    if action in ("BC", "YQ", "TD"):
        _text(body, "nr")
    if action == "YQ":
        days = body.get("yqts")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 15:
            raise _bad("yqts")
    if action == "BJ":
        _text(body, "nr", min_len=10)
        if body.get("bjlx") not in ("1", "2", "3"):
            raise _bad("bjlx")
    if action == "CF":
        master = body.get("zgdbh")
        if not isinstance(master, str) or not master or master == gdbh or master_exists(master) is not True:
            raise _bad("zgdbh")
    if "nr" in body and body["nr"] is not None and not isinstance(body["nr"], str):
        raise _bad("nr")
    return str(action)


def default_note(body: dict[str, Any]) -> str:
    """The 办理过程 text when the action carries no ``nr`` of its own."""
    note = body.get("nr")
    if isinstance(note, str) and note:
        return note
    if body["action"] == "QS":
        return "已签收"
    if body["action"] == "CF":
        return f"标记为重复件，主工单{body['zgdbh']}"
    return ""
