"""Inbox: every inbound record is stored before it is processed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime, utcnow


class InboundStatus:
    PENDING = "pending"
    PROCESSED = "processed"
    STALE = "stale"  # an older or equal version than the ticket already has: kept, changes nothing
    QUARANTINED = "quarantined"  # authentic but could not be mapped/applied: kept with the reason


class InboundEvent(Base):
    __tablename__ = "inbound_event"
    __table_args__ = (
        UniqueConstraint("system_key", "event_id"),
        Index("ix_inbound_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_key: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    kind: Mapped[str] = mapped_column(String(32), default="snapshot")
    version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payload: Mapped[str] = mapped_column(Text)  # verbatim as received (decoded text)
    content_type: Mapped[str] = mapped_column(String(64), default="application/json")
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.PENDING)
    error_kind: Mapped[str] = mapped_column(String(16), default="")  # mapping | permanent | transient
    error_reason: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), nullable=True)
    mapping_version_id: Mapped[int | None] = mapped_column(ForeignKey("mapping_version.id"), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
