"""Engine behaviour: errors that name field/path/value/table, preview, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings import (
    MappingError,
    MappingErrorKind,
    default_document_path,
    load_default,
    load_document,
    load_taxonomy,
    map_payload,
    preview,
)
from tests.unit.mappings.payloads import city_case, enforcement_case, police_event, work_order

DOC = """
system: demo
title: 演示
fields:
  external_id: id
  version: {path: v, transforms: [to_int]}
  category: {path: cat, code_table: category}
  status: {path: st, status_map: true}
  status_code: st
  reported_at: {path: at, transforms: [iso_time]}
  title: {path: [t1, t2], transforms: [clean_text]}
  urgency: {path: u, code_table: urgency, default: normal}
  result_text: {path: "steps[kind=done][-1].text", when: {path: st, in: ["3", "4"]}}
  reporter_phone: {path: phone, transforms: [to_int]}
code_tables:
  category: {"a": street_vending, "b": noise_social}
  urgency: {"1": normal, "2": urgent, _default: critical}
status_map:
  inbound: {"1": REPORTED, "3": RESOLVED, "4": CLOSED}
  ignore: ["2"]
location: {path: p, parse: lnglat_string, datum: gcj02}
"""


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"id": "R1", "v": "3", "cat": "a", "st": "3", "at": "2026-11-23T09:00:00+08:00",
                               "t1": "", "t2": "标题", "steps": [{"kind": "done", "text": "处理完毕"}],
                               "p": "121.4577,31.1898"}
    payload.update(changes)
    return payload


def _error(payload: Any, doc: str = DOC) -> MappingError:
    with pytest.raises(MappingError) as caught:
        map_payload(load_document(doc), payload)
    return caught.value


def test_map_payload_basics() -> None:
    record = map_payload(load_document(DOC), _payload())
    f = record.fields
    assert (f["version"], f["category"], f["status"], f["title"]) == (3, "street_vending", "RESOLVED", "标题")
    assert f["urgency"] == "normal"  # default when absent
    assert f["result_text"] == "处理完毕"
    assert record.provenance["title"].path == "t2"  # the first present path wins
    assert record.provenance["category"].table == "category"
    assert record.provenance["lat"].transforms == ("lnglat_string", "gcj02→wgs84")
    assert record.document == load_document(DOC).fingerprint


def test_when_condition_skips_the_field() -> None:
    assert map_payload(load_document(DOC), _payload(st="1")).fields["result_text"] is None


def test_unknown_code_names_field_path_value_and_table() -> None:
    error = _error(_payload(cat="zz"))
    assert (error.field, error.path, error.value, error.table, error.kind) == (
        "category", "cat", "zz", "category", MappingErrorKind.UNKNOWN_CODE)
    assert "字段 category" in str(error) and "'zz'" in str(error) and "code_tables.category" in str(error)


def test_default_code_entry_catches_unknown_codes() -> None:
    assert map_payload(load_document(DOC), _payload(u="9")).fields["urgency"] == "critical"


def test_unmapped_and_ignored_status() -> None:
    error = _error(_payload(st="7"))
    assert (error.field, error.kind, error.value) == ("status", MappingErrorKind.UNMAPPED_STATUS, "7")
    record = map_payload(load_document(DOC), _payload(st="2"))
    assert record.status_ignored and record.fields["status"] is None and record.fields["status_code"] == "2"


@pytest.mark.parametrize(("changes", "field", "kind"), [
    ({"id": ""}, "external_id", MappingErrorKind.MISSING),
    ({"at": None}, "reported_at", MappingErrorKind.MISSING),
    ({"at": "2026-11-23 09:00"}, "reported_at", MappingErrorKind.TRANSFORM_FAILED),
    ({"v": "v3"}, "version", MappingErrorKind.TRANSFORM_FAILED),
    ({"id": 42}, "external_id", MappingErrorKind.WRONG_TYPE),
    ({"cat": {"code": "a"}}, "category", MappingErrorKind.WRONG_TYPE),
    ({"p": "east,north"}, "location", MappingErrorKind.TRANSFORM_FAILED),
    ({"p": "31.1898,121.4577"}, "location", MappingErrorKind.OUT_OF_RANGE),
    ({"p": "2.35,48.85"}, "location", MappingErrorKind.OUT_OF_RANGE),
])
def test_errors_say_which_field(changes: dict[str, Any], field: str, kind: MappingErrorKind) -> None:
    error = _error(_payload(**changes))
    assert (error.field, error.kind) == (field, kind)


def test_payload_must_be_an_object() -> None:
    error = _error(["not", "a", "dict"])
    assert error.field is None and error.kind is MappingErrorKind.BAD_PAYLOAD


def test_pii_values_are_masked_in_messages() -> None:
    error = _error(_payload(phone="138-1234-5678"))
    assert error.field == "reporter_phone" and "1234" not in str(error) and "***" in str(error)


def test_incomplete_coordinates() -> None:
    error = _error(city_case(y=""), doc=_city_doc_text())
    assert error.field == "location" and error.kind is MappingErrorKind.MISSING
    assert "y is missing" in str(error)


def _city_doc_text() -> str:
    return default_document_path("city_management").read_text(encoding="utf-8")


def test_preview_shows_provenance_and_errors_without_raising() -> None:
    doc = load_default("hotline12345")
    rows = {row.field: row for row in preview(doc, work_order(wtfl="0999", ldsj="昨天"))}
    assert rows["category"].error is not None and "0999" in rows["category"].error
    assert (rows["category"].path, rows["category"].raw_value, rows["category"].table) == ("wtfl", "0999",
                                                                                           "category")
    assert rows["reported_at"].error is not None and rows["reported_at"].required
    ok = rows["urgency"]
    assert (ok.value, ok.path, ok.raw_value, ok.transforms, ok.table, ok.error) == (
        "urgent", "jjcd", "2", ("strip",), "urgency", None)
    assert rows["lat"].transforms == ("lnglat_string", "bd09→wgs84")
    assert rows["lat"].raw_value == "121.4632,31.1984"
    assert rows["street"].raw_value == "" and rows["street"].value is None
    assert list(rows)[-2:] == ["lat", "lng"]


def test_preview_of_a_non_object() -> None:
    rows = preview(load_default("police_patrol"), "not json")
    assert rows and all(row.error for row in rows)


_scalar = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
           | st.sampled_from([10**400, float("inf"), "", " ", "0,0", "121.45,31.19", "20261123091502"]))
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None)
@given(code=st.text(max_size=8))
def test_any_category_string_maps_to_a_taxonomy_code_or_raises_mapping_error(code: str) -> None:
    taxonomy = load_taxonomy()
    for doc, payload in ((load_default("hotline12345"), work_order(wtfl=code)),
                         (load_default("city_management"), city_case(smallClass=code)),
                         (load_default("law_enforcement"), enforcement_case(Category=code))):
        try:
            category = map_payload(doc, payload).fields["category"]
        except MappingError as error:
            assert error.field in ("category", "category_name")
        else:
            assert category in taxonomy.codes


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_arbitrary_payload_values_give_a_record_or_a_mapping_error(data: st.DataObject) -> None:
    cases = [("hotline12345", work_order()), ("police_patrol", police_event()),
             ("city_management", city_case()), ("law_enforcement", enforcement_case())]
    system, payload = data.draw(st.sampled_from(cases))
    target = payload["jq"] if system == "police_patrol" else payload
    keys = data.draw(st.lists(st.sampled_from(sorted(target)), max_size=4, unique=True))
    for key in keys:
        target[key] = data.draw(_value)
    doc = load_default(system)
    try:
        record = map_payload(doc, payload)
    except MappingError:
        assert any(row.error for row in preview(doc, payload))
    else:
        rows = preview(doc, payload)
        assert all(row.error is None for row in rows)
        assert {row.field: row.value for row in rows} == record.fields
