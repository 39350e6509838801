"""The four default documents against realistic payloads, and against the specs' own lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mappings import MappingError, load_default, map_payload, outbound_action, outbound_code, validate
from mappings.datum import gcj02_to_wgs84
from tests.unit.mappings.payloads import (
    city_case,
    enforcement_case,
    haversine_m,
    police_event,
    work_order,
)

# Copied from the spec tables in shared/world/*.md, independently of the documents.
SPEC_STATUSES = {
    "hotline12345": ["10", "20", "30", "35", "40", "50", "60", "70", "80"],
    "police_patrol": ["01", "02", "03", "04", "05", "06", "09", "99"],
    "city_management": ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"],
    "law_enforcement": ["XSDJ", "HC", "LA", "DCQZ", "SC", "CFJD", "ZX", "JA", "BYLA", "YS"],
}
SPEC_CATEGORIES = {
    "hotline12345": ["0101", "0102", "0201", "0202", "0203", "0301", "0302", "0401", "0402", "0403",
                     "0501", "0502", "0503", "0601", "0602", "0603", "0701", "0801", "0901"],
    "police_patrol": [f"LD0{i}" for i in range(1, 10)],
    "city_management": ["0101", "0102", "0103", "0104", "0106", "0201", "0203", "0301", "0302", "0304",
                        "0401", "0402", "0406", "0501", "0504", "0505", "0506", "0510", "0511",
                        "1101", "1102", "1105", "1201", "1401"],
    "law_enforcement": ["CG-0101", "CG-0201", "CG-0301", "CG-0401", "CG-0501", "CG-0502", "CG-0601",
                        "CG-0701"],
}


@pytest.mark.parametrize("system", sorted(SPEC_STATUSES))
def test_every_spec_status_and_category_is_mapped(system: str) -> None:
    doc = load_default(system)
    assert validate(doc, SPEC_STATUSES[system], {"category": SPEC_CATEGORIES[system]}) == []
    assert doc.vocabulary is not None
    assert sorted(doc.vocabulary.statuses) == sorted(SPEC_STATUSES[system])
    assert sorted(doc.vocabulary.codes["category"]) == sorted(SPEC_CATEGORIES[system])


def test_hotline_work_order() -> None:
    record = map_payload(load_default("hotline12345"), work_order())
    f = record.fields
    assert (f["external_id"], f["version"], f["status"], f["status_code"]) == ("GD20261123000123", 7,
                                                                               "RESOLVED", "40")
    assert (f["category"], f["category_code"], f["urgency"]) == ("ground_lock", "0403", "urgent")
    assert f["reported_at"] == datetime(2026, 11, 23, 1, 10, tzinfo=UTC)
    assert f["deadline"] == datetime(2026, 12, 7, 1, 10, tzinfo=UTC)
    assert f["description"] == "市民反映：斜土路1175号门口有人私设地锁3处😡，影响通行。 请尽快处理！"
    assert f["result_text"] == "已现场拆除地锁3处，恢复通行。"  # the BJ step, not the later HF one
    assert f["street"] is None  # "" is absent
    assert (f["reporter_name"], f["reporter_phone"], f["reporter_confidential"]) == ("张先生", "13812345678",
                                                                                     True)
    assert f["satisfaction"] == "satisfied" and f["duplicate_of"] is None
    # zb is BD-09; the canonical point is WGS-84, about 1.1 km south-west of the raw numbers.
    assert 1000 < haversine_m(121.4632, 31.1984, f["lng"], f["lat"]) < 1300
    assert f["lng"] < 121.4632 and f["lat"] < 31.1984
    assert "reporter_phone" not in record.without_pii()


def test_hotline_variants() -> None:
    doc = load_default("hotline12345")
    f = map_payload(doc, work_order(zb="", ldrxm="匿名", bmbz="0", hfjg=None, blgc=[])).fields
    assert f["lat"] is None and f["lng"] is None
    assert f["reporter_name"] is None and f["reporter_confidential"] is False
    assert f["satisfaction"] is None and f["result_text"] is None
    dup = map_payload(doc, work_order(zt="80", zgdbh="GD20261123000100")).fields
    assert (dup["status"], dup["duplicate_of"]) == ("DUPLICATE", "GD20261123000100")
    assert map_payload(doc, work_order(zgdbh="GD1")).fields["duplicate_of"] is None  # only with 80


def test_police_event() -> None:
    doc = load_default("police_patrol")
    f = map_payload(doc, police_event()).fields
    assert (f["external_id"], f["version"], f["status"]) == ("310104202611230012", 1, "DISPATCHED")
    assert f["category"] == "illegal_parking_motor"
    assert f["reported_at"] == datetime(2026, 11, 23, 1, 13, 40, tzinfo=UTC)
    assert (f["lng"], f["lat"]) == (121.4532, 31.1921)  # already WGS-84
    assert f["department"] == "巡逻二组" and f["reporter_confidential"] is True
    assert "reporter_name" not in f
    handed = map_payload(doc, police_event(4, JQZTDM="06", YJDW="城管", CLJG="已劝离，移交城管", CJDW="",
                                           JD=None, WD=None)).fields
    assert (handed["version"], handed["status"], handed["handover_to"]) == (4, "DISPATCHED",
                                                                            "city_management")
    assert handed["department"] == "斜土路派出所"  # CJDW "" → the station in charge
    assert handed["lat"] is None and handed["result_text"] == "已劝离，移交城管"


def test_city_management_case() -> None:
    f = map_payload(load_default("city_management"), city_case()).fields
    assert (f["external_id"], f["alias_case_no"], f["external_ref"]) == ("c0000187-2b15993c",
                                                                         "2026110001234", "GD20261123000123")
    assert (f["category"], f["category_name"]) == ("ground_lock", "街面秩序>私设地锁")
    assert f["status"] == "RESOLVED"
    assert f["reported_at"] == datetime(2026, 11, 23, 1, 20, tzinfo=UTC)
    assert haversine_m(121.45, 31.19, f["lng"], f["lat"]) < 1.0  # x northing, y easting
    assert f["verify_result"] is None
    verified = map_payload(load_default("city_management"),
                           city_case(status="06", verifyResult="PASS", caseNo="", x=None, y=None)).fields
    assert (verified["status"], verified["verify_result"], verified["alias_case_no"]) == ("VERIFIED", "pass",
                                                                                          None)
    assert verified["lat"] is None


def test_city_management_refuses_swapped_axes() -> None:
    case = city_case(x=city_case()["y"], y=city_case()["x"])
    with pytest.raises(MappingError) as caught:
        map_payload(load_default("city_management"), case)
    assert caught.value.field == "location" and "swapped" in str(caught.value)


def test_law_enforcement_case() -> None:
    f = map_payload(load_default("law_enforcement"), enforcement_case()).fields
    assert (f["external_id"], f["status"], f["category"]) == ("ZF-2026-004512", "ACCEPTED",
                                                              "illegal_construction")
    assert f["version"] == 20261123101500
    assert f["reported_at"] == datetime(2026, 11, 23, 1, 11, tzinfo=UTC)
    assert f["updated_at"] == datetime(2026, 11, 23, 2, 15, tzinfo=UTC)
    assert f["alias_case_no"] is None and f["result_text"] is None and f["x_penalty"] is None
    expected = gcj02_to_wgs84(121.4577, 31.1898)
    assert haversine_m(*expected, f["lng"], f["lat"]) < 0.01
    assert 300 < haversine_m(121.4577, 31.1898, f["lng"], f["lat"]) < 700  # the GCJ offset was removed
    closed = map_payload(load_default("law_enforcement"),
                         enforcement_case(Status="JA", CaseNo="ZF-AJ-2026-0042", Penalty="2000.00",
                                          Result="责令限期拆除，罚款2000元")).fields
    assert (closed["status"], closed["alias_case_no"], closed["x_penalty"]) == ("CLOSED", "ZF-AJ-2026-0042",
                                                                               2000.0)


def test_outbound_helpers() -> None:
    hotline = load_default("hotline12345")
    resolved = outbound_action(hotline, "RESOLVED")
    assert resolved is not None and (resolved.action, resolved.args) == ("BJ", {"bjlx": "1"})
    assert outbound_action(hotline, "VERIFIED") is None
    assert outbound_action(load_default("law_enforcement"), "CLOSED") is None
    city = load_default("city_management")
    assert outbound_code(city, "category", "ground_lock") == "0511"
    with pytest.raises(MappingError) as caught:
        outbound_code(city, "category", "policy_inquiry")
    assert caught.value.table == "outbound_codes.category"
    assert outbound_code(load_default("law_enforcement"), "category", "outdoor_bbq") == "CG-0201"
