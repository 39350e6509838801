"""The 数字城管 keyset walk over an offset-paged moving list: nothing is skipped, ever.

A fake platform list (sorted by updateTime then caseId, offset paging, one-second clock) is
changed between the walk's page reads: rows already read and rows not yet read move to the end,
new rows arrive, the clock goes on or stays in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.city_management.paging import MovingSetWalk, UnkeyedPage

START = datetime(2026, 11, 23, 9, 0, 0)


class MovingList:
    """The platform's case list as far as paging is concerned."""

    def __init__(self) -> None:
        self.now = 0
        self.rows: dict[str, dict[str, Any]] = {}
        self.seq = 0

    def stamp(self) -> str:
        return (START + timedelta(seconds=self.now)).strftime("%Y-%m-%dT%H:%M:%S")

    def add(self, count: int = 1) -> None:
        for _ in range(count):
            self.seq += 1
            case_id = f"c{random.getrandbits(32):08x}-{self.seq:04d}"
            self.rows[case_id] = {"caseId": case_id, "version": 1, "updateTime": self.stamp()}

    def touch(self, case_id: str) -> None:
        row = self.rows[case_id]
        row["version"] += 1
        row["updateTime"] = self.stamp()

    def page(self, updated_from: str | None, page_no: int, page_size: int) -> list[dict[str, Any]]:
        matching = sorted((r for r in self.rows.values() if updated_from is None or r["updateTime"] >= updated_from),
                          key=lambda r: (r["updateTime"], r["caseId"]))
        start = (page_no - 1) * page_size
        return [dict(r) for r in matching[start:start + page_size]]


class Hub:
    """What the walk hands over: every (caseId, version) stored, and the cursor."""

    def __init__(self) -> None:
        self.stored: set[tuple[str, int]] = set()
        self.cursor: str | None = None
        self.cursor_history: list[str] = []

    def store(self, rows: Sequence[Mapping[str, Any]], cursor: str | None) -> None:
        self.stored |= {(r["caseId"], r["version"]) for r in rows}
        if cursor is not None:
            self.cursor = cursor
            self.cursor_history.append(cursor)

    def missing(self, platform: MovingList, before: str | None = None) -> list[str]:
        return sorted(r["caseId"] for r in platform.rows.values()
                      if (before is None or r["updateTime"] < before)
                      and (r["caseId"], r["version"]) not in self.stored)


def walk(platform: MovingList, hub: Hub, page_size: int, max_pages: int = 500,
         between_pages: Any = None) -> Any:
    def fetch(updated_from: str | None, page_no: int) -> list[dict[str, Any]]:
        rows = platform.page(updated_from, page_no, page_size)
        if between_pages is not None:
            between_pages()  # the platform changes after answering, before the next page
        return rows

    return MovingSetWalk(fetch, hub.store, page_size, max_pages).run(hub.cursor)


def test_a_quiet_list_is_read_completely_and_a_second_walk_finds_nothing_new() -> None:
    platform = MovingList()
    for _ in range(5):
        platform.add(7)
        platform.now += 1
    hub = Hub()
    report = walk(platform, hub, page_size=3)
    assert not report.more
    assert hub.missing(platform) == []
    assert report.read >= 35
    before = set(hub.stored)
    again = walk(platform, hub, page_size=3)
    assert hub.stored == before
    assert not again.more
    assert hub.cursor == (START + timedelta(seconds=4)).strftime("%Y-%m-%dT%H:%M:%S")


def test_cursor_never_goes_back() -> None:
    platform = MovingList()
    platform.add(12)
    platform.now += 3
    platform.add(12)
    hub = Hub()
    walk(platform, hub, page_size=5)
    assert hub.cursor_history == sorted(hub.cursor_history)


def test_naive_page_walk_skips_a_row_that_this_walk_reads() -> None:
    """The failure the walk exists for: a row read on page 1 moves to the end before page 2."""
    platform = MovingList()
    platform.add(6)
    platform.now += 5
    first_read = sorted(platform.rows)[0]

    def naive() -> set[tuple[str, int]]:
        seen: set[tuple[str, int]] = set()
        page_no = 1
        while rows := platform.page(None, page_no, 3):
            seen |= {(r["caseId"], r["version"]) for r in rows}
            if page_no == 1:
                platform.touch(first_read)
            page_no += 1
        return seen

    naive_seen = naive()
    assert any((r["caseId"], r["version"]) not in naive_seen for r in platform.rows.values()
               if r["caseId"] != first_read), "the fake list must show the skip a naive walk suffers"

    platform2 = MovingList()
    platform2.add(6)
    platform2.now += 5
    moved = sorted(platform2.rows)[0]
    hub = Hub()
    calls = iter(range(1000))

    def move_once() -> None:
        if next(calls) == 0:
            platform2.touch(moved)

    walk(platform2, hub, page_size=3, between_pages=move_once)
    assert hub.missing(platform2) == []


def test_a_crowded_second_with_rows_leaving_it_is_read_twice_and_nothing_is_skipped() -> None:
    platform = MovingList()
    platform.add(20)  # 20 cases in one second, pages of 4
    platform.now += 10
    order = [r["caseId"] for r in platform.page(None, 1, 100)]
    moves = iter([order[0], order[1], order[5], None, order[9], None, None])
    hub = Hub()

    def move() -> None:
        case_id = next(moves, None)
        if case_id is not None:
            platform.touch(case_id)

    report = walk(platform, hub, page_size=4, between_pages=move)
    assert not report.more
    assert hub.missing(platform) == []


def test_the_cursor_stays_on_a_crowded_second_until_it_is_read_completely() -> None:
    platform = MovingList()
    platform.add(10)
    platform.now += 1
    platform.add(1)
    hub = Hub()
    report = walk(platform, hub, page_size=3, max_pages=3)
    assert report.more
    assert hub.cursor == START.strftime("%Y-%m-%dT%H:%M:%S")
    # a poll must be able to walk the whole second (twice): a bigger budget finishes it
    report = walk(platform, hub, page_size=3, max_pages=50)
    assert not report.more
    assert hub.missing(platform) == []
    assert hub.cursor == (START + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_full_page_without_update_times_is_refused() -> None:
    def fetch(updated_from: str | None, page_no: int) -> list[dict[str, Any]]:
        return [{"caseId": "a", "version": 1}, {"caseId": "b", "version": 1}]

    with pytest.raises(UnkeyedPage):
        MovingSetWalk(fetch, lambda rows, cursor: None, 2, 10).run(None)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), page_size=st.integers(1, 6),
       initial=st.lists(st.integers(0, 9), min_size=1, max_size=6))
def test_nothing_is_lost_whatever_moves_between_pages(seed: int, page_size: int, initial: list[int]) -> None:
    rng = random.Random(seed)
    random.seed(seed)
    platform = MovingList()
    for count in initial:  # a few seconds, some of them crowded
        platform.add(count)
        platform.now += 1
    hub = Hub()
    pages = iter(range(10_000))

    def churn() -> None:
        if next(pages) >= 40:
            return  # the platform calms down: the walk must then reach the end
        for _ in range(rng.randint(0, 3)):
            action = rng.random()
            if action < 0.5 and platform.rows:
                platform.touch(rng.choice(sorted(platform.rows)))
            elif action < 0.7:
                platform.add()
            elif action < 0.9:
                platform.now += 1

    budget = 10_000
    report = walk(platform, hub, page_size, max_pages=budget, between_pages=churn)
    assert not report.more
    # every row older than the cursor was read at its current version before the cursor passed it
    if hub.cursor is not None:
        assert hub.missing(platform, before=hub.cursor) == []
    # and a quiet walk from the cursor picks up whatever changed at or after it
    walk(platform, hub, page_size, max_pages=budget)
    assert hub.missing(platform) == []
