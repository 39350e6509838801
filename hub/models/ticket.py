"""A ticket: one record in one department system, linked to one case."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from hub.models.case import Case


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("system_key", "external_id"),
        Index("ix_ticket_category_reported", "category", "reported_at"),
        Index("ix_ticket_type_external", "system_type", "external_id"),  # explicit cross-references
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_key: Mapped[str] = mapped_column(String(64))
    system_type: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case.id"), index=True, nullable=True)
    # version / seq of the newest snapshot applied; older snapshots never move the ticket back.
    seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    category_code: Mapped[str] = mapped_column(String(64), default="")
    category: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lng: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_code: Mapped[str] = mapped_column(String(32), default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    external_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # every canonical field the mapping produced, PII removed
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw_payload: Mapped[str] = mapped_column(Text, default="")  # newest snapshot, verbatim
    raw_content_type: Mapped[str] = mapped_column(String(64), default="application/json")
    mapping_version_id: Mapped[int | None] = mapped_column(ForeignKey("mapping_version.id"), nullable=True)
    # reporter identity: encrypted at rest; phone also as a keyed hash for matching
    reporter_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reporter_phone_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    reporter_confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    case: Mapped[Case | None] = relationship(back_populates="tickets")
    aliases: Mapped[list[TicketAlias]] = relationship(back_populates="ticket", cascade="all, delete-orphan")
    references: Mapped[list[TicketReference]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan"
    )


class TicketAlias(Base):
    """Every id a ticket ever had in its system (案卷号, 案件编号, …)."""

    __tablename__ = "ticket_alias"
    __table_args__ = (UniqueConstraint("system_key", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    system_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(100))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="aliases")


class TicketReference(Base):
    """An explicit cross-reference from a ticket to a record of another system."""

    __tablename__ = "ticket_reference"
    __table_args__ = (
        UniqueConstraint("ticket_id", "ref_system_type", "ref_external_id"),
        Index("ix_ticket_reference_target", "ref_system_type", "ref_external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    ref_system_type: Mapped[str] = mapped_column(String(64))
    ref_external_id: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str] = mapped_column(String(32), default="same_incident")

    ticket: Mapped[Ticket] = relationship(back_populates="references")
