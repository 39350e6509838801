"""Outbox: every outbound effect, written in the same transaction as the case change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime, utcnow


class OutboundStatus:
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # will be retried at next_attempt_at
    DEAD = "dead"  # retries exhausted or permanent: visible, replayable


class OutboundMessage(Base):
    __tablename__ = "outbound_message"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_outbound_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True, nullable=True)
    system_key: Mapped[str] = mapped_column(String(64), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=OutboundStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_kind: Mapped[str] = mapped_column(String(16), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # what the system answered a success with: the id of a record it created (数字城管 caseId,
    # 综合执法 ClueNo), "" otherwise
    external_ref: Mapped[str] = mapped_column(String(128), default="")


class CircuitState:
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # the system failed repeatedly: no calls until retry_at
    HALF_OPEN = "half_open"  # retry_at passed: one trial batch decides


class CircuitBreaker(Base):
    """Per-system circuit breaker of outbound delivery, shared by every worker process
    (``hub.services.circuit``)."""

    __tablename__ = "circuit_breaker"

    system_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=CircuitState.CLOSED)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive transient failures
    trips: Mapped[int] = mapped_column(Integer, default=0)  # consecutive openings (the wait grows)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # closed again after an outage: the records it holds are re-read (hub.services.reconcile)
    needs_reconcile: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
