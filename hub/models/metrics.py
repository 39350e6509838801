"""The metrics rollup: per day (and per month) and street, one row per value of one dimension
(category, department, grid), holding counts and sums that add up over any set of rows.

Why this shape (see ``hub.services.metrics`` for how it is filled):

* **one dimension per row** (a grouping set, not the cross product): a row keyed by day × street
  × category × department × grid would be about as many rows as cases (1 M cases over two years
  in 300 grids and 32 categories leave almost every combination with one case), so it would not
  be a rollup. One dimension per row keeps it to about 365 × streets × (categories + departments)
  + 365 × grids rows a year, whatever the case volume;
* **street** (``grid_code[:9]``) on every row, because jurisdiction is a grid-code prefix and a
  street is the level most operators are scoped to; a finer jurisdiction is answered from the
  grid rows or live (``hub.services.metrics``);
* **month rows** (``grain`` ``m``) beside day rows (``d``), the sums of the month's days, so a
  year-long question reads a dozen rows per key instead of 365;
* **fixed histogram buckets** of handling time (``h0``..``h12``, see ``HANDLING_BUCKETS``): sums
  of bucket counts over any rows are the histogram of those rows, so p90 is read from them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime

HANDLING_BUCKETS: tuple[int, ...] = (900, 1800, 3600, 7200, 14400, 32400, 64800, 97200, 162000, 324000,
                                     648000, 1296000)
"""Upper bounds (working seconds, 9 working hours a day) of buckets h0..h11; h12 is everything above:
15 min, 30 min, 1 h, 2 h, 4 h, 1, 2, 3, 5, 10, 20, 40 working days."""

BUCKET_COLUMNS: tuple[str, ...] = tuple(f"h{i}" for i in range(len(HANDLING_BUCKETS) + 1))


class MetricsRollup(Base):
    """Counts of the cases *filed* (reported) on ``day`` in ``street`` whose ``dim`` is ``key``.

    Every figure belongs to the day the case was filed (a cohort): ``closed`` is how many of
    them are closed now, ``on_time`` how many closed by their deadline, ``handling_s`` their
    working seconds from report to closure. A case changes only its own filing day's rows."""

    __tablename__ = "metrics_rollup"
    __table_args__ = (Index("ix_metrics_rollup_street", "grain", "dim", "street", "day"),)

    grain: Mapped[str] = mapped_column(String(1), primary_key=True)  # d | m
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)  # category | department | grid
    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day for grain m
    street: Mapped[str] = mapped_column(String(9), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    filed: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_due: Mapped[int] = mapped_column(Integer, default=0)  # closed and had a deadline
    on_time: Mapped[int] = mapped_column(Integer, default=0)  # closed_at <= due_at
    handling_s: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_saved: Mapped[int] = mapped_column(Integer, default=0)  # tickets beyond each case's first
    h0: Mapped[int] = mapped_column(Integer, default=0)
    h1: Mapped[int] = mapped_column(Integer, default=0)
    h2: Mapped[int] = mapped_column(Integer, default=0)
    h3: Mapped[int] = mapped_column(Integer, default=0)
    h4: Mapped[int] = mapped_column(Integer, default=0)
    h5: Mapped[int] = mapped_column(Integer, default=0)
    h6: Mapped[int] = mapped_column(Integer, default=0)
    h7: Mapped[int] = mapped_column(Integer, default=0)
    h8: Mapped[int] = mapped_column(Integer, default=0)
    h9: Mapped[int] = mapped_column(Integer, default=0)
    h10: Mapped[int] = mapped_column(Integer, default=0)
    h11: Mapped[int] = mapped_column(Integer, default=0)
    h12: Mapped[int] = mapped_column(Integer, default=0)


class MetricsWatermark(Base):
    """How far the rollup has read: cases updated before ``at`` are in it. Written in the same
    transaction as the rows it covers, so a crash leaves both as they were."""

    __tablename__ = "metrics_watermark"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    days: Mapped[int] = mapped_column(Integer, default=0)  # days recomputed by the last refresh
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
