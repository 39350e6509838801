"""Path syntax: dotted keys, indexes, key=value filters; never raises on payload shape."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.paths import MISSING, Filter, Index, Key, PathSyntaxError, parse_path, resolve

ORDER: dict[str, Any] = {
    "gdbh": "GD1",
    "hfjg": None,
    "jq": {"JJDBH": "3101", "JD": 121.45},
    "blgc": [{"czlx": "PD", "nr": "派单"}, {"czlx": "BJ", "nr": "第一次办结"},
             {"czlx": "CB", "nr": "重办"}, {"czlx": "BJ", "nr": "第二次办结"}, {"czlx": "HF", "nr": "回访"}],
}


def test_parse_path() -> None:
    assert parse_path("jq.JJDBH") == (Key("jq"), Key("JJDBH"))
    assert parse_path("blgc[-1].nr") == (Key("blgc"), Index(-1), Key("nr"))
    assert parse_path("blgc[czlx=BJ][0]") == (Key("blgc"), Filter("czlx", "BJ"), Index(0))


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a.[0]", "a[x]", "a[]", " a", "a]"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(bad)


@pytest.mark.parametrize(("path", "expected"), [
    ("gdbh", "GD1"),
    ("jq.JJDBH", "3101"),
    ("jq.JD", 121.45),
    ("blgc[0].czlx", "PD"),
    ("blgc[-1].nr", "回访"),
    ("blgc[czlx=BJ][-1].nr", "第二次办结"),
    ("blgc[czlx=BJ][0].nr", "第一次办结"),
    ("hfjg", None),
])
def test_resolve(path: str, expected: Any) -> None:
    assert resolve(ORDER, path) == expected


@pytest.mark.parametrize("path", ["nope", "hfjg.myd", "jq.JJDBH.x", "blgc[9].nr", "blgc[czlx=YQ][-1].nr",
                                  "gdbh[0]", "jq[0]", "blgc.nr"])
def test_paths_that_lead_nowhere_are_missing(path: str) -> None:
    assert resolve(ORDER, path) is MISSING


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                  max_size=3),
                     max_leaves=10)


@given(payload=_json)
def test_resolve_never_raises(payload: Any) -> None:
    for path in ("a", "a.b", "a[0]", "a[-1].b", "a[k=v][0]", "[0]"):
        resolve(payload, path)
