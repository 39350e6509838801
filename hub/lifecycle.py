"""The canonical case lifecycle as an explicit state machine (shared/design.md, "Canonical lifecycle").

Pure: no database, no Flask. It answers one question, "may a case whose status is ``current`` take
``proposed``?", over :class:`mappings.canonical.CanonicalStatus`. The hub asks it before a status a
department system reports becomes the case's status, so an out-of-order, stale or simply wrong
report can never move a case somewhere the lifecycle does not allow (e.g. back from 已处置 to
已上报). Audited operator operations (a person's merge, split or undo, which restore recorded
statuses) do not go through it: they are corrections of the hub's own record, and each is undoable.

The rules (``TRANSITIONS`` is built from them; a status may always "move" to itself, a no-op):

1. Main path ``REPORTED → ACCEPTED → DISPATCHED → IN_PROGRESS → RESOLVED → VERIFIED → CLOSED``:
   every forward move is legal, also one that skips steps, because the hub does not see every
   intermediate state of a department system (a poll may find a record already 办结). No backward
   move along it is legal: going back means something happened, and that has its own state.
2. ``SUSPENDED`` (延期/挂账) can be entered from every active state (all but ``CLOSED`` and
   ``CANCELLED``), since any work in hand can be put on hold; it leaves to any main-path state
   (work resumes where the department says it stands), to ``RETURNED`` or to ``CANCELLED``.
3. ``RETURNED`` (退单, the department says it is not theirs) can be entered once a department holds
   the case: from ``ACCEPTED``, ``DISPATCHED``, ``IN_PROGRESS``, ``SUSPENDED``, ``REOPENED``. It
   leaves to ``REPORTED``/``ACCEPTED``/``DISPATCHED``/``IN_PROGRESS`` (re-routed to the right
   department, which may be at any of those steps) or ``CANCELLED``.
4. ``REOPENED`` (not solved, verification failed) can be entered only from a finished state:
   ``RESOLVED``, ``VERIFIED``, ``CLOSED``. It is the one way back from them, to ``DISPATCHED``,
   ``IN_PROGRESS``, ``RESOLVED`` (handled again), ``RETURNED``, ``SUSPENDED`` or ``CANCELLED``.
5. ``CANCELLED`` is final: nothing leaves it. Every other state except ``CLOSED`` may be cancelled.
6. ``CLOSED`` leaves only to ``REOPENED``: a closed case is reopened, never silently resumed.
7. ``DUPLICATE`` is a ticket-level status (this report repeats another one); a case never holds it,
   so proposing it is always refused and asking about a case "in" it is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mappings.canonical import STATUS_LABELS_ZH, CanonicalStatus

_S = CanonicalStatus

MAIN_PATH: tuple[str, ...] = tuple(s.value for s in (_S.REPORTED, _S.ACCEPTED, _S.DISPATCHED, _S.IN_PROGRESS,
                                                       _S.RESOLVED, _S.VERIFIED, _S.CLOSED))
"""The main path in order; position along it is what "forward" and "backward" mean."""

TICKET_ONLY: frozenset[str] = frozenset({_S.DUPLICATE.value})
"""Statuses a ticket may hold but a case never does."""

CASE_STATUSES: frozenset[str] = frozenset(s.value for s in CanonicalStatus) - TICKET_ONLY
"""Every status a case may hold."""

FINAL: frozenset[str] = frozenset({_S.CANCELLED.value})
"""Statuses nothing leaves."""

_ALL: frozenset[str] = frozenset(s.value for s in CanonicalStatus)

ACTIVE: frozenset[str] = CASE_STATUSES - FINAL - {_S.CLOSED.value}
"""Statuses with work still open (or possibly open): the ones that may be put on hold."""


def _build() -> dict[str, frozenset[str]]:
    moves: dict[str, set[str]] = {status: set() for status in CASE_STATUSES}
    # 1. forward along the main path, skipping allowed
    for i, here in enumerate(MAIN_PATH):
        moves[here].update(MAIN_PATH[i + 1:])
    # 2. on hold from any active state; resumes anywhere on the main path
    for status in ACTIVE - {_S.SUSPENDED.value}:
        moves[status].add(_S.SUSPENDED.value)
    moves[_S.SUSPENDED.value].update(MAIN_PATH)
    # 3. returned by a department holding it; re-routed to the start of the handling steps
    for status in (_S.ACCEPTED, _S.DISPATCHED, _S.IN_PROGRESS, _S.SUSPENDED, _S.REOPENED):
        moves[status.value].add(_S.RETURNED.value)
    moves[_S.RETURNED.value].update(s.value for s in (_S.REPORTED, _S.ACCEPTED, _S.DISPATCHED, _S.IN_PROGRESS))
    # 4. reopened only once finished; handled again from dispatch on
    for status in (_S.RESOLVED, _S.VERIFIED, _S.CLOSED):
        moves[status.value].add(_S.REOPENED.value)
    moves[_S.REOPENED.value].update(s.value for s in (_S.DISPATCHED, _S.IN_PROGRESS, _S.RESOLVED, _S.RETURNED,
                                                      _S.SUSPENDED))
    # 5. anything not final nor closed may be cancelled; 6. CLOSED got only REOPENED above
    for status in CASE_STATUSES - FINAL - {_S.CLOSED.value}:
        moves[status].add(_S.CANCELLED.value)
    return {status: frozenset(targets) for status, targets in moves.items()}


TRANSITIONS: Mapping[str, frozenset[str]] = MappingProxyType(_build())
"""Case status → the statuses it may change to (the no-op "same status" is not listed; it is
always legal). Keys are exactly the case statuses: no ``DUPLICATE``."""


class IllegalTransition(Exception):
    """A case may not move from ``current`` to ``proposed``; the message says which rule forbids it."""

    def __init__(self, current: str, proposed: str) -> None:
        self.current = current
        self.proposed = proposed
        super().__init__(f"case status cannot move from {_named(current)} to {_named(proposed)}: "
                         f"{_why_not(current, proposed)}")


def _named(status: str) -> str:
    return f"{status} ({STATUS_LABELS_ZH[status]})" if status in STATUS_LABELS_ZH else status


def _known(status: str, role: str) -> str:
    """Unknown names are a programming or mapping error, not an illegal move: say so loudly."""
    if status not in _ALL:
        raise ValueError(f"{role} status {status!r} is not a canonical status "
                         f"(one of {', '.join(s.value for s in CanonicalStatus)})")
    return status


def _why_not(current: str, proposed: str) -> str:
    if proposed in TICKET_ONLY:
        return f"{proposed} is a ticket-level status; a case never holds it"
    if current in FINAL:
        return f"{current} is final"
    if current == _S.CLOSED.value:
        return "a closed case can only be reopened"
    if current in MAIN_PATH and proposed in MAIN_PATH and MAIN_PATH.index(proposed) < MAIN_PATH.index(current):
        return "that is backwards along the main path (the case is reopened, returned or suspended instead)"
    allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset())))
    return f"not a lifecycle transition (from {current}: {allowed})"


def is_legal(current: str, proposed: str) -> bool:
    """Whether a case in ``current`` may take ``proposed``. Staying put is always legal; proposing
    ``DUPLICATE`` never is. ``ValueError`` for a name that is not a canonical status, and for a
    ``current`` of ``DUPLICATE`` (a case holding it is a bug elsewhere, not a move to judge)."""
    _known(current, "current")
    _known(proposed, "proposed")
    if current in TICKET_ONLY:
        raise ValueError(f"{current} is a ticket-level status; a case never holds it")
    if proposed in TICKET_ONLY:
        return False
    return current == proposed or proposed in TRANSITIONS[current]


def check(current: str, proposed: str) -> None:
    """Raise :class:`IllegalTransition` unless ``is_legal(current, proposed)``."""
    if not is_legal(current, proposed):
        raise IllegalTransition(current, proposed)
