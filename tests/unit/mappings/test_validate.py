"""Semantic validation: statuses, taxonomy codes, transforms, required fields, system codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings import (
    Issue,
    MappingDocumentError,
    default_document_path,
    default_systems,
    load_document,
    validate,
)
from mappings.yamlio import load_yaml


def _default(system: str) -> dict[str, Any]:
    data = load_yaml(default_document_path(system).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def _validate(data: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    return {i.path: i.message for i in validate(load_document(data), **kwargs)}


@pytest.mark.parametrize("system", ["hotline12345", "police_patrol", "city_management", "law_enforcement"])
def test_default_documents_are_valid(system: str) -> None:
    assert system in default_systems()
    assert validate(load_document(_default(system))) == []


def test_unmapped_status_is_found() -> None:
    data = _default("hotline12345")
    del data["status_map"]["inbound"]["35"]
    issues = _validate(data)
    assert issues == {"status_map.inbound.35": "status '35' of hotline12345 is neither mapped nor ignored"}
    data["status_map"]["ignore"] = ["35"]  # ignoring it is a decision too
    assert _validate(data) == {}


def test_known_statuses_passed_in_override_the_document_vocabulary() -> None:
    data = _default("police_patrol")
    issues = _validate(data, known_statuses=["01", "02", "07"])
    assert list(issues) == ["status_map.inbound.07"]


def test_canonical_targets_are_checked() -> None:
    data = _default("hotline12345")
    data["status_map"]["inbound"]["10"] = "REPORTD"
    data["status_map"]["inbound"]["20"] = "DISPATCHED"
    data["status_map"]["ignore"] = ["20"]
    data["status_map"]["outbound"]["DONE"] = "BJ"
    data["status_map"]["outbound"]["CLOSED"] = "GD"
    data["code_tables"]["category"]["0101"] = "illegal_constructon"
    data["code_tables"]["urgency"]["3"] = "very_urgent"
    data["code_tables"]["yes_no"]["1"] = "yes"
    issues = _validate(data)
    assert "'REPORTD' is not a canonical status" in issues["status_map.inbound.10"]
    assert "both mapped and ignored" in issues["status_map.ignore"]
    assert "not a canonical status" in issues["status_map.outbound.DONE"]
    assert "'GD' is not an action of hotline12345" in issues["status_map.outbound.CLOSED"]
    assert "'illegal_constructon' is not a taxonomy code" in issues["code_tables.category.0101"]
    assert "not one of critical, normal, urgent" in issues["code_tables.urgency.3"]
    assert "reporter_confidential takes bool" in issues["code_tables.yes_no.1"]


def test_required_fields_and_status_category_rules() -> None:
    data = _default("police_patrol")
    del data["fields"]["reported_at"]
    data["fields"]["status"] = {"path": "jq.JQZTDM"}
    data["fields"]["category"] = {"path": "jq.JQLBDM"}
    issues = _validate(data)
    assert "required canonical field" in issues["fields.reported_at"]
    assert "status_map: true" in issues["fields.status"]
    assert "code table" in issues["fields.category"]


def test_transforms_and_their_arguments_are_checked() -> None:
    data = _default("hotline12345")
    data["fields"]["reported_at"]["transforms"] = [{"local_time": {"tz": "Asia/Shanghi"}}]
    data["fields"]["title"]["transforms"] = ["clean_txt"]
    data["fields"]["version"]["transforms"] = [{"to_int": {"base": 10}}]
    data["location"]["parse"] = "lnglat"
    issues = _validate(data)
    assert "unknown time zone 'Asia/Shanghi'" in issues["fields.reported_at.transforms[0].local_time.tz"]
    assert "unknown transform 'clean_txt'" in issues["fields.title.transforms[0]"]
    assert "takes no arguments" in issues["fields.version.transforms[0].to_int"]
    assert "unknown transform 'lnglat'" in issues["location.parse"]


def test_every_system_code_must_be_mapped() -> None:
    data = _default("city_management")
    del data["code_tables"]["category"]["1102"]
    data["outbound_codes"]["category"]["streetlight"] = "9999"
    data["outbound_codes"]["category"]["lamp"] = "1105"
    issues = _validate(data)
    assert "code '1102' of city_management is not mapped" in issues["code_tables.category"]
    assert "'9999' is not a code of city_management" in issues["outbound_codes.category.streetlight"]
    assert "not a taxonomy code" in issues["outbound_codes.category.lamp"]
    data["code_tables"]["category"]["_default"] = "other"  # a catch-all covers every code
    assert "code_tables.category" not in _validate(data)


def test_known_codes_passed_in() -> None:
    data = _default("law_enforcement")
    issues = _validate(data, known_codes={"category": ["CG-0101", "CG-0999"], "size": ["S"]})
    assert "code 'CG-0999'" in issues["code_tables.category"]
    assert "missing" in issues["code_tables.size"]


def test_a_typo_in_a_table_name_stops_loading() -> None:
    # Structural problems are load_document's: validate only ever sees loadable documents.
    data = _default("law_enforcement")
    data["fields"]["category"]["code_table"] = "categroy"
    with pytest.raises(MappingDocumentError) as caught:
        load_document(data)
    assert Issue("fields.category.code_table", "unknown table 'categroy'; did you mean 'category'?") \
        in caught.value.issues
