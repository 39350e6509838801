"""SQLAlchemy 2 typed models, one module per aggregate."""

from hub.models.account import AuditEntry, User
from hub.models.base import Base, UTCDateTime, utcnow
from hub.models.case import Case, CaseEvent
from hub.models.dedup import CaseOperation, DedupEntry, DedupKey, MatchRecord, ReviewStatus
from hub.models.inbound import InboundEvent, InboundStatus
from hub.models.metrics import BUCKET_COLUMNS, HANDLING_BUCKETS, MetricsRollup, MetricsWatermark
from hub.models.outbound import CircuitBreaker, CircuitState, OutboundMessage, OutboundStatus
from hub.models.sync import SyncLink
from hub.models.system import ApiToken, MappingVersion, PollCursor, SyncLog, System
from hub.models.ticket import Ticket, TicketAlias, TicketReference
from hub.models.work import LEVELS, Attachment, CalendarDay, GridReport, Notification, TaskItem

__all__ = [
    "BUCKET_COLUMNS",
    "HANDLING_BUCKETS",
    "LEVELS",
    "ApiToken",
    "Attachment",
    "AuditEntry",
    "Base",
    "CalendarDay",
    "Case",
    "CaseEvent",
    "CaseOperation",
    "CircuitBreaker",
    "CircuitState",
    "DedupEntry",
    "DedupKey",
    "GridReport",
    "InboundEvent",
    "InboundStatus",
    "MappingVersion",
    "MatchRecord",
    "MetricsRollup",
    "MetricsWatermark",
    "Notification",
    "OutboundMessage",
    "OutboundStatus",
    "PollCursor",
    "ReviewStatus",
    "SyncLink",
    "SyncLog",
    "System",
    "TaskItem",
    "Ticket",
    "TicketAlias",
    "TicketReference",
    "UTCDateTime",
    "User",
    "utcnow",
]
