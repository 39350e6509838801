"""Compare a ticket with a case (its best-matching member), explain the score, decide.

A ticket is always compared with *cases*, each through the member that matches it best, never
chained pair to pair: a case grows only by tickets that resemble one of its own reports, and
the time feature is measured from the case's first report, so a case cannot creep along a road
or through the weeks one report at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.dedup.address import Address, _leading_int
from hub.dedup.location import haversine_m
from hub.dedup.model import FEATURES, DedupModel
from hub.dedup.normalize import NormalizedTicket
from hub.dedup.text import text_similarity

# case statuses after which a new report is a recurrence, not more of the same incident
CLOSED_STATUSES = frozenset({"RESOLVED", "CLOSED"})
ENDED_STATUSES = frozenset({"CANCELLED"})


@dataclass(frozen=True, slots=True)
class Member:
    """A ticket already in the store, as a candidate case member."""

    ticket_id: int
    case_id: int
    ticket: NormalizedTicket
    case_status: str = "REPORTED"
    case_started: datetime | None = None  # the case's first report
    case_closed_at: datetime | None = None


@dataclass(frozen=True)
class Contribution:
    feature: str
    level: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "level": self.level, "weight": round(self.weight, 3)}


@dataclass(frozen=True)
class CaseScore:
    """How well a ticket matches one case: its best member and the per-feature contributions."""

    case_id: int
    member_ticket_id: int
    score: float
    probability: float
    contributions: tuple[Contribution, ...]
    case_status: str = "REPORTED"

    def as_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "member_ticket_id": self.member_ticket_id,
                "score": round(self.score, 3), "probability": round(self.probability, 4),
                "contributions": [c.as_dict() for c in self.contributions]}


# decision actions
LINK, REVIEW, NEW, RECURRENCE = "link", "review", "new", "recurrence"


@dataclass(frozen=True)
class Decision:
    """What to do with a ticket: ``link`` to ``case_id``; open a new case (``new``); open one and
    queue the pair with ``candidate`` for review (``review``); open one as a recurrence of a
    closed ``candidate`` case (``recurrence``)."""

    action: str
    best: CaseScore | None
    candidates: tuple[CaseScore, ...] = ()
    thresholds: tuple[float, float] = (0.0, 0.0)
    blocked: int = 0  # candidate tickets the blocking step returned
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# bands of a distance in units of the pair's usual pin error (``DedupModel.pin_scale_m``)
_PIN_BANDS = ((0.35, "pin_0.35"), (0.7, "pin_0.7"), (1.0, "pin_1"), (1.5, "pin_1.5"), (2.0, "pin_2"),
              (3.0, "pin_3"), (6.0, "pin_6"))


def _distance_level(a: NormalizedTicket, b: NormalizedTicket, scale_m: float | None = None) -> str:
    if a.lat is None or b.lat is None or a.lng is None or b.lng is None:
        return "weak"
    if a.location_weak == "shared_point" or b.location_weak == "shared_point":
        return "weak"
    d = haversine_m(a.lat, a.lng, b.lat, b.lng)
    # a pin placed on a road name alone is trusted only for a coarse answer
    if a.location_weak or b.location_weak:
        return "weak" if d <= 300 else "far"
    if scale_m:
        ratio = d / scale_m
        return next((level for limit, level in _PIN_BANDS if ratio <= limit), "far")
    if d <= 15:
        return "le_15m"
    if d <= 40:
        return "le_40m"
    if d <= 80:
        return "le_80m"
    if d <= 150:
        return "le_150m"
    if d <= 300:
        return "le_300m"
    return "far"


def _time_level(elapsed_h: float, window_h: float) -> str:
    ratio = abs(elapsed_h) / window_h
    if ratio <= 0.02:
        return "le_0.02w"
    if ratio <= 0.05:
        return "le_0.05w"
    if ratio <= 0.1:
        return "le_0.1w"
    if ratio <= 0.3:
        return "le_0.3w"
    if ratio <= 0.6:
        return "le_0.6w"
    if ratio <= 1.0:
        return "le_1w"
    return "beyond"


def _text_level(a: frozenset[str], b: frozenset[str]) -> str:
    if not a or not b:
        return "missing"
    sim = text_similarity(a, b)
    if sim >= 0.5:
        return "ge_0.5"
    if sim >= 0.3:
        return "ge_0.3"
    if sim >= 0.15:
        return "ge_0.15"
    if sim > 0:
        return "gt_0"
    return "none"


def address_level(a: Address, b: Address) -> str:
    """``same_place``: same road + number or compound + building; ``same_compound`` /
    ``same_road``: same compound or road, one side does not say which building or number (no
    conflict); ``other_building``: same compound, different buildings; ``near_number``: same road,
    numbers within 10; ``different``: anything else named on both sides."""
    if a.level == "none" or b.level == "none":
        return "missing"
    if a.road and a.number and a.road == b.road and a.number == b.number:
        return "same_place"
    if a.compound and a.compound == b.compound:
        if a.building and b.building:
            return "same_place" if a.building == b.building else "other_building"
        return "same_compound"
    if a.road and a.road == b.road:
        na, nb = _leading_int(a.number), _leading_int(b.number)
        if na is not None and nb is not None:
            return "near_number" if abs(na - nb) <= 10 else "different"
        return "same_road"
    return "different"


def _phone_level(a: str | None, b: str | None) -> str:
    if not a or not b:
        return "missing"
    return "same" if a == b else "different"


_COMPOUND_DISTANCE = {"pin_0.35": "close", "pin_0.7": "close", "pin_1": "close", "pin_1.5": "apart",
                      "pin_2": "apart", "pin_3": "far_apart", "pin_6": "far_apart", "far": "far_apart",
                      "le_15m": "close", "le_40m": "close", "le_80m": "apart", "le_150m": "far_apart",
                      "le_300m": "far_apart", "weak": "weak"}


def _compound_distance(a: NormalizedTicket, b: NormalizedTicket, distance: str) -> str:
    if not a.address.compound or a.address.compound != b.address.compound:
        return "not_compound"
    return _COMPOUND_DISTANCE[distance]


def compare(ticket: NormalizedTicket, other: NormalizedTicket, elapsed_h: float, window_h: float,
            pin_scale_m: float | None = None) -> dict[str, str]:
    """The level of every feature for one (ticket, member) pair; ``elapsed_h`` is measured from
    the member's case start; ``pin_scale_m``: read the distance in units of it (the pair's usual
    pin error) instead of metres."""
    distance = _distance_level(ticket, other, pin_scale_m)
    return {
        "distance": distance,
        "time": _time_level(elapsed_h, window_h),
        "category": "exact" if ticket.category == other.category
        else "group" if ticket.group == other.group else "other_group",
        "text": _text_level(ticket.tokens, other.tokens),
        "address": address_level(ticket.address, other.address),
        "phone": _phone_level(ticket.phone_hash, other.phone_hash),
        "system": "same" if ticket.system == other.system else "other",
        "compound_distance": _compound_distance(ticket, other, distance),
    }


def _hours(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds() / 3600.0


# levels under which another candidate case still looks like the ticket's incident
_IMPLAUSIBLE = {"category": {"other_group"}, "time": {"beyond"}, "address": {"other_building", "different"},
                "distance": {"far", "le_300m", "le_150m", "pin_3", "pin_6"}}


# address levels that name another place on the same compound or road, and those that leave
# it open
_CONFLICTS = frozenset({"other_building", "near_number"})
_UNSPECIFIC = frozenset({"same_compound", "same_road"})


def _plausible(levels: dict[str, str]) -> bool:
    return all(levels[f] not in bad for f, bad in _IMPLAUSIBLE.items())


def _margin_level(ahead: float | None) -> str:
    if ahead is None:
        return "alone"
    if ahead >= 8:
        return "ahead_8"
    if ahead >= 4:
        return "ahead_4"
    if ahead >= 2:
        return "ahead_2"
    if ahead >= 0:
        return "ahead_0"
    return "behind"


def _rival_level(n: int) -> str:
    return "none" if n == 0 else "one" if n == 1 else "several"


# a runner-up case this close (log2 units, either side) is looked at: the same incident split earlier?
TWIN_WITHIN = 4.0


def _twin_level(model: DedupModel, a: NormalizedTicket, b: NormalizedTicket) -> str:
    """Whether two candidate cases' members look like one incident with each other."""
    window = max(model.window_h(a.category), model.window_h(b.category))
    scale = model.pin_scale_m(a.system, b.system) if model.pin_error_m else None
    levels = compare(a, b, _hours(a.reported_at, b.reported_at), window, scale)
    if not _plausible(levels):
        return "distinct"
    if levels["address"] == "same_place":
        return "twin_place"
    return "twin_loose" if levels["address"] in _UNSPECIFIC else "distinct"


def _place_cases_level(ticket: NormalizedTicket, members: Sequence[Member]) -> str:
    """Distinct open cases of the ticket's group with a member in the ticket's compound."""
    compound = ticket.address.compound
    if not compound:
        return "no_compound"
    cases = {m.case_id for m in members
             if m.ticket.address.compound == compound and m.ticket.group == ticket.group
             and m.case_status not in CLOSED_STATUSES and m.case_status not in ENDED_STATUSES}
    n = len(cases)
    return "le_1" if n <= 1 else "two" if n == 2 else "three_four" if n <= 4 else "ge_5"


def score_members(model: DedupModel, ticket: NormalizedTicket, members: Iterable[Member]) -> list[CaseScore]:
    """Every candidate case scored through its best member, best first.

    ``rivals`` is a case-level feature: how many *other* open candidate cases are plausible
    for the ticket too (same category group, inside the window, no conflicting address, not
    far). A compound-only report with one open incident of its kind at that compound is a
    different bet from one with three."""
    members = list(members)
    window = model.window_h(ticket.category)
    group, prior = ticket.group, model.prior_for(ticket.group)
    place_cases = _place_cases_level(ticket, members)
    best: dict[int, tuple[float, Member, dict[str, str]]] = {}
    conflicts: dict[int, str] = {}
    for member in members:
        other = member.ticket
        window_pair = max(window, model.window_h(other.category))
        if member.case_status in CLOSED_STATUSES and member.case_closed_at is not None:
            started = member.case_closed_at  # a recurrence is timed from the closure
        else:
            started = member.case_started or other.reported_at
        scale = model.pin_scale_m(ticket.system, other.system) if model.pin_error_m else None
        levels = compare(ticket, other, _hours(ticket.reported_at, started), window_pair, scale)
        score = prior + sum(model.weight(f, levels[f], group) for f in levels)
        if levels["address"] in _CONFLICTS:
            conflicts.setdefault(member.case_id, levels["address"])
        current = best.get(member.case_id)
        if current is None or score > current[0]:
            best[member.case_id] = (score, member, levels)
    for case_id, (score, member, levels) in list(best.items()):
        # a member that does not say which building must not hide one that names another
        if case_id in conflicts and levels["address"] in _UNSPECIFIC:
            level = conflicts[case_id]
            best[case_id] = (score - model.weight("address", levels["address"], group)
                             + model.weight("address", level, group), member, {**levels, "address": level})
    plausible = {case_id for case_id, (_, member, levels) in best.items()
                 if member.case_status not in CLOSED_STATUSES and member.case_status not in ENDED_STATUSES
                 and _plausible(levels)}
    open_scores = sorted(((score, case_id) for case_id, (score, member, _) in best.items()
                          if member.case_status not in CLOSED_STATUSES and member.case_status not in ENDED_STATUSES),
                         reverse=True)
    out = []
    for case_id, (score, member, levels) in best.items():
        rivals = _rival_level(len(plausible) - (1 if case_id in plausible else 0))
        runner_up = next(((s, c) for s, c in open_scores[:2] if c != case_id), None)
        margin = _margin_level(None if runner_up is None else score - runner_up[0])
        twin = "clear"
        if runner_up is not None and abs(score - runner_up[0]) < TWIN_WITHIN:
            twin = _twin_level(model, member.ticket, best[runner_up[1]][1].ticket)
        levels = {**levels, "rivals": rivals, "margin": margin, "place_cases": place_cases, "runner_up": twin}
        contributions = tuple(Contribution(f, levels[f], model.weight(f, levels[f], group)) for f in FEATURES)
        score += (model.weight("rivals", rivals, group) + model.weight("margin", margin, group)
                  + model.weight("place_cases", place_cases, group) + model.weight("runner_up", twin, group))
        out.append(CaseScore(case_id, member.ticket_id, score, model.probability(score), contributions,
                             member.case_status))
    return sorted(out, key=lambda c: (-c.score, c.case_id))


def decide(model: DedupModel, ticket: NormalizedTicket, members: Sequence[Member],
           rejected_cases: frozenset[int] = frozenset()) -> Decision:
    """Link, review, recurrence or new — from the blocked candidate members of ``ticket``.

    Cancelled (merged-away) cases are never candidates; cases a person already rejected for
    this ticket are skipped; closed cases only yield recurrences."""
    limits = model.thresholds_for(ticket.group)
    scored = [c for c in score_members(model, ticket, members)
              if c.case_status not in ENDED_STATUSES and c.case_id not in rejected_cases]
    top = tuple(scored[:3])
    thresholds = (limits.auto, limits.review)
    if not scored:
        return Decision(NEW, None, (), thresholds, len(members), "no candidate case nearby")
    open_cases = [c for c in scored if c.case_status not in CLOSED_STATUSES]
    best_open = open_cases[0] if open_cases else None
    if best_open is not None and best_open.probability >= limits.auto:
        return Decision(LINK, best_open, top, thresholds, len(members),
                        f"match probability {best_open.probability:.3f} ≥ {limits.auto}")
    best_closed = next((c for c in scored if c.case_status in CLOSED_STATUSES), None)
    if best_closed is not None and best_closed.probability >= limits.auto and (
            best_open is None or best_closed.score > best_open.score):
        return Decision(RECURRENCE, best_closed, top, thresholds, len(members),
                        f"recurs at a closed case (probability {best_closed.probability:.3f})")
    if best_open is not None and best_open.probability >= limits.review:
        return Decision(REVIEW, best_open, top, thresholds, len(members),
                        f"match probability {best_open.probability:.3f} between {limits.review} and {limits.auto}")
    return Decision(NEW, scored[0], top, thresholds, len(members),
                    f"best match probability {scored[0].probability:.3f} < {limits.review}")
