"""Per-(case, ticket) link state of the two-way status sync: what the hub last wrote to a record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime, utcnow


class SyncLink(Base):
    """What the hub last told one ticket's system about its case (``hub.services.sync``).

    ``last_written_*`` is the newest effect planned for the ticket (enqueued in the same
    transaction as the case change); ``echo_seen_status`` is the last of those writes the ticket
    has been seen to report back (the echo, recognized once and then no longer special)."""

    __tablename__ = "sync_link"
    __table_args__ = (UniqueConstraint("case_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    system_key: Mapped[str] = mapped_column(String(64))
    last_written_status: Mapped[str] = mapped_column(String(32), default="")
    last_written_action: Mapped[str] = mapped_column(String(32), default="")
    last_written_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_written_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    echo_seen_status: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
