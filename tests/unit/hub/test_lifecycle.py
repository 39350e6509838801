"""The canonical case lifecycle (hub.lifecycle): the rule table, and properties over every walk."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.lifecycle import (
    CASE_STATUSES,
    MAIN_PATH,
    TRANSITIONS,
    IllegalTransition,
    check,
    is_legal,
)
from mappings.canonical import CanonicalStatus

REP, ACC, DIS, INP = "REPORTED", "ACCEPTED", "DISPATCHED", "IN_PROGRESS"
RES, VER, CLO = "RESOLVED", "VERIFIED", "CLOSED"
RET, SUS, REO, CAN, DUP = "RETURNED", "SUSPENDED", "REOPENED", "CANCELLED", "DUPLICATE"
DETOURS = frozenset({RET, SUS, REO})  # the off-path states a case goes back through

# The whole table, written out by hand: a change to the rules has to change this too.
EXPECTED: dict[str, set[str]] = {
    REP: {ACC, DIS, INP, RES, VER, CLO, SUS, CAN},
    ACC: {DIS, INP, RES, VER, CLO, SUS, RET, CAN},
    DIS: {INP, RES, VER, CLO, SUS, RET, CAN},
    INP: {RES, VER, CLO, SUS, RET, CAN},
    RES: {VER, CLO, SUS, REO, CAN},
    VER: {CLO, SUS, REO, CAN},
    CLO: {REO},
    SUS: {REP, ACC, DIS, INP, RES, VER, CLO, RET, CAN},
    RET: {REP, ACC, DIS, INP, SUS, CAN},
    REO: {DIS, INP, RES, RET, SUS, CAN},
    CAN: set(),
}


def test_the_table_is_exactly_the_rules() -> None:
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED
    assert set(TRANSITIONS) == CASE_STATUSES == {s.value for s in CanonicalStatus} - {DUP}


@pytest.mark.parametrize(("current", "proposed", "legal"), [
    # forward along the main path, skipping steps the hub did not see
    (REP, ACC, True), (REP, INP, True), (REP, CLO, True), (DIS, RES, True), (RES, VER, True), (VER, CLO, True),
    # never backwards along it
    (RES, REP, False), (RES, INP, False), (CLO, RES, False), (INP, DIS, False), (ACC, REP, False),
    # on hold from any active state, resumed anywhere on the main path
    (REP, SUS, True), (INP, SUS, True), (RES, SUS, True), (RET, SUS, True), (REO, SUS, True),
    (CLO, SUS, False), (CAN, SUS, False),
    (SUS, REP, True), (SUS, INP, True), (SUS, RES, True), (SUS, CLO, True), (SUS, CAN, True), (SUS, REO, False),
    # returned by a department holding it, then re-routed
    (ACC, RET, True), (DIS, RET, True), (INP, RET, True), (SUS, RET, True), (REO, RET, True),
    (REP, RET, False), (RES, RET, False), (CLO, RET, False),
    (RET, REP, True), (RET, ACC, True), (RET, DIS, True), (RET, INP, True), (RET, CAN, True),
    (RET, RES, False), (RET, CLO, False), (RET, REO, False),
    # reopened only once finished
    (RES, REO, True), (VER, REO, True), (CLO, REO, True), (INP, REO, False), (REP, REO, False),
    (REO, DIS, True), (REO, INP, True), (REO, RES, True), (REO, CAN, True),
    (REO, REP, False), (REO, ACC, False), (REO, VER, False), (REO, CLO, False),
    # cancelled is final; closed only reopens
    (REP, CAN, True), (RES, CAN, True), (VER, CAN, True), (CLO, CAN, False),
    (CAN, REP, False), (CAN, REO, False), (CAN, CLO, False),
    (CLO, REP, False), (CLO, VER, False),
    # staying put is a no-op, legal everywhere (also in the final state)
    (REP, REP, True), (RES, RES, True), (CLO, CLO, True), (CAN, CAN, True), (SUS, SUS, True),
    # a case never becomes a duplicate
    (REP, DUP, False), (INP, DUP, False), (CAN, DUP, False),
])
def test_legality(current: str, proposed: str, legal: bool) -> None:
    assert is_legal(current, proposed) is legal
    if legal:
        check(current, proposed)
    else:
        with pytest.raises(IllegalTransition) as info:
            check(current, proposed)
        assert (info.value.current, info.value.proposed) == (current, proposed)


def test_enum_members_are_accepted_like_their_names() -> None:
    assert is_legal(CanonicalStatus.REPORTED, CanonicalStatus.RESOLVED)
    assert not is_legal(CanonicalStatus.RESOLVED, CanonicalStatus.REPORTED)


@pytest.mark.parametrize(("current", "proposed", "words"), [
    (RES, REP, "backwards along the main path"),
    (CAN, REP, "CANCELLED is final"),
    (CLO, CAN, "closed case can only be reopened"),
    (INP, DUP, "ticket-level"),
    (REP, RET, "not a lifecycle transition"),
])
def test_the_refusal_says_why(current: str, proposed: str, words: str) -> None:
    with pytest.raises(IllegalTransition) as info:
        check(current, proposed)
    message = str(info.value)
    assert words in message and current in message and proposed in message


@pytest.mark.parametrize(("current", "proposed"), [("BOGUS", REP), (REP, "BOGUS"), ("reported", RES), (REP, "")])
def test_unknown_statuses_are_an_error_not_a_refusal(current: str, proposed: str) -> None:
    with pytest.raises(ValueError, match="not a canonical status"):
        is_legal(current, proposed)
    with pytest.raises(ValueError, match="not a canonical status"):
        check(current, proposed)


def test_a_case_never_holds_duplicate() -> None:
    assert DUP not in TRANSITIONS and all(DUP not in targets for targets in TRANSITIONS.values())
    for current in CASE_STATUSES:
        assert not is_legal(current, DUP)
    with pytest.raises(ValueError, match="ticket-level"):
        is_legal(DUP, REP)
    with pytest.raises(ValueError, match="ticket-level"):
        is_legal(DUP, DUP)


def _reachable(start: str, through: frozenset[str] | None = None) -> set[str]:
    """Every status reachable from ``start`` by legal moves (only via ``through`` if given)."""
    seen, todo = {start}, deque([start])
    while todo:
        here = todo.popleft()
        for nxt in TRANSITIONS[here]:
            if nxt not in seen:
                seen.add(nxt)
                if through is None or nxt in through:
                    todo.append(nxt)
    return seen


def test_nothing_leaves_cancelled_and_closed_leaves_only_by_reopening() -> None:
    assert _reachable(CAN) == {CAN}
    assert TRANSITIONS[CLO] == {REO}


def test_every_state_can_still_be_finished_or_cancelled() -> None:
    """No trap besides the final state: from anywhere a case can be closed or cancelled."""
    for status in CASE_STATUSES - {CAN}:
        assert {CLO, CAN} & _reachable(status)


FORWARD = [(a, b) for i, a in enumerate(MAIN_PATH) for b in MAIN_PATH[i + 1:]]
BACKWARD = [(b, a) for a, b in FORWARD]


@pytest.mark.parametrize(("current", "proposed"), FORWARD)
def test_every_forward_main_path_move_is_legal(current: str, proposed: str) -> None:
    assert is_legal(current, proposed)


@pytest.mark.parametrize(("current", "proposed"), BACKWARD)
def test_every_backward_main_path_move_is_illegal_but_possible_through_a_detour(current: str, proposed: str) -> None:
    assert not is_legal(current, proposed)
    # going back takes a state that says why: returned, suspended or reopened
    assert proposed in _reachable(current, through=DETOURS)


statuses = st.sampled_from(sorted(CASE_STATUSES | {DUP}))


@given(st.lists(statuses, max_size=40))
def test_no_walk_leaves_cancelled(proposals: list[str]) -> None:
    status = CAN
    for proposed in proposals:
        if is_legal(status, proposed):
            status = proposed
    assert status == CAN


@given(statuses, st.lists(statuses, max_size=60))
def test_walks_never_go_back_along_the_main_path_without_a_detour(start: str, proposals: list[str]) -> None:
    """Apply whatever is legal of a random stream of reports: the case never holds DUPLICATE, and
    its main-path position only goes down after it passed through RETURNED, SUSPENDED or REOPENED."""
    if start == DUP:
        return
    status, detoured = start, False
    last_main = MAIN_PATH.index(start) if start in MAIN_PATH else None
    for proposed in proposals:
        if not is_legal(status, proposed):
            with pytest.raises(IllegalTransition):
                check(status, proposed)
            continue
        assert proposed != DUP
        if proposed in DETOURS:
            detoured = True
        elif proposed in MAIN_PATH:
            position = MAIN_PATH.index(proposed)
            if last_main is not None and not detoured:
                assert position >= last_main, f"{status} → {proposed} went back without a detour"
            last_main, detoured = position, False
        status = proposed
    assert status in CASE_STATUSES


@given(statuses, statuses)
def test_is_legal_is_what_the_table_says(current: str, proposed: str) -> None:
    if current == DUP:
        with pytest.raises(ValueError):
            is_legal(current, proposed)
        return
    expected = proposed != DUP and (proposed == current or proposed in TRANSITIONS[current])
    assert is_legal(current, proposed) is expected
