"""Issue 6's records: the task list (事项清单) that routes new cases, the working calendar's
admin-kept days, grid workers' reports and their photos, and the notifications an operator reads.

The task list is the centre's own routing rules, edited by admins: per canonical category, which
department system handles it (or the grid itself, 微循环), at which level, and within what time.
Deadlines are written as working-time spans (``"2h"``, ``"4h"``, ``"7d"``) counted on the Chinese
working calendar (``hub.services.workcal``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime, utcnow

LEVELS: tuple[str, ...] = ("grid", "community", "street", "district")
"""The handling levels, lowest first: 微循环 (grid) → 小循环 (community, street) → 大循环 (district)."""


class TaskItem(Base):
    """One line of the task list: how a case of ``category`` is handled.

    ``handler`` is a system *type* key (``city_management``, ``law_enforcement``, …) or ``grid``
    for grid self-handling; ``onsite_limit``/``handling_limit`` are working-time spans
    (``"2h"``, ``"7d"``; ``""`` = none)."""

    __tablename__ = "task_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    area: Mapped[str] = mapped_column(String(32), default="")  # 环境 / 服务 / 治理
    handler: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(16), default="street")
    onsite_limit: Mapped[str] = mapped_column(String(16), default="")
    handling_limit: Mapped[str] = mapped_column(String(16), default="")
    self_handling: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class CalendarDay(Base):
    """A day the admin set by hand, over the packaged State Council calendar: a holiday, or a
    make-up working day (调休). ``kind``: ``workday`` | ``holiday``."""

    __tablename__ = "calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class GridReport(Base):
    """A grid worker's report, as submitted (idempotent per reporter on ``client_id``).

    The report is stored in the inbox as a record of the hub's own ``grid_report`` system and
    becomes a ticket like any other; ``ticket_id``/``case_id`` say where it went. When the worker
    chose "add to this case", ``attach_to`` holds that case's number."""

    __tablename__ = "grid_report"
    __table_args__ = (
        UniqueConstraint("reporter_id", "client_id", name="uq_grid_report_client"),
        Index("ix_grid_report_reporter_created", "reporter_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    category: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    location_source: Mapped[str] = mapped_column(String(16), default="gps")  # gps | map
    grid_code: Mapped[str] = mapped_column(String(32), default="", index=True)
    attach_to: Mapped[str] = mapped_column(String(32), default="")
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_event.id"), nullable=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), nullable=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="")  # new_case | attached | linked | quarantined
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A photo (or other file) a person sent: with a report, a verification, or added to a case.
    Bytes are kept in the database so both backends and every worker see the same thing."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    filename: Mapped[str] = mapped_column(String(200), default="")
    uploaded_by: Mapped[str] = mapped_column(String(100), default="")
    report_id: Mapped[int | None] = mapped_column(ForeignKey("grid_report.id"), nullable=True, index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(String(16), default="report")  # report | verify | case
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """A message to one console user about a case (due soon, overdue, escalated, returned).
    ``key`` makes each notice once-only (e.g. ``overdue:<case>:<due_at>``)."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_notification_user_key"),
        Index("ix_notification_user_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
