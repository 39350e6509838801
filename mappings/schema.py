"""Structure of a mapping document (marshmallow), and ``load_document``.

``load_document`` checks the shape (every key known, every value of the right kind,
paths parse) and the references inside the document (tables named by fields exist,
field names are canonical), then builds the typed ``MappingDocument``. What needs
outside knowledge (canonical statuses, the taxonomy, registered transforms, the
system's own code lists) is ``validate.validate``'s job.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from mappings.canonical import CANONICAL_FIELDS, FIELD_PREFIXES
from mappings.datum import DATUMS
from mappings.document import (
    Bounds,
    Condition,
    ConditionOp,
    FieldSpec,
    LocationSpec,
    MappingDocument,
    OutboundAction,
    StatusMap,
    SystemVocabulary,
    TransformStep,
)
from mappings.errors import Issue, MappingDocumentError
from mappings.paths import PathSyntaxError, parse_path
from mappings.yamlio import load_yaml

# Schema attribute → condition operator (``in`` is a Python keyword, hence ``in_``).
_CONDITION_OPS: dict[str, ConditionOp] = {"equals": "equals", "in_": "in", "not_in": "not_in",
                                          "present": "present"}


class _Code(fields.Field[str]):
    """A system code: text only, so that YAML never turns ``05`` into the number 5."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> str:
        if isinstance(value, str) and value:
            return value
        raise ValidationError(f"a code must be non-empty text; quote it in YAML ('{value}')")


class _Path(fields.Field[str]):
    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("a path must be text, e.g. 'jq.JJDBH' or 'blgc[-1].nr'")
        try:
            parse_path(value)
        except PathSyntaxError as exc:
            raise ValidationError(f"bad path {value!r}: {exc}") from None
        return value


class _Paths(fields.Field[tuple[str, ...]]):
    """One path, or a list of paths of which the first present one is used."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ValidationError("a path or a non-empty list of paths")
        single = _Path()
        return tuple(str(single.deserialize(item)) for item in items)


class _Step(fields.Field[TransformStep]):
    """``name`` or ``{name: {arg: value}}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> TransformStep:
        if isinstance(value, str) and value:
            return TransformStep(value)
        if isinstance(value, Mapping) and len(value) == 1:
            ((name, args),) = value.items()
            if isinstance(name, str) and (args is None or isinstance(args, Mapping)):
                return TransformStep(name, dict(args or {}))
        raise ValidationError("a transform is a name or {name: {argument: value}}")


class _Outbound(fields.Field[OutboundAction]):
    """``ACTION`` or ``{action: ACTION, args: {…}}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> OutboundAction:
        if isinstance(value, str) and value:
            return OutboundAction(value)
        if (isinstance(value, Mapping) and isinstance(value.get("action"), str) and value["action"]
                and set(value) <= {"action", "args"} and isinstance(value.get("args", {}), Mapping)):
            return OutboundAction(value["action"], dict(value.get("args") or {}))
        raise ValidationError("an outbound action is ACTION or {action: ACTION, args: {…}}")


class _ConditionSchema(Schema):
    path = _Path(required=True)
    equals = _Code()
    in_ = fields.List(_Code(), data_key="in", validate=validate.Length(min=1))
    not_in = fields.List(_Code(), validate=validate.Length(min=1))
    present = fields.Boolean()

    @validates_schema
    def _one_test(self, data: dict[str, Any], **kwargs: Any) -> None:
        tests = [k for k in _CONDITION_OPS if k in data]
        if len(tests) != 1:
            raise ValidationError("give exactly one of equals, in, not_in, present")


class _FieldSpecSchema(Schema):
    path = _Paths()
    const = fields.Raw()
    default = fields.Raw()
    transforms = fields.List(_Step(), load_default=list)
    code_table = fields.String(validate=validate.Length(min=1))
    status_map = fields.Boolean(load_default=False)
    when = fields.Nested(_ConditionSchema)
    required = fields.Boolean(load_default=False)

    @pre_load
    def _shorthand(self, data: Any, **kwargs: Any) -> Any:
        return {"path": data} if isinstance(data, str | list) else data  # `title: sqbt`

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("path" in data) == ("const" in data):
            raise ValidationError("give exactly one of path, const")
        if data.get("code_table") and data.get("status_map"):
            raise ValidationError("code_table and status_map exclude each other")


class _BoundsSchema(Schema):
    lng = fields.List(fields.Float(), required=True, validate=validate.Length(equal=2))
    lat = fields.List(fields.Float(), required=True, validate=validate.Length(equal=2))


class _LocationSchema(Schema):
    datum = fields.String(required=True, validate=validate.OneOf(DATUMS))
    path = _Path()
    parse = _Step()
    paths = fields.Dict(keys=fields.String(validate=validate.OneOf(("lng", "lat", "x", "y"))),
                        values=_Path())
    required = fields.Boolean(load_default=False)
    bounds = fields.Nested(_BoundsSchema)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "paths" in data:
            if "path" in data or "parse" in data:
                raise ValidationError("give either paths, or path with parse")
            wanted = {"x", "y"} if data.get("datum") == "epsg4549" else {"lng", "lat"}
            if set(data["paths"]) != wanted:
                raise ValidationError(f"paths for datum {data.get('datum')} are {sorted(wanted)}",
                                      "paths")
        elif "path" not in data or "parse" not in data:
            raise ValidationError("give paths, or path with parse (e.g. parse: lnglat_string)")


class _StatusMapSchema(Schema):
    inbound = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    ignore = fields.List(_Code(), load_default=list)
    outbound = fields.Dict(keys=fields.String(), values=_Outbound(), load_default=dict)


class _VocabularySchema(Schema):
    statuses = fields.List(_Code(), load_default=list)
    codes = fields.Dict(keys=fields.String(), values=fields.List(_Code()), load_default=dict)
    actions = fields.List(_Code(), load_default=list)


class _DocumentSchema(Schema):
    system = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$",
                                                                    error="lower_snake_case key"))
    title = fields.String(required=True, validate=validate.Length(min=1))
    payload = fields.String(load_default="json", validate=validate.OneOf(("json", "xml")))
    description = fields.String(load_default="")
    fields_ = fields.Dict(keys=fields.String(), values=fields.Nested(_FieldSpecSchema),
                          data_key="fields", required=True)
    location = fields.Nested(_LocationSchema, allow_none=True)
    code_tables = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(),
                                                                       values=fields.Raw(allow_none=True)),
                              load_default=dict)
    status_map = fields.Nested(_StatusMapSchema, allow_none=True)
    outbound_codes = fields.Dict(keys=fields.String(),
                                 values=fields.Dict(keys=fields.String(), values=_Code()),
                                 load_default=dict)
    system_vocabulary = fields.Nested(_VocabularySchema, allow_none=True)


def issues_from_messages(messages: Any, prefix: str = "") -> list[Issue]:
    """Flatten marshmallow's nested error messages into ``Issue``s with dotted paths."""
    if isinstance(messages, Mapping):
        found: list[Issue] = []
        for key, sub in messages.items():
            if key in ("_schema", "value"):  # schema-level, or a Dict field's value layer
                path = prefix
            elif key == "key":
                path = f"{prefix} (key)"
            elif isinstance(key, int):
                path = f"{prefix}[{key}]"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            found.extend(issues_from_messages(sub, path))
        return found
    if isinstance(messages, list | tuple):
        return [issue for item in messages for issue in issues_from_messages(item, prefix)]
    return [Issue(prefix, str(messages))]


def _field_name_issue(name: str) -> str | None:
    if name in ("lat", "lng"):
        return "lat/lng come from the location section (it converts the datum)"
    if name in CANONICAL_FIELDS:
        return None
    prefix = next((p for p in FIELD_PREFIXES if name.startswith(p)), None)
    if prefix is not None and len(name) > len(prefix):
        return None
    hint = difflib.get_close_matches(name, list(CANONICAL_FIELDS), n=1)
    guess = f"; did you mean '{hint[0]}'?" if hint else ""
    return f"unknown canonical field '{name}' (extras start with {' or '.join(FIELD_PREFIXES)}){guess}"


def _reference_issues(data: Mapping[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    tables = data.get("code_tables", {})
    for name, spec in data["fields_"].items():
        problem = _field_name_issue(name)
        if problem:
            issues.append(Issue(f"fields.{name}", problem))
        table = spec.get("code_table")
        if table is not None and table not in tables:
            hint = difflib.get_close_matches(table, list(tables), n=1)
            guess = f"; did you mean '{hint[0]}'?" if hint else ""
            issues.append(Issue(f"fields.{name}.code_table", f"unknown table '{table}'{guess}"))
        if spec.get("status_map") and data.get("status_map") is None:
            issues.append(Issue(f"fields.{name}.status_map", "the document has no status_map section"))
    for name in data.get("outbound_codes", {}):
        if name not in CANONICAL_FIELDS:
            issues.append(Issue(f"outbound_codes.{name}", f"unknown canonical field '{name}'"))
    return issues


def load_document(source: str | Mapping[str, Any]) -> MappingDocument:
    """Parse (YAML text) and structurally check a mapping document.

    Raises ``MappingDocumentError`` whose ``issues`` name every problem by path, e.g.
    ``fields.category.code_table: unknown table 'categry'; did you mean 'category'?``.
    """
    raw = load_yaml(source) if isinstance(source, str) else source
    if not isinstance(raw, Mapping):
        raise MappingDocumentError([Issue("", "a mapping document is a YAML mapping (system, fields, …)")])
    try:
        data = _DocumentSchema().load(copy.deepcopy(dict(raw)))
    except ValidationError as exc:
        raise MappingDocumentError(issues_from_messages(exc.messages)) from exc
    issues = _reference_issues(data)
    if issues:
        raise MappingDocumentError(issues)
    return _build(data, copy.deepcopy(dict(raw)))


def _build(data: Mapping[str, Any], source: Mapping[str, Any]) -> MappingDocument:
    status_map = data.get("status_map")
    vocabulary = data.get("system_vocabulary")
    return MappingDocument(
        system=data["system"], title=data["title"], payload=data["payload"],
        description=data["description"],
        fields={name: _field_spec(spec) for name, spec in data["fields_"].items()},
        location=_location(data["location"]) if data.get("location") else None,
        code_tables={name: dict(table) for name, table in data["code_tables"].items()},
        status_map=StatusMap(dict(status_map["inbound"]), tuple(status_map["ignore"]),
                             dict(status_map["outbound"])) if status_map else None,
        outbound_codes={name: dict(table) for name, table in data["outbound_codes"].items()},
        vocabulary=SystemVocabulary(tuple(vocabulary["statuses"]),
                                    {k: tuple(v) for k, v in vocabulary["codes"].items()},
                                    tuple(vocabulary["actions"])) if vocabulary else None,
        source=source,
    )


def _field_spec(spec: Mapping[str, Any]) -> FieldSpec:
    when = spec.get("when")
    condition = None
    if when is not None:
        key = next(k for k in _CONDITION_OPS if k in when)
        operand = tuple(when[key]) if key in ("in_", "not_in") else when[key]
        condition = Condition(when["path"], _CONDITION_OPS[key], operand)
    return FieldSpec(paths=spec.get("path", ()), const=spec.get("const"), has_const="const" in spec,
                     default=spec.get("default"), transforms=tuple(spec["transforms"]),
                     code_table=spec.get("code_table"), status_map=spec["status_map"], when=condition,
                     required=spec["required"])


def _location(spec: Mapping[str, Any]) -> LocationSpec:
    bounds = spec.get("bounds")
    return LocationSpec(datum=spec["datum"], path=spec.get("path"), parse=spec.get("parse"),
                        paths=dict(spec.get("paths", {})), required=spec["required"],
                        bounds=Bounds(*bounds["lng"], *bounds["lat"]) if bounds else Bounds())
