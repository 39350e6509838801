"""The case: one incident, whatever systems reported it, and its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from hub.models.ticket import Ticket


class Case(Base):
    __tablename__ = "case"
    __table_args__ = (
        Index("ix_case_status_updated", "status", "updated_at"),
        Index("ix_case_grid", "grid_code"),
        Index("ix_case_due", "due_at"),
        Index("ix_case_category_lat", "category", "lat"),  # reports.nearby_open_cases
        Index("ix_case_updated", "updated_at"),  # the metrics refresh reads cases changed since its watermark
        Index("ix_case_merged_into", "merged_into_id"),  # a case's photos include those of cases merged into it
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lng: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    district: Mapped[str] = mapped_column(String(64), default="")
    street: Mapped[str] = mapped_column(String(64), default="")
    grid_code: Mapped[str] = mapped_column(String(32), default="")
    owner_system: Mapped[str] = mapped_column(String(64), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    # the first report's own system deadline (each ticket keeps its system's own in ``Ticket.deadline``)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the hub's own clock, from the task list (hub.services.deadlines): level and mode of handling,
    # on-site and handling deadlines on the working calendar, paused while SUSPENDED
    task_category: Mapped[str] = mapped_column(String(64), default="")
    handling_mode: Mapped[str] = mapped_column(String(16), default="")  # "" | grid | department
    level: Mapped[str] = mapped_column(String(16), default="")  # "" | grid | community | street | district
    onsite_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clock_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clock_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # a case merged away points at the case that absorbed it; a recurrence at the closed case
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), nullable=True)
    recurrence_of_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tickets: Mapped[list[Ticket]] = relationship(back_populates="case", order_by="Ticket.id",
                                                 foreign_keys="Ticket.case_id")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")


class CaseEvent(Base):
    """One line of a case's timeline (ticket linked, status changed, …)."""

    __tablename__ = "case_event"
    # the metrics page reads returns (status_changed to RETURNED) of a period
    __table_args__ = (Index("ix_case_event_kind_at", "kind", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    system_key: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(100), default="hub")

    case: Mapped[Case] = relationship(back_populates="events")
