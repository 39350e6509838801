"""Convergence checker: compare every sandbox record with what the hub holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import InboundEvent, Ticket


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
