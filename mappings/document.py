"""A mapping document as typed, immutable values (built by ``schema.load_document``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

ConditionOp = Literal["equals", "in", "not_in", "present"]


@dataclass(frozen=True)
class TransformStep:
    """One named transform with its (unchecked) document arguments."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Condition:
    """``when:`` of a field spec: the field is mapped only if the condition holds."""

    path: str
    op: ConditionOp
    operand: Any = None


@dataclass(frozen=True)
class FieldSpec:
    """How one canonical field is read: ``paths`` (first present wins) or ``const``,
    then ``transforms``, then ``code_table`` or ``status_map``; ``default`` if absent."""

    paths: tuple[str, ...] = ()
    const: Any = None
    has_const: bool = False
    default: Any = None
    transforms: tuple[TransformStep, ...] = ()
    code_table: str | None = None
    status_map: bool = False
    when: Condition | None = None
    required: bool = False

    @property
    def path_label(self) -> str | None:
        """The path(s) as shown to an admin."""
        return " | ".join(self.paths) or None


@dataclass(frozen=True)
class Bounds:
    """Plausible WGS-84 range of a system's points (default: China)."""

    lng_min: float = 73.0
    lng_max: float = 136.0
    lat_min: float = 3.0
    lat_max: float = 54.0

    def contains(self, lng: float, lat: float) -> bool:
        return self.lng_min <= lng <= self.lng_max and self.lat_min <= lat <= self.lat_max


@dataclass(frozen=True)
class LocationSpec:
    """Where the point is and in which datum; it becomes canonical ``lat``/``lng`` (WGS-84).

    Either ``path`` + ``parse`` (a transform giving a pair: ``(lng, lat)``, for epsg4549
    ``(x, y)``) or ``paths`` (``{lng, lat}``, for epsg4549 ``{x, y}``).
    """

    datum: str
    path: str | None = None
    parse: TransformStep | None = None
    paths: Mapping[str, str] = field(default_factory=dict)
    required: bool = False
    bounds: Bounds = field(default_factory=Bounds)

    @property
    def path_label(self) -> str:
        if self.path:
            return self.path
        return ",".join(self.paths.values())


@dataclass(frozen=True)
class OutboundAction:
    """What to do in the system when the hub's case reaches a canonical status."""

    action: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusMap:
    inbound: Mapping[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    outbound: Mapping[str, OutboundAction] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemVocabulary:
    """The system's own codes as its spec lists them, so a document validates on its own."""

    statuses: tuple[str, ...] = ()
    codes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    actions: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class MappingDocument:
    """One system's mapping document. Compared by identity; ``fingerprint`` names its content."""

    system: str
    title: str
    fields: Mapping[str, FieldSpec]
    payload: str = "json"
    description: str = ""
    location: LocationSpec | None = None
    code_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    status_map: StatusMap | None = None
    outbound_codes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    vocabulary: SystemVocabulary | None = None
    source: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the document's content (key order and YAML layout do not matter)."""
        text = json.dumps(self.source, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(text.encode()).hexdigest()
