"""Reading an offset-paged list that moves while it is read, without skipping a row.

数字城管 lists cases sorted by ``updateTime`` (one-second precision) then ``caseId`` and pages
them by offset. A case updated while we page moves to the end, which shifts every row behind
its old place one offset to the left: a plain ``pageNo + 1`` walk then skips a row. Two facts
make a lossless walk possible:

* ``updatedFrom`` is inclusive, and a row only ever moves *later* (its new ``updateTime`` is
  "now", never earlier than anything we have already seen). So after every page we restart at
  ``pageNo=1`` from the last row's ``updateTime``: nothing at or after it can be missed, and the
  rows of that second that come again are removed by their event id (``caseId@version``).
* That restart makes no progress when a whole page shares one second (more than ``pageSize``
  cases in it). Then we page through that second (``pageNo`` 2, 3, …), and walk its pages once
  more from ``pageNo=1``: a row that left the second meanwhile shifted the rest left, and the
  second pass finds what the first one stepped over. Passes repeat until one saw the second
  standing still (see ``_walk_second``); only then does the cursor move past it.

The walk is pure logic over two callables, so it can be tested against any moving list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

Row = Mapping[str, Any]
# fetch_page(updated_from or None, page_no) -> the page's rows, in the system's order
FetchPage = Callable[[str | None, int], Sequence[Row]]
# store_page(rows, cursor or None): store the rows and move the cursor with them, atomically
StorePage = Callable[[Sequence[Row], str | None], None]

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def update_time(row: Row) -> str | None:
    """The row's ``updateTime`` when it has the documented shape, else None."""
    value = row.get("updateTime")
    if not isinstance(value, str) or not _TIME.match(value):
        return None
    try:
        datetime.strptime(value, TIME_FORMAT)
    except ValueError:  # the right shape, but no such moment (month 13, February 30th)
        return None
    return value


def _last_time(rows: Sequence[Row]) -> str | None:
    """``updateTime`` of the last row that has a usable one (rows are sorted by it)."""
    for row in reversed(rows):
        found = update_time(row)
        if found is not None:
            return found
    return None


def _first_time(rows: Sequence[Row]) -> str | None:
    for row in rows:
        found = update_time(row)
        if found is not None:
            return found
    return None


class UnkeyedPage(ValueError):
    """A full page without one usable ``updateTime``: the walk cannot move past it."""


class PageBudgetSpent(Exception):
    """The poll's page budget is used up; the cursor stays where the stored pages left it."""


@dataclass
class WalkReport:
    read: int = 0
    pages: int = 0
    more: bool = False
    cursor: str | None = None


class MovingSetWalk:
    """One poll's walk from a cursor to the end of the list (or until the page budget is spent)."""

    def __init__(self, fetch_page: FetchPage, store_page: StorePage, page_size: int,
                 max_pages: int) -> None:
        self._fetch_page = fetch_page
        self._store_page = store_page
        self.page_size = page_size
        self.max_pages = max_pages
        self.report = WalkReport()

    def run(self, cursor: str | None) -> WalkReport:
        """Walk from ``cursor`` (None: from the beginning); return what was done."""
        self.report = WalkReport(cursor=cursor)
        try:
            self._walk(cursor)
        except PageBudgetSpent:
            self.report.more = True
        return self.report

    def _page(self, updated_from: str | None, page_no: int) -> Sequence[Row]:
        if self.report.pages >= self.max_pages:
            raise PageBudgetSpent
        rows = self._fetch_page(updated_from, page_no)
        self.report.pages += 1
        self.report.read += len(rows)
        return rows

    def _store(self, rows: Sequence[Row], cursor: str | None) -> None:
        self._store_page(rows, cursor)
        self.report.cursor = cursor

    def _walk(self, cursor: str | None) -> None:
        while True:
            rows = self._page(cursor, 1)
            if not rows:
                return
            full = len(rows) >= self.page_size
            first, last = _first_time(rows), _last_time(rows)
            if last is None:
                # nothing to key on: the rows are still handed over (and rejected there)
                self._store(rows, cursor)
                if full:
                    raise UnkeyedPage(f"a page of {len(rows)} rows without a usable updateTime")
                return
            if full and first == last:
                # the whole page is one second: restarting from it would return the same page
                self._store(rows, last)
                cursor, finished = self._walk_second(last)
                if finished:
                    return
                continue
            self._store(rows, last)
            if not full:
                return  # the end of the list
            cursor = last

    def _walk_second(self, second: str) -> tuple[str, bool]:
        """Page through one crowded second; return (next cursor, reached the end of the list).

        Page 1 of ``updatedFrom=second`` has been read and stored already. Once a later row
        has been seen the second is closed: nothing can enter it any more, rows can only leave
        it (and a leaving row shifts the rest to the left, so a page boundary can step over
        one). The rows of the second are a prefix of every answer, so where it ends tells its
        size at that moment. A whole pass that begins after one size measurement and ends with
        the same size saw the second standing still: every row of it was read. Then the cursor
        moves to the next second (not to a row seen on the last page: the rows behind the
        second shift as well). A pass that saw the second shrink is repeated.
        """
        closed_size: int | None = None  # measured at the end of the previous pass
        page_no = 2
        while True:
            rows = self._page(second, page_no)
            in_second = _count_in(rows, second)
            if len(rows) >= self.page_size and in_second == len(rows):
                self._store(rows, second)  # still inside the second: the cursor must stay on it
                page_no += 1
                continue
            self._store(rows, second)
            if _last_time(rows) in (None, second):
                # the list ends inside the second: nothing left it (a leaver would be behind it);
                # rows that entered it meanwhile are read again from the cursor next time
                return second, True
            size: int | None = (page_no - 1) * self.page_size + in_second
            if in_second == 0 and page_no > 1:
                size = self._measure(second, page_no - 1)
            if size is not None and size == closed_size:
                following = next_second(second)
                self._store((), following)
                return following, False
            closed_size, page_no = size, 1

    def _measure(self, second: str, page_no: int) -> int | None:
        """The second's size when it was seen ending right after page ``page_no``.

        Read that page again: still full of the second, the size is exactly ``page_no`` pages
        (it can only have shrunk since); ending inside it, the size is where it ends now.
        None when it ends before it (it shrank across a page boundary: measure next pass).
        """
        rows = self._page(second, page_no)
        self._store(rows, second)
        in_second = _count_in(rows, second)
        if in_second == 0:
            return None
        if in_second == len(rows) and len(rows) >= self.page_size:
            return page_no * self.page_size
        return (page_no - 1) * self.page_size + in_second


def _count_in(rows: Sequence[Row], second: str) -> int:
    return sum(1 for r in rows if update_time(r) == second)


def next_second(stamp: str) -> str:
    """``yyyy-MM-ddTHH:mm:ss`` one second later."""
    return (datetime.strptime(stamp, TIME_FORMAT) + timedelta(seconds=1)).strftime(TIME_FORMAT)
