"""Convergence checker: compare every sandbox record with what the hub holds (``check``: inbound),
and every effect the hub meant to cause with what the systems applied (``check_effects``: outbound)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import Case, InboundEvent, OutboundMessage, OutboundStatus, Ticket


def sandbox_records(cluster: Any) -> dict[tuple[str, str], int]:
    """(system key, external id) → the version the hub should end at, for every record the hub
    can see in the simulators (12345: orders dispatched to the gateway's units)."""
    out: dict[tuple[str, str], int] = {}
    hotline = cluster.sim("hotline12345").state()
    visible = set(hotline["visible"])
    for order in hotline["workorders"]:
        if order["gdbh"] in visible:
            out[("hotline12345", order["gdbh"])] = int(order["version"])
    for row in cluster.sim("police_patrol").state()["incidents"]:
        out[("police_patrol", row["jq"]["JJDBH"])] = int(row["seq"])
    for case in cluster.sim("city_management").state()["cases"]:
        out[("city_management", case["caseId"])] = int(case["version"])
    for case in cluster.sim("law_enforcement").state()["cases"]:
        out[("law_enforcement", case["ClueNo"])] = int(case["Modified"])
    return out


@dataclass
class Convergence:
    missing: list[tuple[str, str]] = field(default_factory=list)
    behind: list[tuple[str, str, int, int | None]] = field(default_factory=list)
    unexpected: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    expected: int = 0
    tickets: int = 0

    @property
    def converged(self) -> bool:
        return not (self.missing or self.behind or self.unexpected or self.quarantined)

    def __str__(self) -> str:
        return (f"expected {self.expected}, tickets {self.tickets}, missing {self.missing[:5]}, "
                f"behind {self.behind[:5]}, unexpected {self.unexpected[:5]}, "
                f"quarantined {self.quarantined[:5]}")


def check(ctx: HubContext, cluster: Any) -> Convergence:
    expected = sandbox_records(cluster)
    with ctx.db.read_session() as s:
        held = {(t.system_key, t.external_id): t.seq for t in s.scalars(select(Ticket))}
        quarantined = [(e.system_key, e.external_id, e.error_reason) for e in
                       s.scalars(select(InboundEvent).where(InboundEvent.status == "quarantined"))]
        dupes = s.execute(select(Ticket.system_key, Ticket.external_id).group_by(
            Ticket.system_key, Ticket.external_id).having(func.count() > 1)).all()
    assert not dupes, f"duplicated tickets: {dupes}"
    result = Convergence(expected=len(expected), tickets=len(held), quarantined=quarantined)
    for key, version in expected.items():
        if key not in held:
            result.missing.append(key)
        elif held[key] != version:
            result.behind.append((*key, version, held[key]))
    result.unexpected = [k for k in held if k not in expected]
    return result


# ----- outbound: what the hub did to the systems ------------------------------------------------

HOTLINE_ACTIONS = ("QS", "BJ", "CF", "TD", "YQ")  # each applied at most once per round of an order
REDO = "CB"  # 12345's 重办: a new round, the unit may QS/BJ again
HOTLINE_FINISHED = ("40", "50")
HOTLINE_ENDED = ("60", "70", "80")  # 退回, 撤销, 重复件: the order is no longer the unit's to finish
HUB_FINISHED = ("VERIFIED", "CLOSED")  # RESOLVED waits for the grid worker's check before 办结


@dataclass
class Effects:
    """Outbound convergence: no effect applied twice, none lost."""

    duplicated: list[str] = field(default_factory=list)
    unsent: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # id, system, op, status, error
    unfinished: list[tuple[int, str, str, str]] = field(default_factory=list)  # case, status, gdbh, zt

    @property
    def ok(self) -> bool:
        return not (self.duplicated or self.unsent or self.unfinished)

    def __str__(self) -> str:
        return (f"duplicated effects {self.duplicated[:5]}, unsent rows {self.unsent[:5]}, "
                f"finished cases whose 12345 order is open {self.unfinished[:5]}")


def hotline_duplicates(state: dict[str, Any]) -> list[str]:
    """12345 actions the gateway applied twice in one round of an order (``blgc`` is what was
    applied; a refused or replayed request leaves no entry)."""
    found = []
    for order in state["workorders"]:
        counts: dict[str, int] = {}
        for entry in order["blgc"]:
            if entry["czlx"] == REDO:
                counts.clear()
            elif entry["czlx"] in HOTLINE_ACTIONS:
                counts[entry["czlx"]] = counts.get(entry["czlx"], 0) + 1
        found += [f"12345 {order['gdbh']} {action} x{n}" for action, n in counts.items() if n > 1]
    return found


def _repeated(label: str, keys: Sequence[tuple[str, ...]]) -> list[str]:
    counts: dict[tuple[str, ...], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [f"{label} {'/'.join(k)} x{n}" for k, n in counts.items() if n > 1]


def effect_duplicates(cluster: Any) -> list[str]:
    """Every external effect seen more than once in the simulators."""
    police = [(f["JJDBH"], f["FKLX"]) for f in cluster.sim("police_patrol").state()["feedback"]
              if f["FKLX"] in ("JS", "BJ")]
    dcm = [(c["source"], c["externalNo"]) for c in cluster.sim("city_management").state()["cases"] if c["externalNo"]]
    law = [(c["ExternalNo"],) for c in cluster.sim("law_enforcement").state()["cases"] if c["ExternalNo"]]
    return (hotline_duplicates(cluster.sim("hotline12345").state()) + _repeated("police feedback", police)
            + _repeated("数字城管 case", dcm) + _repeated("综合执法 case", law))


def check_effects(ctx: HubContext, cluster: Any, *, dead_allowed: tuple[str, ...] = ()) -> Effects:
    """Outbound convergence after settling: (a) each external effect applied at most once;
    (b) every outbox row ``sent`` (a ``dead`` one only when permanent and its error contains one of
    ``dead_allowed``), and every finished hub case's live 12345 orders 办结 (40/50)."""
    result = Effects(duplicated=effect_duplicates(cluster))
    orders = {o["gdbh"]: o for o in cluster.sim("hotline12345").state()["workorders"]}
    with ctx.db.read_session() as s:
        for m in s.scalars(select(OutboundMessage).where(OutboundMessage.status != OutboundStatus.SENT)
                           .order_by(OutboundMessage.id)):
            explained = (m.status == OutboundStatus.DEAD and m.error_kind == "permanent"
                         and any(reason in m.last_error for reason in dead_allowed))
            if not explained:
                result.unsent.append((m.id, m.system_key, m.operation, m.status, m.last_error[:200]))
        linked = s.execute(select(Case.id, Case.status, Ticket.external_id).join(Ticket, Ticket.case_id == Case.id)
                           .where(Ticket.system_key == "hotline12345", Case.status.in_(HUB_FINISHED))).all()
    for case_id, status, gdbh in linked:
        zt = str(orders.get(gdbh, {}).get("zt", "?"))
        if zt not in HOTLINE_FINISHED + HOTLINE_ENDED:
            result.unfinished.append((case_id, status, gdbh, zt))
    return result


def assert_converged(ctx: HubContext, cluster: Any, *, dead_allowed: tuple[str, ...] = ()) -> None:
    """Both directions: the hub holds every record at its version, and the systems hold every
    effect once."""
    inbound = check(ctx, cluster)
    assert inbound.converged, f"inbound: {inbound}"
    outbound = check_effects(ctx, cluster, dead_allowed=dead_allowed)
    assert outbound.ok, f"outbound: {outbound}"
