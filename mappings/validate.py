"""Semantic validation of a loaded mapping document.

``schema.load_document`` guarantees the shape; this module checks the document against
what lies outside it: canonical statuses and fields, the taxonomy, registered
transforms and their arguments, and the system's own status and code lists (passed in,
or shipped in the document's ``system_vocabulary``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from mappings.canonical import CANONICAL_FIELDS, FIELD_CHOICES, CanonicalStatus
from mappings.document import MappingDocument, TransformStep
from mappings.errors import Issue
from mappings.schema import issues_from_messages
from mappings.taxonomy import Taxonomy, load_taxonomy
from mappings.transforms import TRANSFORMS

_STATUSES = frozenset(CanonicalStatus)
_DEFAULT = "_default"


def validate(doc: MappingDocument, known_statuses: Collection[str] | None = None,
             known_codes: Mapping[str, Collection[str]] | None = None, *,
             taxonomy: Taxonomy | None = None) -> list[Issue]:
    """Every problem of ``doc`` as ``Issue``s (empty list: the document is usable).

    ``known_statuses``: every status code of the system (each must be mapped or ignored);
    ``known_codes``: code-table name → every code of the system that table must cover.
    Both default to the document's ``system_vocabulary``.
    """
    vocabulary = doc.vocabulary
    if known_statuses is None and vocabulary is not None:
        known_statuses = vocabulary.statuses
    if known_codes is None and vocabulary is not None:
        known_codes = vocabulary.codes
    taxonomy = taxonomy or load_taxonomy()
    return [*_required_fields(doc), *_transform_steps(doc), *_field_values(doc, taxonomy),
            *_system_codes(doc, known_codes or {}), *_status_map(doc, known_statuses or ()),
            *_outbound_codes(doc, taxonomy, known_codes or {}), *_location(doc)]


def _required_fields(doc: MappingDocument) -> Iterator[Issue]:
    for name, (_, required, meaning) in CANONICAL_FIELDS.items():
        if required and name not in doc.fields:
            yield Issue(f"fields.{name}", f"required canonical field is not mapped ({meaning})")
    status = doc.fields.get("status")
    if status is not None and not status.status_map and not status.has_const:
        yield Issue("fields.status", "status must go through the status map (status_map: true)")
    for name, spec in doc.fields.items():
        if spec.status_map and name != "status":
            yield Issue(f"fields.{name}.status_map", "only the status field uses the status map")
    category = doc.fields.get("category")
    if category is not None and category.code_table is None and not category.has_const:
        yield Issue("fields.category", "category must map through a code table onto the taxonomy")


def _step_issues(step: TransformStep, prefix: str) -> Iterator[Issue]:
    transform = TRANSFORMS.get(step.name)
    if transform is None:
        known = ", ".join(sorted(TRANSFORMS))
        yield Issue(prefix, f"unknown transform '{step.name}' (known: {known})")
        return
    try:
        transform.load_args(step.args)
    except ValidationError as exc:
        yield from issues_from_messages(exc.messages, f"{prefix}.{step.name}")


def _transform_steps(doc: MappingDocument) -> Iterator[Issue]:
    for name, spec in doc.fields.items():
        for index, step in enumerate(spec.transforms):
            yield from _step_issues(step, f"fields.{name}.transforms[{index}]")
    if doc.location is not None and doc.location.parse is not None:
        yield from _step_issues(doc.location.parse, "location.parse")


def _value_problem(field: str, value: Any, taxonomy: Taxonomy) -> str | None:
    """Why ``value`` cannot be the canonical value of ``field`` (None: it can)."""
    if value is None:
        return None  # maps to "absent"
    if field == "status":
        return None if value in _STATUSES else f"'{value}' is not a canonical status"
    if field == "category":
        return None if value in taxonomy.codes else f"'{value}' is not a taxonomy code"
    choices = FIELD_CHOICES.get(field)
    if choices is not None and value not in choices:
        return f"'{value}' is not one of {', '.join(sorted(choices))}"
    kind = CANONICAL_FIELDS.get(field, ("any",))[0]
    fits = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "datetime": isinstance(value, datetime),
    }.get(kind, True)
    return None if fits else f"{field} takes {kind}, not {type(value).__name__} {value!r}"


def _field_values(doc: MappingDocument, taxonomy: Taxonomy) -> Iterator[Issue]:
    for name, spec in doc.fields.items():
        if spec.has_const and not spec.transforms:
            problem = _value_problem(name, spec.const, taxonomy)
            if problem:
                yield Issue(f"fields.{name}.const", problem)
        if spec.default is not None:
            problem = _value_problem(name, spec.default, taxonomy)
            if problem:
                yield Issue(f"fields.{name}.default", problem)
        if spec.code_table is not None:
            for code, value in doc.code_tables.get(spec.code_table, {}).items():
                problem = _value_problem(name, value, taxonomy)
                if problem:
                    yield Issue(f"code_tables.{spec.code_table}.{code}", f"used by {name}: {problem}")


def _system_codes(doc: MappingDocument, known_codes: Mapping[str, Collection[str]]) -> Iterator[Issue]:
    for table_name, codes in known_codes.items():
        table = doc.code_tables.get(table_name)
        if table is None:
            yield Issue(f"code_tables.{table_name}", "the system's codes need this table; it is missing")
            continue
        if _DEFAULT in table:
            continue
        for code in codes:
            if code not in table:
                yield Issue(f"code_tables.{table_name}",
                            f"code '{code}' of {doc.system} is not mapped (and the table has no _default)")


def _status_map(doc: MappingDocument, known_statuses: Collection[str]) -> Iterator[Issue]:
    status_map = doc.status_map
    if status_map is None:
        if known_statuses:
            yield Issue("status_map", f"{doc.system} has statuses but the document no status_map")
        return
    for code, target in status_map.inbound.items():
        if target not in _STATUSES:
            yield Issue(f"status_map.inbound.{code}",
                        f"'{target}' is not a canonical status ({', '.join(CanonicalStatus)})")
        if code in status_map.ignore:
            yield Issue("status_map.ignore", f"status '{code}' is both mapped and ignored")
    for code in known_statuses:
        if code not in status_map.inbound and code not in status_map.ignore:
            yield Issue(f"status_map.inbound.{code}",
                        f"status '{code}' of {doc.system} is neither mapped nor ignored")
    actions = doc.vocabulary.actions if doc.vocabulary else ()
    for status, outbound in status_map.outbound.items():
        if status not in _STATUSES:
            yield Issue(f"status_map.outbound.{status}", f"'{status}' is not a canonical status")
        if actions and outbound.action not in actions:
            yield Issue(f"status_map.outbound.{status}",
                        f"'{outbound.action}' is not an action of {doc.system} ({', '.join(actions)})")


def _outbound_codes(doc: MappingDocument, taxonomy: Taxonomy,
                    known_codes: Mapping[str, Collection[str]]) -> Iterator[Issue]:
    for field, table in doc.outbound_codes.items():
        spec = doc.fields.get(field)
        system_codes = known_codes.get(spec.code_table, ()) if spec and spec.code_table else ()
        for canonical, code in table.items():
            if canonical != _DEFAULT:
                problem = _value_problem(field, canonical, taxonomy)
                if problem:
                    yield Issue(f"outbound_codes.{field}.{canonical}", problem)
            if system_codes and code not in system_codes:
                yield Issue(f"outbound_codes.{field}.{canonical}", f"'{code}' is not a code of {doc.system}")


def _location(doc: MappingDocument) -> Iterator[Issue]:
    if doc.location is None:
        return
    bounds = doc.location.bounds
    if not (bounds.lng_min < bounds.lng_max and bounds.lat_min < bounds.lat_max):
        yield Issue("location.bounds", "each range must be [min, max] with min < max")
