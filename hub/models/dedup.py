"""Dedup state: each ticket's normalized match features and blocking keys, every matching
decision with its per-feature contributions (the review queue is made of them), and the audited,
undoable case operations (merge, split, link elsewhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UTCDateTime, utcnow


class DedupEntry(Base):
    """A ticket as the matcher compares it (WGS-84 point, parsed address, tokens, phone hash)."""

    __tablename__ = "dedup_entry"
    __table_args__ = (Index("ix_dedup_entry_point_address", "point_key", "address_key"),)

    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), primary_key=True)
    system_type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    grp: Mapped[str] = mapped_column(String(64))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lng: Mapped[float | None] = mapped_column(Float, nullable=True)
    location_weak: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tokens: Mapped[str] = mapped_column(Text, default="")
    phone_hash: Mapped[str] = mapped_column(String(64), default="")
    # a pin rounded to ~1 m and the address told there: finds points shared by unrelated tickets
    point_key: Mapped[str] = mapped_column(String(32), default="")
    address_key: Mapped[str] = mapped_column(String(120), default="")


class DedupKey(Base):
    """One blocking key of a ticket (``group|cell|…``, ``group|addr|…``, ``group|phone|…``)."""

    __tablename__ = "dedup_key"
    __table_args__ = (Index("ix_dedup_key_key_reported", "key", "reported_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    key: Mapped[str] = mapped_column(String(160))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReviewStatus:
    NONE = ""
    PENDING = "pending"
    ACCEPTED = "accepted"          # linked to the proposed case
    REJECTED = "rejected"          # a different incident: stays apart
    LINKED_ELSEWHERE = "linked_elsewhere"
    SUPERSEDED = "superseded"      # the ticket was moved by other means meanwhile


class MatchRecord(Base):
    """One matching decision, with why: the best candidate case and each feature's contribution."""

    __tablename__ = "match_decision"
    __table_args__ = (Index("ix_match_decision_review", "review_status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)  # where the ticket went
    candidate_case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # link / review / new / recurrence
    matcher: Mapped[str] = mapped_column(String(64), default="dedup")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    member_ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contributions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(500), default="")
    model_version: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review_status: Mapped[str] = mapped_column(String(20), default="")
    reviewed_by: Mapped[str] = mapped_column(String(100), default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_note: Mapped[str] = mapped_column(String(500), default="")


class CaseOperation(Base):
    """An audited change of which case a ticket belongs to; ``detail.moves`` lists every
    ``{ticket_id, from_case, to_case}`` and ``detail.statuses`` the case statuses before, so the
    operation can be undone exactly (``undone_at``), as long as nothing moved those tickets since."""

    __tablename__ = "case_operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # merge / split / link / review_accept / undo
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    undone_by: Mapped[str] = mapped_column(String(100), default="")
    undo_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
