"""The hub's stable facade for plugins: DTOs, the system-type registry, errors.

A plugin imports this module (and `adapters`, `mappings`), never the hub's ORM models,
sessions or services. Everything here is plain data or a small protocol.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pluggy

from mappings.errors import MappingError

hookimpl = pluggy.HookimplMarker("gridhub")
"""Decorator for plugin hook implementations: ``@hookimpl def hub_register_system_types(registry)``."""


class HubError(Exception):
    """Base of the hub's own errors a plugin may see."""


class UnknownSystemType(HubError):
    pass


def error_kind(exc: BaseException) -> str:
    """How a connector's failure should be treated: ``transient`` (retry later) or
    ``permanent``. Connectors raise ``adapters`` errors, which carry ``kind``; anything
    else is permanent until a person looks at it."""
    kind = getattr(exc, "kind", "")
    return kind if kind in ("transient", "permanent") else "permanent"


# ---------------------------------------------------------------- inbound records


@dataclass(frozen=True)
class RawRecord:
    """One record as a department system gave it, before any mapping.

    ``event_id`` is unique per system for this exact snapshot: storing the same one twice is a
    no-op, which is what makes at-least-once reading safe. ``raw`` is the text verbatim.
    """

    event_id: str
    external_id: str
    raw: str
    version: int | None = None
    content_type: str = "application/json"
    kind: str = "snapshot"


class InboundSink(Protocol):
    """Where a connector hands records to the hub. Stored before processing, then queued."""

    def store(self, record: RawRecord) -> bool:
        """Store one record; True when new, False when this event id was already stored."""
        ...

    def store_many(self, records: Sequence[RawRecord], cursor: tuple[str, str] | None = None) -> int:
        """Store records and (optionally) move cursor ``(name, value)`` in one transaction.

        Returns how many were new. Either all are stored and the cursor moves, or nothing.
        """
        ...

    def reject(self, reason: str, raw: str, content_type: str = "application/json") -> None:
        """Keep a record that could not even be identified (schema failure) with the reason."""
        ...


class CursorStore(Protocol):
    def get(self, name: str) -> str | None:
        """The stored cursor value, or None when never set."""
        ...


@dataclass
class PollReport:
    """What one poll run did: how many records were read and how many were new."""

    read: int = 0
    stored: int = 0
    pages: int = 0
    more: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookRequest:
    """An inbound HTTP request to ``/hooks/{system_key}``, body as raw bytes."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemConfig:
    """A configured system as its connector sees it. Credentials are decrypted; never log them."""

    key: str
    plugin: str
    name: str
    base_url: str
    credentials: Mapping[str, str]
    settings: Mapping[str, Any]
    poll_interval_s: int = 30

    def __repr__(self) -> str:
        return f"SystemConfig(key={self.key!r}, plugin={self.plugin!r}, base_url={self.base_url!r})"


@runtime_checkable
class Connector(Protocol):
    """What a plugin's connector offers. Pulled systems implement ``poll``, pushing ones
    ``handle_webhook``; all implement ``fetch`` (reconciliation) and ``test_connection``."""

    def test_connection(self) -> ConnectionReport: ...

    def fetch(self, external_id: str) -> RawRecord | None: ...


class PullConnector(Connector, Protocol):
    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport: ...


class PushConnector(Connector, Protocol):
    def handle_webhook(self, request: WebhookRequest, sink: InboundSink) -> WebhookReply: ...


# ---------------------------------------------------------------- outbound effects


HUB_SYSTEM_TYPE = "gridhub"
"""The system type of the hub's own records: an ``ExternalRef(HUB_SYSTEM_TYPE, case_number)``
points at a hub case (a record the hub created elsewhere carries the case number)."""

GRID_REPORT_TYPE = "grid_report"
"""The system type of grid workers' reports made in the hub itself (``hub.services.reports``):
built in, never delivered to; department mappings name it where they file a grid report under
its own code (数字城管 ``source`` 07, 综合执法 ``Source`` 网格)."""

# Outbound operations. Every effect payload carries ``case_number`` (the hub's number, e.g.
# ``GH-20261123-000042``) and ``changed_at`` (ISO 8601 UTC instant of the hub change that caused
# the effect: stable across attempts, so a system that de-duplicates on a time, as the police
# feedback's ``FKSJ`` does, sees the same value on every retry).
OP_STATUS = "status"
"""Tell a linked record the case's new canonical status. Payload: ``external_id``, ``status``
(canonical), ``action`` ``{"action", "args"}`` (the mapping's ``status_map.outbound`` entry),
``result_text`` (the handling department's words, may be ""), ``reason`` (why: a return's or a
suspension's reason, may be ""), ``master_external_id`` (for a duplicate: the same system's
master record, may be "")."""
OP_CREATE = "create"
"""Open a record for the case in a department system (routing). Payload: ``source`` (the
system's own source code the hub files under, e.g. 数字城管 ``07``/``03``, 综合执法 ``网格``/
``12345``), ``external_no`` (the number the hub files it under: the case number, or the 12345
``gdbh`` it came from; the system de-duplicates on it), ``category`` (canonical; the plugin
turns it into its own code with ``mappings.engine.outbound_code(effect.mapping, "category",
...)``), ``description``, ``address``, ``location`` (``{"lng", "lat"}`` in WGS-84, or null),
``reported_at`` (ISO 8601 UTC), ``reporter`` (a grid worker's display name, may be ""),
``photos`` (list of URLs). A success returns the new record's id as ``external_ref`` (also
when the system answers "already created": 409 / 2003)."""
OP_NOTE = "note"
"""Add a progress note to a linked record (12345 ``BC``, 数字城管 ``SUPPLEMENT``, 综合执法
``AddRemark``). Payload: ``external_id``, ``text``, ``photos`` (list of URLs, may be empty)."""
OP_MERGE = "merge"
"""The linked record duplicates another record of the same incident. Payload: ``external_id``,
``master_external_id`` (the master record in the *same* system, may be "" when the system holds
none), ``master_case_number``, ``text`` (a sentence for the system's people). 12345 marks it
``CF`` with the master's ``gdbh``; 数字城管 cancels a case the hub created that is still in
``01``, otherwise supplements it with the text."""
OPERATIONS = (OP_STATUS, OP_CREATE, OP_NOTE, OP_MERGE)


@dataclass(frozen=True)
class OutboundEffect:
    """One effect the hub asks a system to apply (a status change, a note, a new record).

    ``operation`` is one of ``OPERATIONS`` (payloads documented there). ``idempotency_key`` is
    stable across every attempt of the same effect: the connector puts it where the system
    de-duplicates (12345 ``X-Request-Id``, ...), so a retry after a lost answer is applied
    once. ``attempt`` counts from 1. ``mapping`` is the system's *active* mapping document
    (``mappings.document.MappingDocument``) at delivery time, so a dead letter replayed after a
    mapping fix is rendered with the fixed mapping; ``None`` when the system has none.
    """

    message_id: int
    case_id: int | None
    system_key: str
    operation: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int = 1
    mapping: Any = None


@dataclass(frozen=True)
class DeliveryResult:
    """What a system answered. An effect the system reports as already applied (409, code
    2003, ``DUPLICATE_FEEDBACK``) is a success: ``ok=True``. ``ok=False`` means the system
    refused it for good (no retry); raise ``DeliveryError`` for anything retryable."""

    ok: bool
    detail: str = ""
    external_ref: str | None = None


class DeliveryError(HubError):
    """A delivery failed. ``kind``: ``transient`` (retry with backoff, waiting at least
    ``retry_after`` seconds when the system said so), ``permanent`` (the same request will
    fail again: dead-letter it) or ``mapping`` (the effect cannot be expressed in the system's
    terms: dead-letter it until the mapping is fixed). The message must not hold credentials."""

    KINDS = ("transient", "permanent", "mapping")

    def __init__(self, message: str, kind: str = "transient", retry_after: float | None = None) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"delivery error kind must be one of {self.KINDS}, not {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class EffectPayload:
    """An outbound effect's payload read for a department system's request. Every refusal is a
    ``DeliveryError(kind="mapping")`` whose message starts with ``where`` (the request and the
    record it concerns), so the dead letter says what the mapping or the case lacks."""

    def __init__(self, payload: Mapping[str, Any], where: str) -> None:
        self.payload = payload
        self.where = where

    def error(self, reason: str) -> DeliveryError:
        return mapping_error(self.where, reason)

    def text(self, name: str) -> str:
        """The field as stripped text ("" when absent or not text)."""
        return text_of(self.payload, name)

    def required(self, name: str, refusal: str) -> str:
        """The field's text; refused with ``refusal`` when empty."""
        value = self.text(name)
        if not value:
            raise self.error(refusal)
        return value

    def one_of(self, name: str, allowed: Sequence[str], refusal: str) -> str:
        """The field's text when it is one of ``allowed``; else refused: ``refusal`` is followed by
        what was given and the allowed values."""
        value = self.text(name)
        if value not in allowed:
            raise self.error(f"{name} {value or '(none)'!r} {refusal} ({', '.join(allowed)})")
        return value

    def photos(self) -> list[str]:
        """``photos`` as a list of non-empty URLs."""
        photos = self.payload.get("photos") or []
        if not isinstance(photos, list) or not all(isinstance(p, str) for p in photos):
            raise self.error("photos is not a list of URLs")
        return [p.strip() for p in photos if p.strip()]

    def local_time(self, name: str, fmt: str, zone: tzinfo) -> str | None:
        """The field (ISO 8601, UTC when it names no offset) as ``fmt`` in ``zone``; None when absent."""
        value = self.payload.get(name)
        if value is None or value == "":
            return None
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise self.error(f"{name} is not an ISO 8601 time: {value!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(zone).strftime(fmt)


def mapping_error(where: str, reason: str) -> DeliveryError:
    """The effect cannot be put in the system's terms: dead-lettered until the mapping is fixed."""
    return DeliveryError(f"{where}: {reason}", "mapping")


def text_of(payload: Mapping[str, Any], name: str) -> str:
    """A payload field as stripped text ("" when absent or not text)."""
    value = payload.get(name)
    return value.strip() if isinstance(value, str) else ""


@runtime_checkable
class Deliverer(Protocol):
    """A connector that can apply outbound effects implements ``deliver``."""

    def deliver(self, effect: OutboundEffect) -> DeliveryResult: ...


def decode_json(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise MappingError("payload", "payload is not a JSON object", raw[:80])
    return value


@dataclass(frozen=True)
class SystemType:
    """A kind of department system a plugin can connect (one plugin may offer several).

    ``decode`` turns a stored raw record into the dict the mapping document reads;
    ``default_mapping`` is the path of the YAML mapping document installed on first use.
    """

    key: str
    title: str
    connector_factory: Callable[[SystemConfig], Connector]
    default_mapping: Path
    decode: Callable[[str], dict[str, Any]] = decode_json
    pull: bool = True
    push: bool = False
    credential_fields: tuple[str, ...] = ()
    status_labels: Mapping[str, str] = field(default_factory=dict)  # own status code -> own words
    description: str = ""
    version: str = "0"
    # the outbound operations its connector's ``deliver`` applies (``OPERATIONS``); the hub
    # plans no other effect for this system type
    operations: tuple[str, ...] = ()


class SystemTypeRegistry:
    """Handed to ``hub_register_system_types``; the hub looks system types up here."""

    def __init__(self) -> None:
        self._types: dict[str, SystemType] = {}
        self._owners: dict[str, str] = {}

    def register(self, system_type: SystemType, owner: str = "") -> None:
        if system_type.key in self._types:
            raise HubError(f"system type {system_type.key!r} registered twice "
                           f"({self._owners[system_type.key]} and {owner})")
        self._types[system_type.key] = system_type
        self._owners[system_type.key] = owner

    def get(self, key: str) -> SystemType:
        try:
            return self._types[key]
        except KeyError:
            raise UnknownSystemType(f"no plugin offers system type {key!r}") from None

    def owner(self, key: str) -> str:
        return self._owners.get(key, "")

    def all(self) -> list[SystemType]:
        return [self._types[k] for k in sorted(self._types)]

    def __contains__(self, key: object) -> bool:
        return key in self._types


# ---------------------------------------------------------------- tickets and matching


@dataclass(frozen=True)
class ExternalRef:
    """An explicit pointer from one ticket to a record in another system type."""

    system_type: str
    external_id: str
    relation: str = "same_incident"


@dataclass(frozen=True)
class TicketView:
    """A ticket as plugins and matchers see it: canonical fields, no PII, no ORM."""

    id: int
    system_key: str
    system_type: str
    external_id: str
    case_id: int | None
    fields: Mapping[str, Any]
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class CaseView:
    id: int
    number: str
    status: str
    category: str
    title: str
    ticket_count: int


@dataclass(frozen=True)
class MatchDecision:
    """A matcher's answer: link the ticket to ``case_id`` (why, with what confidence).

    ``action`` other than ``link`` means "open a new case, and remember why": ``review`` (a
    person should decide about ``candidate_case_id``), ``recurrence`` (the incident recurs at
    the closed ``candidate_case_id``) or ``new``; ``case_id`` is then ignored."""

    case_id: int
    reason: str
    score: float = 1.0
    matcher: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    action: str = "link"
    candidate_case_id: int | None = None


class CaseFinder(Protocol):
    """Read-only look-ups a matcher may use (the hub implements them over its store)."""

    def case_of_external(self, system_type: str, external_id: str) -> int | None:
        """The case holding the ticket ``external_id`` of a system type, if any."""
        ...

    def cases_referencing(self, system_type: str, external_id: str) -> list[int]:
        """Cases with a ticket that explicitly references this record."""
        ...


__all__ = [
    "GRID_REPORT_TYPE",
    "HUB_SYSTEM_TYPE",
    "OPERATIONS",
    "OP_CREATE",
    "OP_MERGE",
    "OP_NOTE",
    "OP_STATUS",
    "CaseFinder",
    "CaseView",
    "ConnectionReport",
    "Connector",
    "CursorStore",
    "Deliverer",
    "DeliveryError",
    "DeliveryResult",
    "EffectPayload",
    "ExternalRef",
    "HubError",
    "InboundSink",
    "MappingError",
    "MatchDecision",
    "OutboundEffect",
    "PollReport",
    "PullConnector",
    "PushConnector",
    "RawRecord",
    "SystemConfig",
    "SystemType",
    "SystemTypeRegistry",
    "TicketView",
    "UnknownSystemType",
    "WebhookReply",
    "WebhookRequest",
    "decode_json",
    "error_kind",
    "hookimpl",
    "mapping_error",
    "text_of",
]
