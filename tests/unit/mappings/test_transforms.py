"""Built-in transforms and the transform registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from mappings import transforms as t


def test_to_int_and_to_float() -> None:
    assert t.to_int("7") == 7 and t.to_int(7) == 7 and t.to_int(7.0) == 7 and t.to_int(" -3 ") == -3
    assert t.to_float("121.4532") == 121.4532 and t.to_float(121) == 121.0
    bad_ints: tuple[object, ...] = ("7.5", "", "seven", True, None)
    for bad in bad_ints:
        with pytest.raises(t.TransformError):
            t.to_int(bad)
    bad_floats: tuple[object, ...] = ("abc", "nan", "inf", True, [1], 10**400)
    for bad in bad_floats:
        with pytest.raises(t.TransformError):
            t.to_float(bad)


def test_clean_text_normalizes_full_width_keeps_chinese_punctuation_and_emoji() -> None:
    raw = "  斜土路１１７５号\u3000ＡＢ门口\u200b有地锁😡，\x00请处理！\n\n👨\u200d👩\u200d👧 "
    assert t.clean_text(raw) == "斜土路1175号 AB门口有地锁😡，请处理！ 👨\u200d👩\u200d👧"


# Characters where the order of the cleaning steps matters: combining marks and Hangul jamo
# (NFC composes them), controls and invisibles between them, full-width forms, spaces, emoji.
_TRICKY = st.sampled_from(list("aeＡｅ１\u0301\u0308\u0327\x00\x07\u200b\ufeff \u3000\t\n😡\u200d\u1100\u1161가"))


@settings(max_examples=400)
@given(st.text() | st.text(alphabet=_TRICKY, max_size=12))
@example("a\x00\u0301")
@example("Ａ\u0301")
def test_clean_text_is_idempotent(text: str) -> None:
    once = t.clean_text(text)
    assert t.clean_text(once) == once
    assert once == once.strip() and "  " not in once


def test_local_time_is_aware_utc() -> None:
    assert t.local_time("2026-11-23 09:10:00") == datetime(2026, 11, 23, 1, 10, tzinfo=UTC)
    assert t.local_time("2026-11-23T09:10:00", format="%Y-%m-%dT%H:%M:%S", tz="Asia/Shanghai") == \
        datetime(2026, 11, 23, 1, 10, tzinfo=UTC)
    assert t.local_time("") is None
    with pytest.raises(t.TransformError, match="does not match"):
        t.local_time("2026/11/23 09:10")
    with pytest.raises(t.TransformError):
        t.local_time("2026-02-30 09:10:00")


def test_compact_time_and_iso_time() -> None:
    assert t.compact_time("20261123091502") == datetime(2026, 11, 23, 1, 15, 2, tzinfo=UTC)
    assert t.compact_time(20261123091502) == datetime(2026, 11, 23, 1, 15, 2, tzinfo=UTC)
    with pytest.raises(t.TransformError):
        t.compact_time("2026112309150")
    assert t.iso_time("2026-11-23T09:13:40+08:00") == datetime(2026, 11, 23, 1, 13, 40, tzinfo=UTC)
    assert t.iso_time("2026-11-23T01:13:40Z") == datetime(2026, 11, 23, 1, 13, 40, tzinfo=UTC)
    with pytest.raises(t.TransformError, match="no UTC offset"):
        t.iso_time("2026-11-23T09:13:40")


def test_lnglat_string() -> None:
    assert t.lnglat_string("121.4632,31.1984") == (121.4632, 31.1984)
    assert t.lnglat_string(" 121.4632 ， 31.1984 ") == (121.4632, 31.1984)
    assert t.lnglat_string("") is None
    for bad in ("121.46", "a,b", "1,2,3"):
        with pytest.raises(t.TransformError):
            t.lnglat_string(bad)


def test_small_text_transforms() -> None:
    strip = t.get_transform("strip")
    assert strip("  x ") == "x" and strip(12) == "12"
    assert t.upper("cg-0101") == "CG-0101" and t.lower("PASS") == "pass"
    assert t.empty_to_none("  ") is None and t.empty_to_none("x") == "x" and t.empty_to_none(0) == 0
    assert t.null_if("匿名", values=["匿名"]) is None and t.null_if("张三", values=["匿名"]) == "张三"


def test_builtins_are_registered_with_argument_schemas() -> None:
    for name in ("to_int", "to_float", "strip", "clean_text", "local_time", "iso_time", "compact_time",
                 "empty_to_none", "lnglat_string", "upper", "lower", "null_if"):
        assert t.get_transform(name).name == name
    local = t.get_transform("local_time")
    assert local("2026-11-23 09:10:00", {"tz": "Asia/Shanghai"}) == datetime(2026, 11, 23, 1, 10, tzinfo=UTC)
    with pytest.raises(ValidationError):
        local.load_args({"tz": "Mars/Olympus_Mons"})
    with pytest.raises(ValidationError):
        local.load_args({"fmt": "%Y"})
    with pytest.raises(ValidationError, match="takes no arguments"):
        t.get_transform("strip").load_args({"chars": " "})
    with pytest.raises(KeyError, match="unknown transform"):
        t.get_transform("no_such_transform")


class _PrefixArgs(Schema):
    prefix = fields.String(required=True)


@pytest.fixture
def registered() -> Iterator[str]:
    name = "test_add_prefix"
    t.register_transform(name, lambda value, prefix: f"{prefix}{value}", _PrefixArgs)
    yield name
    t.unregister_transform(name)


def test_register_transform(registered: str) -> None:
    transform = t.get_transform(registered)
    assert transform("42", {"prefix": "GD"}) == "GD42"
    assert t.TRANSFORMS[registered] is transform
    with pytest.raises(ValueError, match="already registered"):
        t.register_transform(registered, lambda value: value)
    replaced = t.register_transform(registered, lambda value, prefix: value, _PrefixArgs, replace=True)
    assert t.get_transform(registered) is replaced
    with pytest.raises(ValueError, match="lower_snake_case"):
        t.register_transform("Bad-Name", lambda value: value)

