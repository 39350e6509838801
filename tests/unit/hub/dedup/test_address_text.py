"""Address normalization, address similarity bands and text tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.dedup import text as text_module
from hub.dedup.address import Address, complete_address, normalize_address
from hub.dedup.model import LEVELS
from hub.dedup.scoring import address_level
from hub.dedup.text import text_similarity, tokenize

ADDRESS_CASES = [
    ("徐汇区斜土路1175号门口", dict(district="徐汇区", road="斜土路", number="1175", level="number")),
    ("斜土路1175号附近", dict(road="斜土路", number="1175", level="number")),
    ("斜土路１１７５号", dict(road="斜土路", number="1175", level="number")),
    ("日晖新城小区3号楼旁", dict(compound="日晖新城", building="3", level="compound")),
    ("日晖新城3栋", dict(compound="日晖新城", building="3", level="compound")),
    ("日晖新城小区", dict(compound="日晖新城", building=None, level="compound")),
    ("阳光小区三号楼", dict(compound="阳光", building="3", level="compound")),
    ("龙华苑5幢", dict(compound="龙华苑", building="5", level="compound")),
    (
        "上海市徐汇区斜土路街道日晖四村12号",
        dict(district="徐汇区", street="斜土路街道", road=None, compound="日晖四村", building="12", level="compound"),
    ),
    ("中山南二路与宛平南路交叉口", dict(road="中山南二路", number=None, level="road")),
    ("虹口区四平路100弄5号", dict(district="虹口区", road="四平路", number="100弄5", level="number")),
    ("闵行区莘庄镇莘建路88号", dict(district="闵行区", street="莘庄镇", road="莘建路", number="88", level="number")),
    ("浦东新区 张杨路 500 号", dict(district="浦东新区", road="张杨路", number="500", level="number")),
    ("斜土路", dict(road="斜土路", level="road")),
    ("徐汇区", dict(district="徐汇区", level="none")),
    ("", dict(level="none")),
]


@pytest.mark.parametrize(("text", "expected"), ADDRESS_CASES)
def test_normalize_address(text: str, expected: dict[str, object]) -> None:
    address = normalize_address(text)
    for field, value in expected.items():
        assert getattr(address, field) == value, (text, field, address)


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("徐汇区斜土路1175号门口", "斜土路1175号附近", "same_place"),
        ("日晖新城小区3号楼旁", "日晖新城3号楼", "same_place"),
        ("日晖新城小区3号楼", "日晖新城5号楼", "other_building"),
        ("日晖新城小区3号楼", "日晖新城", "same_compound"),
        ("斜土路1175号", "斜土路1181号", "near_number"),
        ("斜土路1175号", "斜土路1300号", "different"),
        ("斜土路1175号", "斜土路", "same_road"),
        ("斜土路1175号", "日晖新城小区", "different"),
        ("", "", "missing"),
    ],
)
def test_address_levels(a: str, b: str, level: str) -> None:
    na, nb = normalize_address(a), normalize_address(b)
    assert address_level(na, nb) == level
    assert address_level(nb, na) == level


@given(st.text())
def test_normalize_address_never_raises(text: str) -> None:
    assert isinstance(normalize_address(text), Address)


_ADDRESS_TEXT = st.lists(
    st.sampled_from(
        ["徐汇区", "斜土路", "宛平南路", "1175号", "1190号", "12", "弄", "3号楼", "日晖新城", "小区", "村", "旁"]
    ),
    max_size=6,
).map("".join)


@given(_ADDRESS_TEXT, _ADDRESS_TEXT)
def test_address_level_symmetric_and_known(a: str, b: str) -> None:
    na, nb = normalize_address(a), normalize_address(b)
    level = address_level(na, nb)
    assert level in LEVELS["address"]
    assert level == address_level(nb, na)


def test_paraphrases_overlap_more_than_different_incidents() -> None:
    stall_a = tokenize("斜土路1175号门口有人摆摊卖水果")
    stall_b = tokenize("报警人称斜土路1175号附近流动摊贩占道")
    noise = tokenize("日晖新城小区噪音扰民")
    assert text_similarity(stall_a, stall_b) > text_similarity(stall_a, noise)
    assert text_similarity(stall_a, stall_b) > text_similarity(stall_b, noise)
    assert text_similarity(stall_a, stall_b) > 0.2


def test_tokens_drop_stop_words_phones_and_digits() -> None:
    tokens = tokenize("报警人称", "市民反映斜土路1175号有人占道，电话13812345678，021-64001234")
    assert "斜土路" in tokens
    assert not any(t.isdigit() for t in tokens)
    assert not {"报警", "人称", "的", "有人", "13812345678"} & tokens
    assert tokenize(None, "") == frozenset()


def test_noise_paraphrases_share_tokens() -> None:
    a, b = tokenize("日晖新城小区噪音扰民"), tokenize("日晖新城晚上噪声扰民严重")
    assert "噪声扰民" in a & b


@given(st.lists(st.text(max_size=4), max_size=6), st.lists(st.text(max_size=4), max_size=6))
def test_text_similarity_symmetric_and_bounded(a: list[str], b: list[str]) -> None:
    score = text_similarity(a, b)
    assert 0.0 <= score <= 1.0
    assert score == text_similarity(b, a)


@pytest.mark.parametrize(("address", "text", "expected"), [
    ("日晖四村内", "反映徐汇区日晖四村19号楼路边被人装了地锁", ("日晖四村", "19", None)),
    ("枫林路近医学院路", "枫林路40号附近发现私设地锁2处。", (None, None, "40")),
    # a detail about another place mentioned in passing is not taken
    ("日晖四村内", "隔壁龙华苑3号楼也有", ("日晖四村", None, None)),
    ("斜土路", "东安路527号门口", (None, None, None)),
])
def test_complete_address_from_text_anchored_on_the_same_place(address: str, text: str,
                                                                expected: tuple[str | None, ...]) -> None:
    done = complete_address(normalize_address(address), text)
    assert (done.compound, done.building, done.number) == expected


@pytest.mark.parametrize(("text", "compound", "building"), [
    ("中山南二路小区7号楼楼下", "中山南二路", "7"),
    ("小木桥路馨苑6号楼", "小木桥路馨苑", "6"),
    ("肇嘉浜路公寓", "肇嘉浜路公寓", None),
])
def test_compound_named_after_its_road_is_a_compound(text: str, compound: str, building: str | None) -> None:
    parsed = normalize_address(text)
    assert (parsed.level, parsed.road, parsed.compound, parsed.building) == ("compound", None, compound, building)


@pytest.mark.parametrize("text", [
    "报警人称 在 鿐鿑路 12号\r\n  有人 占道经营!!abc-12_x，影响通行。请尽快处理",
    "电话13800138000 噪音扰民 ,,, 违停；肇嘉浜路714号门口天天有人摆地摊😡",
    "宛平南路88弄3号楼502室群租，宛平南路88弄3号楼502室群租",
])
def test_words_are_jiebas_words(text: str) -> None:
    """The memoized block cut gives jieba's own segmentation (whitespace aside), the second time
    from the cache as well as the first."""
    expected = [w for w in text_module._get_tokenizer().lcut(text) if w.strip()]
    for _ in range(2):
        assert [w for w in text_module.words(text) if w.strip()] == expected
