"""Structural checks of ``load_document``: shape, paths, references, YAML pitfalls."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings import Issue, MappingDocumentError, default_document_path, load_document
from mappings.yamlio import load_yaml

MINIMAL = """
system: demo
title: 演示
fields:
  external_id: id
  category: {path: cat, code_table: category}
  status: {path: st, status_map: true}
  status_code: st
  reported_at: {path: at, transforms: [iso_time]}
code_tables:
  category:
    0101: illegal_construction
    10: garbage_exposed
    08: other
status_map:
  inbound: {"1": REPORTED}
"""


def _issues(source: str | dict[str, Any]) -> list[Issue]:
    with pytest.raises(MappingDocumentError) as caught:
        load_document(source)
    return list(caught.value.issues)


def _default(system: str) -> dict[str, Any]:
    data = load_yaml(default_document_path(system).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def test_minimal_document_loads_with_codes_kept_as_written() -> None:
    doc = load_document(MINIMAL)
    assert doc.system == "demo" and doc.payload == "json"
    # Plain YAML would read 0101 as octal 65 and 10 as a number; the loader keeps the text.
    assert set(doc.code_tables["category"]) == {"0101", "10", "08"}
    assert doc.fields["external_id"].paths == ("id",)  # `field: path` shorthand
    assert doc.fields["reported_at"].transforms[0].name == "iso_time"


def test_typo_in_table_name_is_reported_with_a_suggestion() -> None:
    issues = _issues(MINIMAL.replace("code_table: category", "code_table: categry"))
    assert Issue("fields.category.code_table", "unknown table 'categry'; did you mean 'category'?") in issues


def test_unknown_field_names_and_lat_lng_in_fields() -> None:
    data = _default("hotline12345")
    data["fields"]["catgory"] = {"path": "wtfl"}
    data["fields"]["lat"] = {"path": "zb"}
    data["fields"]["x_hotline_nature"] = {"path": "sqxz"}      # extension prefix: allowed
    data["fields"]["alias_old_gdbh"] = {"path": "ygdbh"}       # alias prefix: allowed
    paths = {i.path: i.message for i in _issues(data)}
    assert set(paths) == {"fields.catgory", "fields.lat"}
    assert "did you mean 'category'" in paths["fields.catgory"]
    assert "location" in paths["fields.lat"]


def test_shape_errors_name_their_path() -> None:
    data = _default("hotline12345")
    data["fields"]["title"] = {"path": "sqbt", "transform": ["clean_text"]}
    data["fields"]["version"] = {"path": "a..b"}
    data["fields"]["status"]["code_table"] = "urgency"
    data["fields"]["address"] = {"const": "x", "path": "fsdz"}
    data["location"]["datum"] = "mars"
    data["status_map"]["ignore"] = [10]
    paths = {i.path for i in _issues(data)}
    assert {"fields.title.transform", "fields.version.path", "fields.status", "fields.address",
            "location.datum", "status_map.ignore[0]"} <= paths


def test_location_variants() -> None:
    data = _default("city_management")
    data["location"] = {"paths": {"lng": "x", "lat": "y"}, "datum": "epsg4549"}
    assert any(i.path == "location.paths" for i in _issues(data))
    data["location"] = {"path": "zb", "datum": "bd09"}
    assert any(i.path == "location" for i in _issues(data))


def test_yaml_problems() -> None:
    assert _issues("system: [unclosed")[0].path.startswith("line ")
    duplicate = MINIMAL.replace("    10: garbage_exposed", "    10: garbage_exposed\n    10: other")
    assert "duplicate key '10'" in _issues(duplicate)[0].message
    assert _issues("- a list")[0].message.startswith("a mapping document")


def test_when_and_outbound_forms() -> None:
    doc = load_document(_default("hotline12345"))
    when = doc.fields["duplicate_of"].when
    assert when is not None and (when.op, when.operand) == ("equals", "80")
    assert doc.status_map is not None
    assert doc.status_map.outbound["RESOLVED"].action == "BJ"
    assert doc.status_map.outbound["RESOLVED"].args == {"bjlx": "1"}
    assert doc.status_map.outbound["ACCEPTED"].args == {}


def test_fingerprint_ignores_layout_but_not_content() -> None:
    a = load_document(MINIMAL)
    b = load_document(MINIMAL.replace("title: 演示", "title:   演示  # comment"))
    c = load_document(MINIMAL.replace("title: 演示", "title: 演示2"))
    assert a.fingerprint == b.fingerprint != c.fingerprint
