"""Path syntax for reading a value out of a payload.

``gdbh``, ``jq.JJDBH``, ``hfjg.myd``: dotted keys. ``blgc[0]``, ``blgc[-1]``: list
indexes. ``blgc[czlx=BJ]``: the items of a list whose key ``czlx`` equals ``BJ`` (as
text), usually followed by an index: ``blgc[czlx=BJ][-1].nr`` is the text of the latest
办结 step. A path that leads nowhere (missing key, index out of range, ``null`` on the
way, a list where a dict was expected) resolves to ``MISSING``; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final


class _Missing:
    """Sentinel for a path that leads nowhere (distinct from a JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@dataclass(frozen=True)
class Key:
    name: str


@dataclass(frozen=True)
class Index:
    position: int


@dataclass(frozen=True)
class Filter:
    key: str
    value: str


Step = Key | Index | Filter

_TOKEN = re.compile(r"(?P<name>[^.\[\]]+)|\[(?P<selector>[^\]]*)\]|(?P<dot>\.)")
_INDEX = re.compile(r"-?\d+")


class PathSyntaxError(ValueError):
    """A path string does not follow the path syntax."""


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[Step, ...]:
    """Parse a path into steps; raises ``PathSyntaxError`` with the position of the problem."""
    if not path or path != path.strip():
        raise PathSyntaxError("empty path or path with surrounding spaces")
    steps: list[Step] = []
    position = 0
    expect_name = True  # at the start and after a dot a key name must come
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise PathSyntaxError(f"unexpected character at {position}: {path[position:]!r}")
        if match.group("name") is not None:
            if not expect_name:
                raise PathSyntaxError(f"a key must follow a dot (at {position})")
            steps.append(Key(match.group("name")))
            expect_name = False
        elif match.group("selector") is not None:
            if expect_name and steps:
                raise PathSyntaxError(f"'[' right after a dot (at {position})")
            steps.append(_selector(match.group("selector"), position))
            expect_name = False
        else:
            if expect_name:
                raise PathSyntaxError(f"unexpected dot at {position}")
            expect_name = True
        position = match.end()
    if expect_name:
        raise PathSyntaxError("path ends with a dot")
    return tuple(steps)


def _selector(text: str, position: int) -> Step:
    if _INDEX.fullmatch(text):
        return Index(int(text))
    key, sep, value = text.partition("=")
    if sep and key.strip():
        return Filter(key.strip(), value.strip())
    raise PathSyntaxError(f"selector [{text}] at {position} is neither an index nor key=value")


def text_of(value: Any) -> str:
    """The text form used to compare payload values with document values (codes, filters)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def resolve(payload: Any, path: str) -> Any:
    """The value at ``path`` in ``payload`` (``None`` for a JSON ``null`` at the end), or ``MISSING``."""
    current: Any = payload
    for step in parse_path(path):
        if current is None:  # null on the way: nothing below it
            return MISSING
        if isinstance(step, Key):
            if not isinstance(current, Mapping) or step.name not in current:
                return MISSING
            current = current[step.name]
        elif isinstance(step, Index):
            if not isinstance(current, list) or not -len(current) <= step.position < len(current):
                return MISSING
            current = current[step.position]
        else:
            if not isinstance(current, list):
                return MISSING
            current = [item for item in current
                       if isinstance(item, Mapping) and item.get(step.key) is not None
                       and text_of(item[step.key]) == step.value]
    return current
