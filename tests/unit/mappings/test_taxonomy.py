"""The canonical taxonomy: groups, names, crosswalk completeness and agreement with the documents."""

from __future__ import annotations

import pytest

from mappings import MappingDocumentError, load_default, load_taxonomy
from mappings.taxonomy import parse_taxonomy
from tests.unit.mappings.test_defaults import SPEC_CATEGORIES

BRIEF_CODES = {
    "illegal_construction", "group_rental", "garbage_exposed", "garbage_collection", "construction_waste",
    "road_cleaning", "green_dirty", "street_vending", "shopfront_trading", "outdoor_bbq",
    "illegal_parking_motor", "illegal_parking_bike", "ground_lock", "noise_construction", "noise_social",
    "construction_dust", "construction_road_occupation", "cooking_fumes", "manhole_cover", "streetlight",
    "road_damage", "road_collapse", "water_pipe_burst", "waterlogging", "tree_damage", "small_ads",
    "billboard", "municipal_facility_damage", "property_dispute", "neighbour_dispute", "policy_inquiry",
    "other",
}


def test_codes_names_and_groups() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.codes == BRIEF_CODES
    assert taxonomy.name_of("street_vending") == "流动摊贩占道经营"
    assert taxonomy.group_of("outdoor_bbq") == "street_trading"
    assert set(taxonomy.members("street_trading")) == {"street_vending", "shopfront_trading", "outdoor_bbq"}
    assert {"garbage_exposed", "garbage_collection", "construction_waste"} <= set(taxonomy.members("garbage"))
    assert taxonomy.group_name("noise") == "噪声"
    with pytest.raises(KeyError, match="unknown canonical category"):
        taxonomy.group_of("stall")
    assert load_taxonomy() is taxonomy  # cached


def test_noise_and_garbage_are_never_compatible() -> None:
    taxonomy = load_taxonomy()
    for noise in taxonomy.members("noise"):
        for garbage in taxonomy.members("garbage"):
            assert not taxonomy.compatible(noise, garbage)
    assert taxonomy.compatible("noise_construction", "noise_social")
    assert taxonomy.compatible("street_vending", "outdoor_bbq")


@pytest.mark.parametrize("system", sorted(SPEC_CATEGORIES))
def test_crosswalk_covers_the_spec_and_matches_the_default_document(system: str) -> None:
    taxonomy = load_taxonomy()
    crosswalk = taxonomy.crosswalk(system)
    assert sorted(crosswalk) == sorted(SPEC_CATEGORIES[system])
    assert set(crosswalk.values()) <= taxonomy.codes
    assert dict(load_default(system).code_tables["category"]) == dict(crosswalk)


def test_the_same_street_problem_meets_across_systems() -> None:
    taxonomy = load_taxonomy()
    walk = taxonomy.crosswalk
    # a stall: 12345 占道经营, police LD01, 数字城管 露天烧烤, 综合执法 无照占道经营
    codes = (walk("hotline12345")["0301"], walk("police_patrol")["LD01"], walk("city_management")["0510"],
             walk("law_enforcement")["CG-0201"])
    groups = {taxonomy.group_of(code) for code in codes}
    assert groups == {"street_trading"}


def test_broken_taxonomy_is_refused() -> None:
    with pytest.raises(MappingDocumentError) as caught:
        parse_taxonomy({"groups": {"g": "组", "empty": "空"},
                        "categories": {"a": {"name": "甲", "group": "g"}, "b": {"name": "乙", "group": "h"}},
                        "crosswalk": {"s": {"1": "a", "2": "c"}}})
    paths = {issue.path for issue in caught.value.issues}
    assert paths == {"categories.b.group", "crosswalk.s.2", "groups.empty"}
