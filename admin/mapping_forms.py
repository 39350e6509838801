"""The mapping document as forms, and back: pure functions behind the console's mapping editor.

A grid centre's admin edits field paths, code tables and status maps in forms; the document
stays the single source (YAML text). The form is laid over the document it was rendered from
(``base``): an input that is absent leaves its part of the document as it was, and a part whose
posted value means what the document already says is kept byte-for-byte (shorthand, key order,
value types), so an untouched form gives back the very same document. Only a changed document is
dumped anew (``yaml.safe_dump``: comments are lost then, the content is not).

Validation issues carry document paths (``status_map.inbound.99``); ``issue_key`` turns them into
the key of the form row they belong to, so the page shows each error next to its input.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.services.redact import redact_text
from mappings import CANONICAL_FIELDS, FIELD_CHOICES, PII_FIELDS, CanonicalStatus, Taxonomy
from mappings.canonical import STATUS_LABELS_ZH
from mappings.errors import Issue, MappingDocumentError
from mappings.yamlio import load_yaml

IGNORE = "__ignore__"  # the status select's "ignore" choice (no canonical status can be named so)
BLANK_ROWS = 2  # empty rows under each code table, to add codes without JavaScript
LOCATION_FIELDS = ("lat", "lng")  # they come from the location section, not from a field spec
DOCUMENT = "document"  # issues that belong to no form row: shown in the summary and by the YAML
MASK = "***"
_WORDS: dict[str, Any] = {"null": None, "true": True, "false": False}
# What the form calls each canonical field (the admins read Chinese; the name stays beside it).
FIELD_LABELS_ZH: dict[str, Any] = {  # lazy: shown in the request's language
    "external_id": _l("系统内编号"), "version": _l("版本号"), "title": _l("标题"), "description": _l("问题描述"),
    "category": _l("规范类别"), "category_code": _l("系统类别代码"), "category_name": _l("系统类别名称"),
    "status": _l("规范状态"), "status_code": _l("系统状态代码"), "reported_at": _l("上报时间"),
    "updated_at": _l("更新时间"),
    "deadline": _l("办理时限"), "address": _l("地址"), "district": _l("区"), "street": _l("街道/镇"),
    "grid_code": _l("网格编码"),
    "urgency": _l("紧急程度"), "source": _l("来源"), "department": _l("承办单位"), "result_text": _l("办理结果"),
    "reporter_name": _l("反映人姓名（个人信息）"), "reporter_phone": _l("反映人电话（个人信息）"),
    "reporter_confidential": _l("反映人身份保密"), "external_ref": _l("对方系统编号"),
    "duplicate_of": _l("重复件的主件编号"),
    "handover_to": _l("移交去向"), "satisfaction": _l("满意度"), "verify_result": _l("核查结果"),
    "lat": _l("纬度（WGS-84）"), "lng": _l("经度（WGS-84）"),
}
_MISSING_CODE = re.compile(r"^code '(.+)' of ")


# ----------------------------------------------------------------------------- the form's rows


@dataclass
class FieldRow:
    """One canonical (or alias_/x_) field: where it is read and what turns it canonical."""

    name: str
    meaning: str
    required: bool
    in_document: bool
    path: str = ""
    transforms: str = ""
    table: str = ""
    const: str | None = None  # a constant field has no path: edited in the YAML tab
    status_map: bool = False
    notes: list[str] = field(default_factory=list)  # when/default/required: kept, shown

    @property
    def key(self) -> str:
        return f"field:{self.name}"

    @property
    def label(self) -> str:
        return str(FIELD_LABELS_ZH.get(self.name) or _("系统特有字段"))


@dataclass
class CodeRow:
    code: str
    value: str  # as shown: text, or null/true/false
    unmapped: bool = False  # a code of the system's vocabulary the table lacks


@dataclass
class CodeTable:
    index: int
    name: str
    used_by: list[str]
    choices: list[tuple[str, str]] | None  # (value, label) when the values form a closed set
    rows: list[CodeRow]

    @property
    def key(self) -> str:
        return f"ct:{self.name}"


@dataclass
class StatusRow:
    code: str
    value: str  # a canonical status, IGNORE, or "" (not mapped yet)
    known: bool  # listed in system_vocabulary.statuses

    @property
    def key(self) -> str:
        return f"st:{self.code}"


@dataclass
class OutboundRow:
    status: str
    label: str
    action: str
    args: str

    @property
    def key(self) -> str:
        return f"out:{self.status}"


@dataclass
class FormView:
    fields: list[FieldRow]
    tables: list[CodeTable]
    statuses: list[StatusRow]
    outbound: list[OutboundRow]
    actions: list[str]  # the system's action names (empty: free text)
    status_choices: list[tuple[str, str]]

    def keys(self) -> set[str]:
        """Every key an error can be shown next to."""
        found = {DOCUMENT, "st", "out", "ct"}
        found |= {row.key for row in self.fields}
        for table in self.tables:
            found.add(table.key)
            found |= {f"{table.key}:{row.code}" for row in table.rows if row.code}
        found |= {row.key for row in self.statuses} | {row.key for row in self.outbound}
        return found


def _flow(value: Any) -> str:
    """A value as one line of YAML flow text (transforms, action arguments)."""
    text: str = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False,
                               width=1 << 20)
    return text.strip().removesuffix("...").strip()


def _paths(raw: Any) -> list[str]:
    path = raw.get("path") if isinstance(raw, dict) else raw
    if isinstance(path, str):
        return [path]
    return list(path) if isinstance(path, list) else []


def _spec(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {"path": raw}


def show_code_value(value: Any) -> str:
    """A code-table value as the form shows it (null/true/false spelled out)."""
    for word, meaning in _WORDS.items():
        if value is meaning:
            return word
    return str(value)


def _field_notes(spec: Mapping[str, Any]) -> list[str]:
    notes = []
    when = spec.get("when")
    if isinstance(when, dict):
        notes.append(_("条件 when: %(expr)s", expr=_flow(when)))
    if "default" in spec:
        notes.append(_("默认值 default: %(expr)s", expr=_flow(spec["default"])))
    if spec.get("required"):
        notes.append(_("必填 required"))
    return notes


def _field_rows(fields: Mapping[str, Any]) -> list[FieldRow]:
    names = [n for n in CANONICAL_FIELDS if n not in LOCATION_FIELDS]
    names += [n for n in fields if n not in CANONICAL_FIELDS]
    rows = []
    for name in names:
        _, required, meaning = CANONICAL_FIELDS.get(name, ("any", False, "extra, kept as mapped"))
        row = FieldRow(name, meaning, required, name in fields)
        if name in fields:
            spec = _spec(fields[name])
            row.path = " | ".join(_paths(spec))
            row.transforms = _flow(spec.get("transforms") or [])[1:-1]
            row.table = str(spec.get("code_table") or "")
            row.const = _flow(spec["const"]) if "const" in spec else None
            row.status_map = bool(spec.get("status_map"))
            row.notes = _field_notes(spec)
        rows.append(row)
    return rows


def _choices(used_by: list[str], taxonomy: Taxonomy) -> list[tuple[str, str]] | None:
    if "category" in used_by:
        return sorted(((c, f"{taxonomy.name_of(c)}（{c}）") for c in taxonomy.codes), key=lambda x: x[0])
    for name in used_by:
        if name in FIELD_CHOICES:
            return [(c, c) for c in sorted(FIELD_CHOICES[name])]
        if CANONICAL_FIELDS.get(name, ("",))[0] == "bool":
            return [("true", _("是 true")), ("false", _("否 false"))]
    return None


def _table_views(source: Mapping[str, Any], taxonomy: Taxonomy) -> list[CodeTable]:
    fields = source.get("fields") or {}
    vocabulary = (source.get("system_vocabulary") or {}).get("codes") or {}
    tables = []
    for index, (name, table) in enumerate((source.get("code_tables") or {}).items()):
        used_by = [f for f, raw in fields.items() if _spec(raw).get("code_table") == name]
        rows = [CodeRow(str(code), show_code_value(value)) for code, value in table.items()]
        if "_default" not in table:
            rows += [CodeRow(code, "", unmapped=True) for code in vocabulary.get(name, []) if code not in table]
        rows += [CodeRow("", "") for _ in range(BLANK_ROWS)]
        tables.append(CodeTable(index, name, used_by, _choices(used_by, taxonomy), rows))
    return tables


def _status_views(source: Mapping[str, Any]) -> tuple[list[StatusRow], list[OutboundRow]]:
    status_map = source.get("status_map") or {}
    inbound, ignore = status_map.get("inbound") or {}, status_map.get("ignore") or []
    known = list((source.get("system_vocabulary") or {}).get("statuses") or [])
    codes = known + [c for c in [*inbound, *ignore] if c not in known]
    codes = list(dict.fromkeys(codes))
    rows = [StatusRow(c, IGNORE if c in ignore else str(inbound.get(c, "")), c in known) for c in codes]
    rows.append(StatusRow("", "", False))
    outbound = status_map.get("outbound") or {}
    out_rows = []
    for status in CanonicalStatus:
        action, args = _outbound_parts(outbound.get(status.value))
        out_rows.append(OutboundRow(status.value, _(STATUS_LABELS_ZH[status.value]), action,
                                    _flow(args) if args else ""))
    return rows, out_rows


def _outbound_parts(raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, dict):
        return str(raw.get("action") or ""), dict(raw.get("args") or {})
    return (raw, {}) if isinstance(raw, str) else ("", {})


def form_view(source: Mapping[str, Any], taxonomy: Taxonomy) -> FormView:
    """The rows of the form for a (structurally valid) document's raw mapping."""
    statuses, outbound = _status_views(source)
    actions = list((source.get("system_vocabulary") or {}).get("actions") or [])
    choices = [(s.value, f"{_(STATUS_LABELS_ZH[s.value])}（{s.value}）") for s in CanonicalStatus]
    return FormView(_field_rows(source.get("fields") or {}), _table_views(source, taxonomy), statuses,
                    outbound, actions, choices)


# ----------------------------------------------------------------------------- form → document


class _Problems(dict[str, list[str]]):
    def add(self, key: str, message: str) -> None:
        self.setdefault(key, []).append(message)


def _flow_list(text: str) -> list[Any]:
    """``strip, {null_if: {values: [匿名]}}`` (brackets optional) → the transforms list."""
    text = text.strip()
    if not text:
        return []
    value = load_yaml(text if text.startswith("[") else f"[{text}]")
    if not isinstance(value, list):
        raise MappingDocumentError([Issue("", "转换应写成列表，如 strip, clean_text")])
    return value


def _apply_field(fields: dict[str, Any], name: str, form: Mapping[str, str], problems: _Problems) -> None:
    path_text = form.get(f"fld.{name}.path")
    transforms_text = form.get(f"fld.{name}.transforms")
    table = form.get(f"fld.{name}.table")
    if path_text is None:
        return  # not on the form (a constant): unchanged
    paths = [p.strip() for p in path_text.split("|") if p.strip()]
    raw = fields.get(name)
    if not paths:
        if raw is not None and "const" not in _spec(raw):
            del fields[name]  # the admin emptied the path: the field is no longer mapped
        return
    spec = copy.deepcopy(_spec(raw)) if raw is not None else {}
    if paths != _paths(raw):
        spec["path"] = paths[0] if len(paths) == 1 else paths
    if transforms_text is not None:
        try:
            steps = _flow_list(transforms_text)
        except MappingDocumentError as exc:
            problems.add(f"field:{name}", f"转换写法有误 / transforms: {exc}")
        else:
            if steps != (spec.get("transforms") or []):
                if steps:
                    spec["transforms"] = steps
                else:
                    spec.pop("transforms", None)
    if table is not None and table != (spec.get("code_table") or ""):
        if table:
            spec["code_table"] = table
        else:
            spec.pop("code_table", None)
    if raw is None or spec != _spec(raw):
        fields[name] = spec


def _parse_code_value(text: str, original: Any, had: bool) -> Any:
    if had and text == show_code_value(original):
        return original  # unchanged: keep its type (an int stays an int)
    return _WORDS.get(text, text)


def _rebuilt_table(index: int, name: str, table: Mapping[str, Any], form: Mapping[str, str],
                   problems: _Problems) -> dict[str, Any]:
    rebuilt: dict[str, Any] = {}
    for row in range(_count(form, f"ct.{index}.rows")):
        code = (form.get(f"ct.{index}.{row}.code") or "").strip()
        value = (form.get(f"ct.{index}.{row}.value") or "").strip()
        if f"ct.{index}.{row}.del" in form or not value:
            continue  # removed, or left unmapped (validation says so when the system has the code)
        if not code:
            problems.add(f"ct:{name}", f"第 {row + 1} 行填了值但没有系统代码 / a row has a value but no code")
        elif code in rebuilt:
            problems.add(f"ct:{name}:{code}", f"代码 {code} 出现了两次 / code listed twice")
        else:
            rebuilt[code] = _parse_code_value(value, table.get(code), code in table)
    return rebuilt


def _count(form: Mapping[str, str], key: str) -> int:
    text = form.get(key) or "0"
    return min(int(text), 10_000) if text.isdigit() else 0


def _apply_tables(source: dict[str, Any], form: Mapping[str, str], problems: _Problems) -> None:
    tables: dict[str, Any] = source.get("code_tables") or {}
    if "ct.count" not in form:
        return
    for index in range(_count(form, "ct.count")):
        name = form.get(f"ct.{index}.name")
        if name is None or name not in tables:
            continue
        if f"ct.{index}.drop" in form:
            del tables[name]
            continue
        rebuilt = _rebuilt_table(index, name, tables[name], form, problems)
        if rebuilt != tables[name]:
            tables[name] = rebuilt
    new = (form.get("ct.new") or "").strip()
    if new and new in tables:
        problems.add("ct", f"代码表 {new} 已存在 / table exists")
    elif new:
        tables[new] = {}
    if tables or "code_tables" in source:
        source["code_tables"] = tables


def _status_rows(form: Mapping[str, str], problems: _Problems) -> tuple[dict[str, str], list[str]]:
    inbound: dict[str, str] = {}
    ignore: list[str] = []
    for row in range(_count(form, "st.count")):
        code = (form.get(f"st.{row}.code") or "").strip()
        value = (form.get(f"st.{row}.value") or "").strip()
        if not code:
            if value:
                problems.add("st", "新增状态行缺少系统状态代码 / the new row needs the status code")
            continue
        if code in inbound or code in ignore:
            problems.add(f"st:{code}", f"状态 {code} 出现了两次 / status listed twice")
        elif value == IGNORE:
            ignore.append(code)
        elif value:
            inbound[code] = value
    return inbound, ignore


def _outbound(status_map: Mapping[str, Any], form: Mapping[str, str], problems: _Problems) -> dict[str, Any]:
    result = dict(status_map.get("outbound") or {})
    for status in CanonicalStatus:
        action = form.get(f"out.{status}.action")
        if action is None:
            continue
        action, args_text = action.strip(), (form.get(f"out.{status}.args") or "").strip()
        try:
            args = load_yaml(args_text) if args_text else {}
        except MappingDocumentError as exc:
            problems.add(f"out:{status}", f"参数写法有误 / args: {exc}")
            continue
        if not isinstance(args, dict):
            problems.add(f"out:{status}", "参数应写成 {名称: 值} / args must be a mapping")
        elif not action:
            if args:
                problems.add(f"out:{status}", "填了参数但没有动作 / args without an action")
            result.pop(status.value, None)
        elif (action, args) != _outbound_parts(result.get(status.value)):
            result[status.value] = {"action": action, "args": args} if args else action
    return result


def _apply_statuses(source: dict[str, Any], form: Mapping[str, str], problems: _Problems) -> None:
    if "st.count" not in form:
        return
    original = source.get("status_map")
    status_map = dict(original or {})
    inbound, ignore = _status_rows(form, problems)
    outbound = _outbound(status_map, form, problems)
    if inbound != (status_map.get("inbound") or {}):
        status_map["inbound"] = inbound
    if set(ignore) != set(status_map.get("ignore") or []):
        status_map["ignore"] = ignore
    if outbound != (status_map.get("outbound") or {}):
        if outbound:
            status_map["outbound"] = outbound
        else:
            status_map.pop("outbound", None)
    if status_map != (original or {}):
        source["status_map"] = status_map


def apply_form(source: Mapping[str, Any], form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The document's raw mapping with the posted form laid over it, and the inputs that could
    not be read (key → messages; those inputs leave their part unchanged)."""
    result = copy.deepcopy(dict(source))
    problems = _Problems()
    fields = result.get("fields")
    if isinstance(fields, dict):
        for row in _field_rows(fields):
            _apply_field(fields, row.name, form, problems)
    _apply_tables(result, form, problems)
    _apply_statuses(result, form, problems)
    return result, dict(problems)


def dump_document(source: Mapping[str, Any]) -> str:
    """YAML text of a document's raw mapping (the loader reads every value back as it was)."""
    text: str = yaml.safe_dump(dict(source), allow_unicode=True, sort_keys=False, width=120)
    return text


@dataclass
class Draft:
    """The draft after a post: its text, the unreadable inputs, and a word for the admin."""

    text: str
    problems: dict[str, list[str]]
    notice: str = ""


def _same_text(a: str, b: str) -> bool:
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def resolve_draft(base_text: str, yaml_text: str | None, form: Mapping[str, str]) -> Draft:
    """Which edit the admin made: the raw YAML when its text changed, else the form over ``base``."""
    base_text = base_text.replace("\r\n", "\n")  # browsers post line breaks as CRLF
    try:
        base = load_yaml(base_text)
    except MappingDocumentError:
        base = None
    changed_yaml = yaml_text is not None and not _same_text(yaml_text, base_text)
    if not isinstance(base, dict):
        return Draft(yaml_text if yaml_text is not None else base_text, {})
    applied, problems = apply_form(base, form)
    if changed_yaml:
        assert yaml_text is not None
        notice = (_("已按 YAML 文本更新草稿。表单中的修改未应用（两处都改了时以 YAML 为准）。") if applied != base
                  else _("已按 YAML 文本更新草稿。"))
        return Draft(yaml_text.replace("\r\n", "\n"), {}, notice)
    return Draft(base_text if applied == base else dump_document(applied), problems)


# ----------------------------------------------------------------------------- issues → rows


def issue_key(issue: Issue) -> str:
    """The form row a validation issue belongs to (``DOCUMENT`` when none)."""
    path = issue.path
    head, _, rest = path.partition(".")
    if head == "fields" and rest:
        return "field:" + re.split(r"[.\[ ]", rest, maxsplit=1)[0]
    if head == "code_tables" and rest:
        table, _, code = rest.partition(".")
        table = table.split(" ")[0]
        missing = _MISSING_CODE.match(issue.message)
        if not code and missing:
            code = missing.group(1)
        return f"ct:{table}:{code}" if code else f"ct:{table}"
    if path.startswith("status_map.inbound."):
        return "st:" + path.removeprefix("status_map.inbound.")
    if path.startswith("status_map.outbound."):
        return "out:" + path.removeprefix("status_map.outbound.")
    if head == "status_map":
        return "st"
    return DOCUMENT


def place_issues(issues: Iterable[Issue], problems: Mapping[str, list[str]],
                 shown: set[str]) -> dict[str, list[str]]:
    """Every message under the nearest key the page shows (a row, its section, or the document)."""
    placed: dict[str, list[str]] = {}

    def put(key: str, message: str) -> None:
        while key not in shown and key != DOCUMENT:
            key = key.rpartition(":")[0] or DOCUMENT  # row → its section → the document
        placed.setdefault(key, []).append(message)

    for issue in issues:
        put(issue_key(issue), str(issue))
    for key, messages in problems.items():
        for message in messages:
            put(key, message)
    return placed


# ----------------------------------------------------------------------------- shown values


def shown(field_name: str, value: Any, tz: ZoneInfo, known_pii: Iterable[str] = ()) -> str:
    """A canonical or raw value as the page may show it: reporter identity masked (also inside
    free text), times in Beijing time."""
    if value is None:
        return _("（空）")
    if field_name in PII_FIELDS:
        return MASK
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    return redact_text(str(value), known_pii)


@dataclass
class RecordChange:
    """What one stored payload maps to under the active version and under the draft."""

    event_id: int
    external_id: str
    status: str
    outcome: str  # same | changed | rescued | broken | failing
    differences: list[tuple[str, str, str]]  # field, old, new (as shown)
    old_error: str = ""
    new_error: str = ""


def compare_records(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
                    tz: ZoneInfo) -> tuple[str, list[tuple[str, str, str]]]:
    """The outcome kind and the differing canonical fields (``None``: that side failed)."""
    if old is None:
        return ("rescued" if new is not None else "failing"), []
    if new is None:
        return "broken", []
    pii = [str(v) for rec in (old, new) for k, v in rec.items() if k in PII_FIELDS and v]
    differences = [(name, shown(name, old.get(name), tz, pii), shown(name, new.get(name), tz, pii))
                   for name in dict.fromkeys([*old, *new]) if old.get(name) != new.get(name)]
    return ("changed" if differences else "same"), differences
