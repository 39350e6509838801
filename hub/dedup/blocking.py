"""Candidate blocking: which stored tickets a new ticket is compared with at all.

A ticket meets a stored ticket only if their categories share a group, and they were reported
within the group's time window of each other, and at least one of:

* their points fall in the same H3 cell (resolution 9, ~174 m edge) or adjacent ones — only for
  trustworthy points (no shared centroid pin);
* their addresses name the same compound, or the same road (``addr_block``);
* the same reporter phone (keyed hash) called about both.

Explicit cross-references are resolved before blocking. Every key is an equality on an indexed
column, so the cost per ticket depends on how many reports land in the same few cells within
the window (the incident density), not on how many tickets the store holds.

``MemoryIndex`` implements the same rules in memory for training and quick evaluation; the
store's index (``hub.dedup.store``) is the one ingestion uses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.dedup.address import Address
from hub.dedup.location import cell_of, neighbours
from hub.dedup.model import DedupModel
from hub.dedup.normalize import NormalizedTicket
from hub.dedup.scoring import Member
from mappings.taxonomy import Taxonomy

NUMBER_BUCKET = 20  # house numbers 20 apart (even/odd sides) are one address bucket


def _number(address: Address) -> int | None:
    # the leading number: "527" of 527号, the lane 1053 of 1053弄12
    digits = ""
    for ch in address.number or "":
        if not ch.isdigit():
            break
        digits += ch
    return int(digits[:6]) if digits else None


def addr_keys(address: Address) -> tuple[str, ...]:
    """The address keys a ticket is filed under: its compound, its road + house-number bucket,
    its road."""
    keys = []
    if address.compound:
        keys.append(f"c:{address.compound}")
    number = _number(address)
    if address.road and number is not None:
        keys.append(f"n:{address.road}#{number // NUMBER_BUCKET}")
    if address.road:
        keys.append(f"r:{address.road}")
    return tuple(keys)


def addr_query(address: Address) -> tuple[str, ...]:
    """The most specific keys a ticket looks up: its compound, else its road-number bucket and
    the two beside it, else its whole road."""
    if address.compound:
        return (f"c:{address.compound}",)
    number = _number(address)
    if address.road and number is not None:
        bucket = number // NUMBER_BUCKET
        return tuple(f"n:{address.road}#{b}" for b in (bucket - 1, bucket, bucket + 1) if b >= 0)
    if address.road:
        return (f"r:{address.road}",)
    return ()


def home_cell(ticket: NormalizedTicket) -> str:
    """The ticket's own cell, or "" when its point is missing or a shared centroid."""
    if ticket.lat is None or ticket.lng is None or ticket.location_weak == "shared_point":
        return ""
    return cell_of(ticket.lat, ticket.lng)


@dataclass(frozen=True)
class BlockKeys:
    group: str
    cells: frozenset[str]
    addresses: tuple[str, ...]
    phone_hash: str
    since: datetime
    until: datetime


def group_window_h(model: DedupModel, taxonomy: Taxonomy, group: str) -> float:
    """The widest window of any category of ``group`` (blocking must not cut a pair scoring keeps)."""
    members = taxonomy.members(group) if group in taxonomy.groups else ()
    return max([model.default_window_h if not members else 0.0, *(model.window_h(c) for c in members)])


def block_keys(model: DedupModel, taxonomy: Taxonomy, ticket: NormalizedTicket) -> BlockKeys:
    cell = home_cell(ticket)
    # a report may arrive before an earlier one (out-of-order systems): the window is symmetric
    window = timedelta(hours=group_window_h(model, taxonomy, ticket.group) * 1.25)
    return BlockKeys(group=ticket.group, cells=neighbours(cell) if cell else frozenset(),
                     addresses=addr_query(ticket.address), phone_hash=ticket.phone_hash or "",
                     since=ticket.reported_at - window, until=ticket.reported_at + window)


def within_window(model: DedupModel, a: NormalizedTicket, b: NormalizedTicket) -> bool:
    """The pair's own window (the wider of its two categories'), with the same head-room."""
    hours = abs((a.reported_at - b.reported_at).total_seconds()) / 3600
    return hours <= 1.25 * max(model.window_h(a.category), model.window_h(b.category))


class MemoryIndex:
    """Blocking over tickets held in memory (training, evaluation, Splink comparison)."""

    def __init__(self, model: DedupModel, taxonomy: Taxonomy) -> None:
        self.model, self.taxonomy = model, taxonomy
        self._by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.members: list[Member] = []
        self.case_started: dict[int, datetime] = {}

    def candidates(self, ticket: NormalizedTicket) -> list[Member]:
        keys = block_keys(self.model, self.taxonomy, ticket)
        seen: set[int] = set()
        out: list[Member] = []
        lookups = [("cell", c) for c in keys.cells]
        # a well-pinned ticket meets by address only the tickets that cannot meet it by cell
        lookups.extend(("addr" if not keys.cells else "addrweak", a) for a in keys.addresses)
        if keys.phone_hash:
            lookups.append(("phone", keys.phone_hash))
        for kind, value in lookups:
            for i in self._by_key.get((f"{keys.group}|{kind}", value), ()):
                if i in seen:
                    continue
                seen.add(i)
                m = self.members[i]
                if keys.since <= m.ticket.reported_at <= keys.until and within_window(self.model, ticket, m.ticket):
                    out.append(Member(m.ticket_id, m.case_id, m.ticket, m.case_status,
                                      self.case_started.get(m.case_id)))
        return out

    def add(self, ticket_id: int, case_id: int, ticket: NormalizedTicket) -> None:
        index = len(self.members)
        self.members.append(Member(ticket_id, case_id, ticket))
        started = self.case_started.get(case_id)
        if started is None or ticket.reported_at < started:
            self.case_started[case_id] = ticket.reported_at
        cell = home_cell(ticket)
        if cell:
            self._by_key[(f"{ticket.group}|cell", cell)].append(index)
        for key in addr_keys(ticket.address):
            self._by_key[(f"{ticket.group}|addr", key)].append(index)
            if not cell:
                self._by_key[(f"{ticket.group}|addrweak", key)].append(index)
        if ticket.phone_hash:
            self._by_key[(f"{ticket.group}|phone", ticket.phone_hash)].append(index)
