"""Candidate blocking: which stored tickets a new ticket is compared with at all.

A ticket meets a stored ticket only if their categories share a group, and they were reported
within the group's time window of each other, and at least one of:

* their points fall in the same H3 cell (resolution 9, ~174 m edge) or adjacent ones — only for
  trustworthy points (no shared centroid pin);
* their addresses name the same compound, or the same road (``addr_block``);
* the same reporter phone (keyed hash) called about both.

One key ignores the category group: the exact place (road + house number, or compound +
building), looked up across the widest window of any category. A report whose category was
mistyped into another group (5 % of codes in the scenario, and as common in life: 12345 operators
pick a neighbouring code) still meets its incident there; scoring weighs the category conflict
(``category: other_group``) against the rest of the evidence.

Explicit cross-references are resolved before blocking. Every key is an equality on an indexed
column, so the cost per ticket depends on how many reports land in the same few cells within
the window (the incident density), not on how many tickets the store holds.

``MemoryIndex`` implements the same rules in memory for training and quick evaluation; the
store's index (``hub.dedup.store``) is the one ingestion uses.
"""

from __future__ import annotations

from collections import defaultdict
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
    its road (and, when it names no number, its road as a road-only report)."""
    keys = []
    if address.compound:
        keys.append(f"c:{address.compound}")
    number = _number(address)
    if address.road and number is not None:
        keys.append(f"n:{address.road}#{number // NUMBER_BUCKET}")
    if address.road:
        keys.append(f"r:{address.road}")
        if number is None and not address.compound:
            keys.append(f"r0:{address.road}")  # names the road only: met by the numbers on it too
    return tuple(keys)


def place_key(address: Address) -> str:
    """The exact place, when the address names one: road + house number, or compound + building."""
    if address.road and address.number:
        return f"*|place|n:{address.road}#{address.number}"
    if address.compound and address.building:
        return f"*|place|b:{address.compound}#{address.building}"
    return ""


def addr_query(address: Address) -> tuple[str, ...]:
    """The most specific keys a ticket looks up: its compound, else its road-number bucket and
    the two beside it (and the road-only reports of its road), else its whole road."""
    if address.compound:
        return (f"c:{address.compound}",)
    number = _number(address)
    if address.road and number is not None:
        # and the reports that name the road only ("斜土路近东安路"): the same incident, told
        # without the number, must not be out of reach of the one that gives it
        bucket = number // NUMBER_BUCKET
        return (*(f"n:{address.road}#{b}" for b in (bucket - 1, bucket, bucket + 1) if b >= 0),
                f"r0:{address.road}")
    if address.road:
        return (f"r:{address.road}",)
    return ()


def home_cell(ticket: NormalizedTicket) -> str:
    """The ticket's own cell, or "" when its point is missing or a shared centroid."""
    if ticket.lat is None or ticket.lng is None or ticket.location_weak == "shared_point":
        return ""
    return cell_of(ticket.lat, ticket.lng)


def group_window_h(model: DedupModel, taxonomy: Taxonomy, group: str) -> float:
    """The widest window of any category of ``group`` (blocking must not cut a pair scoring keeps)."""
    members = taxonomy.members(group) if group in taxonomy.groups else ()
    return max([model.default_window_h if not members else 0.0, *(model.window_h(c) for c in members)])


def blocking_window(model: DedupModel, taxonomy: Taxonomy, group: str) -> timedelta:
    """How far either side of a ticket its candidates may lie: a report may arrive before an
    earlier one (out-of-order systems), so the window is symmetric, with 25 % head-room."""
    return timedelta(hours=group_window_h(model, taxonomy, group) * 1.25)


def place_window(model: DedupModel) -> timedelta:
    """The window of the group-free exact-place key: the widest of any category."""
    return timedelta(hours=model.max_window_h * 1.25)


def is_place_key(key: str) -> bool:
    return key.startswith("*|place|")


def file_keys(ticket: NormalizedTicket) -> list[str]:
    """The keys a ticket is filed under: its cell, its address keys (also as ``addrweak`` when it
    has no usable pin), its caller."""
    cell = home_cell(ticket)
    keys = [f"{ticket.group}|cell|{cell}"] if cell else []
    for key in addr_keys(ticket.address):
        keys.append(f"{ticket.group}|addr|{key}")
        if not cell:
            keys.append(f"{ticket.group}|addrweak|{key}")
    if ticket.phone_hash:
        keys.append(f"{ticket.group}|phone|{ticket.phone_hash}")
    place = place_key(ticket.address)
    if place:
        keys.append(place)
    return keys


def lookup_keys(ticket: NormalizedTicket) -> list[str]:
    """The keys a ticket looks up: its cell and the ring around it, its address (a well-pinned
    ticket meets by address only the tickets that cannot meet it by cell), its caller."""
    cell = home_cell(ticket)
    keys = [f"{ticket.group}|cell|{c}" for c in sorted(neighbours(cell))] if cell else []
    kind = "addrweak" if cell else "addr"
    keys.extend(f"{ticket.group}|{kind}|{k}" for k in addr_query(ticket.address))
    if ticket.phone_hash:
        keys.append(f"{ticket.group}|phone|{ticket.phone_hash}")
    place = place_key(ticket.address)
    if place:
        keys.append(place)  # also meets a pinned report whose pin is wrong (an undetected centroid)
    return keys


def within_window(model: DedupModel, a: NormalizedTicket, b: NormalizedTicket) -> bool:
    """The pair's own window (the wider of its two categories'), with the same head-room."""
    hours = abs((a.reported_at - b.reported_at).total_seconds()) / 3600
    return hours <= 1.25 * max(model.window_h(a.category), model.window_h(b.category))


class MemoryIndex:
    """Blocking over tickets held in memory (training, evaluation, Splink comparison)."""

    def __init__(self, model: DedupModel, taxonomy: Taxonomy) -> None:
        self.model, self.taxonomy = model, taxonomy
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self.members: list[Member] = []
        self.case_started: dict[int, datetime] = {}

    def candidates(self, ticket: NormalizedTicket) -> list[Member]:
        group_window = blocking_window(self.model, self.taxonomy, ticket.group)
        wide = place_window(self.model)
        seen: set[int] = set()
        out: list[Member] = []
        for key in lookup_keys(ticket):
            window = wide if is_place_key(key) else group_window
            since, until = ticket.reported_at - window, ticket.reported_at + window
            for i in self._by_key.get(key, ()):
                if i in seen:
                    continue
                m = self.members[i]
                if not since <= m.ticket.reported_at <= until:
                    continue
                seen.add(i)
                if within_window(self.model, ticket, m.ticket):
                    out.append(Member(m.ticket_id, m.case_id, m.ticket, m.case_status,
                                      self.case_started.get(m.case_id)))
        return out

    def add(self, ticket_id: int, case_id: int, ticket: NormalizedTicket) -> None:
        index = len(self.members)
        self.members.append(Member(ticket_id, case_id, ticket))
        started = self.case_started.get(case_id)
        if started is None or ticket.reported_at < started:
            self.case_started[case_id] = ticket.reported_at
        for key in file_keys(ticket):
            self._by_key[key].append(index)
