"""Apply a mapping document to one payload.

Per field: read the path (the first present of several; or the ``const``), skip if a
``when`` condition fails, apply the transforms in order, then the code table or the
status map; a ``default`` (a canonical value) fills an absent result. Absent means a
missing path, ``null``, or text that is empty or only whitespace: canonical values never
hold empty strings. The location section yields ``lat``/``lng`` in WGS-84.

``map_payload`` raises ``MappingError`` at the first field that cannot be mapped;
``preview`` maps every field it can and reports the others, and never raises.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappings.canonical import CANONICAL_FIELDS, PII_FIELDS
from mappings.datum import EPSG4549_X_RANGE, EPSG4549_Y_RANGE, to_wgs84
from mappings.document import Condition, FieldSpec, LocationSpec, MappingDocument, OutboundAction
from mappings.errors import MappingError, MappingErrorKind
from mappings.paths import MISSING, resolve, text_of
from mappings.transforms import TRANSFORMS, TransformError, to_float

LOCATION = "location"


@dataclass(frozen=True)
class Provenance:
    """Where a canonical value came from: path used, raw value there, transforms and table applied."""

    path: str | None
    raw_value: Any
    transforms: tuple[str, ...] = ()
    table: str | None = None


@dataclass
class MappedRecord:
    """The canonical fields of one payload (PII included) and where each came from.

    ``status_ignored``: the system's status is in ``status_map.ignore``; ``status`` is
    then ``None`` and the ticket keeps its previous canonical status.
    """

    system: str
    fields: dict[str, Any]
    provenance: dict[str, Provenance]
    document: str = ""
    status_ignored: bool = False

    def without_pii(self) -> dict[str, Any]:
        """The fields without reporter name and phone."""
        return {k: v for k, v in self.fields.items() if k not in PII_FIELDS}


@dataclass(frozen=True)
class PreviewRow:
    """One canonical field of a preview: its value or the error that stopped it."""

    field: str
    value: Any
    path: str | None
    raw_value: Any
    transforms: tuple[str, ...]
    table: str | None
    required: bool
    error: str | None = None


@dataclass
class _Trace:
    """What happened to one field so far; filled while mapping so an error keeps it."""

    path: str | None
    raw: Any = None
    transforms: list[str] = field(default_factory=list)
    table: str | None = None
    ignored: bool = False

    def provenance(self) -> Provenance:
        return Provenance(self.path, self.raw, tuple(self.transforms), self.table)


def _absent(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


def _is_required(name: str, spec: FieldSpec) -> bool:
    return spec.required or (name in CANONICAL_FIELDS and CANONICAL_FIELDS[name][1])


def _holds(condition: Condition, payload: Mapping[str, Any]) -> bool:
    value = resolve(payload, condition.path)
    if condition.op == "present":
        return (not _absent(value)) is bool(condition.operand)
    if _absent(value) or isinstance(value, Mapping | list):
        return condition.op == "not_in"
    text = text_of(value)
    if condition.op == "equals":
        return bool(text == condition.operand)
    return (text in condition.operand) == (condition.op == "in")


def _read(spec: FieldSpec, payload: Mapping[str, Any], trace: _Trace) -> Any:
    if spec.has_const:
        trace.path, trace.raw = None, spec.const
        return spec.const
    for path in spec.paths:
        value = resolve(payload, path)
        if not _absent(value):
            trace.path, trace.raw = path, value
            return value
    if spec.paths:  # show what the first path held ("" or null), for the preview
        first = resolve(payload, spec.paths[0])
        trace.raw = None if first is MISSING else first
    return None


def _transform(name: str, spec: FieldSpec, value: Any, trace: _Trace) -> Any:
    for step in spec.transforms:
        transform = TRANSFORMS.get(step.name)
        if transform is None:
            raise MappingError(name, f"unknown transform '{step.name}'", trace.raw, path=trace.path)
        try:
            value = transform(value, step.args)
        except Exception as exc:  # a plugin's transform may raise anything: report it as data
            if name in PII_FIELDS:  # the detail would quote the personal data; so would the cause
                raise MappingError(name, f"transform {step.name} failed (detail hidden: personal data)",
                                   trace.raw, path=trace.path) from None
            detail = str(exc) if isinstance(exc, TransformError | ValueError) else repr(exc)
            raise MappingError(name, f"transform {step.name} failed: {detail}", trace.raw,
                               path=trace.path) from exc
        trace.transforms.append(step.name)
        if _absent(value):
            return None
    return value


def _lookup(doc: MappingDocument, name: str, table_name: str, value: Any, trace: _Trace) -> Any:
    trace.table = table_name
    table = doc.code_tables[table_name]
    if isinstance(value, Mapping | list | tuple):
        raise MappingError(name, "a code must be a single value, not a structure", value,
                           path=trace.path, table=table_name, kind=MappingErrorKind.WRONG_TYPE)
    key = text_of(value)
    if key in table:
        return table[key]
    if "_default" in table:
        return table["_default"]
    raise MappingError.unknown_code(name, trace.path, value, table_name)


def _status(doc: MappingDocument, name: str, value: Any, trace: _Trace) -> Any:
    trace.table = "status_map"
    status_map = doc.status_map
    key = text_of(value) if not isinstance(value, Mapping | list | tuple) else None
    if status_map is not None and key is not None:
        if key in status_map.inbound:
            return status_map.inbound[key]
        if key in status_map.ignore:
            trace.ignored = True
            return None
    raise MappingError.unmapped_status(name, trace.path, value)


_HINTS = {"int": "to_int", "float": "to_float", "datetime": "local_time / iso_time / compact_time",
          "str": "strip", "bool": "a code table such as yes_no"}


def _typed(name: str, value: Any, trace: _Trace) -> Any:
    """Check ``value`` against the canonical type of ``name`` (ints widen to float)."""
    kind = CANONICAL_FIELDS.get(name, ("any",))[0]
    if value is None or kind == "any":
        return value
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, float),
        "bool": isinstance(value, bool),
        "datetime": isinstance(value, datetime) and value.utcoffset() is not None,
    }.get(kind, True)
    if not ok:
        raise MappingError(name, f"expected {kind}, got {type(value).__name__}; "
                                 f"add a transform ({_HINTS.get(kind, kind)})", trace.raw,
                           path=trace.path, kind=MappingErrorKind.WRONG_TYPE)
    return value


def _map_field(doc: MappingDocument, name: str, spec: FieldSpec, payload: Mapping[str, Any],
               trace: _Trace) -> Any:
    value: Any = None
    if spec.when is None or _holds(spec.when, payload):
        value = _read(spec, payload, trace)
    if value is not None:
        value = _transform(name, spec, value, trace)
    if value is not None:
        if spec.code_table is not None:
            value = _lookup(doc, name, spec.code_table, value, trace)
        elif spec.status_map:
            value = _status(doc, name, value, trace)
    if _absent(value):
        value = spec.default
    if value is None and _is_required(name, spec) and not trace.ignored:
        raise MappingError.missing(name, trace.path)
    return _typed(name, value, trace)


# ------------------------------------------------------------------ location

def _coordinate(raw: Any, trace: _Trace) -> float:
    try:
        return to_float(raw)
    except TransformError as exc:
        raise MappingError(LOCATION, f"coordinate is not a number: {exc}", trace.raw,
                           path=trace.path) from exc


def _read_pair(spec: LocationSpec, payload: Mapping[str, Any], trace: _Trace) -> tuple[Any, Any] | None:
    if spec.path is not None and spec.parse is not None:
        raw = resolve(payload, spec.path)
        trace.raw = None if raw is MISSING else raw
        if _absent(raw):
            return None
        parse = TRANSFORMS.get(spec.parse.name)
        if parse is None:
            raise MappingError(LOCATION, f"unknown transform '{spec.parse.name}'", raw, path=spec.path)
        try:
            pair = parse(raw, spec.parse.args)
        except Exception as exc:  # same policy as field transforms
            raise MappingError(LOCATION, f"{spec.parse.name} failed: {exc}", raw, path=spec.path) from exc
        trace.transforms.append(spec.parse.name)
        if pair is None:
            return None
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise MappingError(LOCATION, f"{spec.parse.name} must give a pair", raw, path=spec.path)
        return pair[0], pair[1]
    keys = ("x", "y") if spec.datum == "epsg4549" else ("lng", "lat")
    raws = [resolve(payload, spec.paths[key]) for key in keys]
    trace.raw = [None if r is MISSING else r for r in raws]
    present = [not _absent(r) for r in raws]
    if not any(present):
        return None
    if not all(present):
        missing = keys[present.index(False)]
        raise MappingError(LOCATION, f"incomplete coordinates: {missing} is missing", trace.raw,
                           path=trace.path, kind=MappingErrorKind.MISSING)
    return raws[0], raws[1]


def _check_source_range(spec: LocationSpec, first: float, second: float, trace: _Trace) -> None:
    if spec.datum == "epsg4549":
        ok = (EPSG4549_X_RANGE[0] <= first <= EPSG4549_X_RANGE[1]
              and EPSG4549_Y_RANGE[0] <= second <= EPSG4549_Y_RANGE[1])
        why = "x (northing) must be 2,000,000–6,000,000 and y (easting) 340,000–660,000; swapped axes?"
    else:
        ok = -180.0 <= first <= 180.0 and -90.0 <= second <= 90.0
        why = "lng must be within ±180 and lat within ±90; swapped lng/lat?"
    if not ok:
        raise MappingError(LOCATION, why, trace.raw, path=trace.path, kind=MappingErrorKind.OUT_OF_RANGE)


def _map_location(spec: LocationSpec, payload: Mapping[str, Any],
                  trace: _Trace) -> tuple[float, float] | None:
    """The point as WGS-84 ``(lat, lng)``, or ``None`` when the payload has none."""
    pair = _read_pair(spec, payload, trace)
    if pair is None:
        if spec.required:
            raise MappingError.missing(LOCATION, trace.path)
        return None
    first, second = _coordinate(pair[0], trace), _coordinate(pair[1], trace)
    _check_source_range(spec, first, second, trace)
    try:
        lng, lat = to_wgs84(spec.datum, first, second)
    except ValueError as exc:
        raise MappingError(LOCATION, str(exc), trace.raw, path=trace.path,
                           kind=MappingErrorKind.OUT_OF_RANGE) from exc
    trace.transforms.append(f"{spec.datum}→wgs84")
    if not (math.isfinite(lng) and math.isfinite(lat)) or not spec.bounds.contains(lng, lat):
        raise MappingError(LOCATION, f"point lng={lng:.6f}, lat={lat:.6f} (WGS-84) is outside the "
                                     f"plausible area of location.bounds", trace.raw, path=trace.path,
                           kind=MappingErrorKind.OUT_OF_RANGE)
    return lat, lng


# ------------------------------------------------------------------ public

def _unmapped_required(doc: MappingDocument) -> list[str]:
    return [name for name, (_, required, _) in CANONICAL_FIELDS.items()
            if required and name not in doc.fields]


def _check_payload(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise MappingError(None, f"payload must be an object (dict), not {type(payload).__name__}",
                           kind=MappingErrorKind.BAD_PAYLOAD)
    return payload


def map_payload(doc: MappingDocument, payload: Any) -> MappedRecord:
    """Map ``payload`` with ``doc``; raises ``MappingError`` at the first field that fails."""
    data = _check_payload(payload)
    for name in _unmapped_required(doc):
        raise MappingError(name, "required canonical field is not in the mapping document",
                           kind=MappingErrorKind.MISSING)
    record = MappedRecord(doc.system, {}, {}, doc.fingerprint)
    for name, spec in doc.fields.items():
        trace = _Trace(spec.path_label)
        record.fields[name] = _map_field(doc, name, spec, data, trace)
        record.provenance[name] = trace.provenance()
        record.status_ignored = record.status_ignored or trace.ignored
    if doc.location is not None:
        trace = _Trace(doc.location.path_label)
        point = _map_location(doc.location, data, trace)
        record.fields["lat"], record.fields["lng"] = point if point else (None, None)
        record.provenance["lat"] = record.provenance["lng"] = trace.provenance()
    return record


def preview(doc: MappingDocument, payload: Any) -> list[PreviewRow]:
    """Every canonical field the document maps, with value or error, path, raw value,
    transforms and table (document order, then ``lat``/``lng``). Never raises."""
    rows: list[PreviewRow] = []
    try:
        data = _check_payload(payload)
    except MappingError as exc:
        return [PreviewRow(name, None, spec.path_label, None, (), spec.code_table, _is_required(name, spec),
                           str(exc)) for name, spec in doc.fields.items()]
    for name, spec in doc.fields.items():
        trace = _Trace(spec.path_label)
        value, error = None, None
        try:
            value = _map_field(doc, name, spec, data, trace)
        except MappingError as exc:
            error = str(exc)
        rows.append(PreviewRow(name, value, trace.path, trace.raw, tuple(trace.transforms), trace.table,
                               _is_required(name, spec), error))
    if doc.location is not None:
        trace = _Trace(doc.location.path_label)
        point, error = None, None
        try:
            point = _map_location(doc.location, data, trace)
        except MappingError as exc:
            error = str(exc)
        for index, name in enumerate(("lat", "lng")):
            rows.append(PreviewRow(name, point[index] if point else None, trace.path, trace.raw,
                                   tuple(trace.transforms), None, doc.location.required, error))
    for name in _unmapped_required(doc):
        rows.append(PreviewRow(name, None, None, None, (), None, True,
                               f"字段 {name}：映射文档未配置 / required field {name} is not in the document"))
    return rows


def outbound_action(doc: MappingDocument, status: str) -> OutboundAction | None:
    """What to do in the system when the case reaches canonical ``status`` (None: nothing)."""
    return doc.status_map.outbound.get(status) if doc.status_map else None


def outbound_code(doc: MappingDocument, field: str, value: str) -> str:
    """The system's code for canonical ``value`` of ``field`` (e.g. category → smallClass).

    Raises ``MappingError`` when the document has no such code and no ``_default``:
    the system cannot take this kind of record.
    """
    table = doc.outbound_codes.get(field, {})
    if value in table:
        return table[value]
    if "_default" in table:
        return table["_default"]
    raise MappingError.unknown_code(field, None, value, f"outbound_codes.{field}")
