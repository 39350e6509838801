"""Named transforms a mapping document can apply to a value, and their registry.

A transform is ``fn(value, **args) -> value``. The engine never calls one with
``None`` (an absent value stays absent), so a transform only handles real values;
it raises ``TransformError`` (or any ``ValueError``/``TypeError``) when the value is
unusable, and the engine turns that into a ``MappingError`` naming field and path.

Arguments come from the document (``{local_time: {format: …, tz: …}}``) and are
checked by the transform's marshmallow ``arg_schema``; the loaded arguments are what
the function receives. A transform without a schema takes no arguments.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate

TransformFn = Callable[..., Any]


class TransformError(ValueError):
    """A value cannot be transformed; the message says why, in plain words."""


@dataclass
class Transform:
    """A registered transform: its function and the schema of its arguments."""

    name: str
    fn: TransformFn
    arg_schema: Schema | None = None
    _loaded: dict[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    def load_args(self, args: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """Check and load document arguments; raises ``marshmallow.ValidationError``."""
        given = dict(args or {})
        if self.arg_schema is None:
            if given:
                raise ValidationError({"_schema": [f"transform '{self.name}' takes no arguments"]})
            return {}
        key = repr(sorted(given.items()))
        if key not in self._loaded:  # documents repeat the same few argument sets
            loaded = self.arg_schema.load(given)
            self._loaded[key] = dict(loaded) if isinstance(loaded, Mapping) else {}
        return self._loaded[key]

    def __call__(self, value: Any, args: Mapping[str, Any] | None = None) -> Any:
        return self.fn(value, **self.load_args(args))


class _Registry(Mapping[str, Transform]):
    """Name → Transform; read-only as a Mapping, written through ``register_transform``."""

    def __init__(self) -> None:
        self._items: dict[str, Transform] = {}

    def __getitem__(self, name: str) -> Transform:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, transform: Transform, replace: bool) -> None:
        if transform.name in self._items and not replace:
            raise ValueError(f"transform '{transform.name}' is already registered")
        self._items[transform.name] = transform

    def remove(self, name: str) -> None:
        self._items.pop(name, None)


TRANSFORMS = _Registry()
"""Every registered transform by name (read-only view)."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register_transform(name: str, fn: TransformFn, arg_schema: Schema | type[Schema] | None = None,
                       *, replace: bool = False) -> Transform:
    """Register ``fn`` under ``name`` (lower_snake_case); ``arg_schema`` checks its arguments.

    Raises ``ValueError`` for a bad name or a name already taken (unless ``replace``).
    """
    if not _NAME.match(name):
        raise ValueError(f"transform name {name!r} must be lower_snake_case")
    schema = arg_schema() if isinstance(arg_schema, type) else arg_schema
    transform = Transform(name, fn, schema)
    TRANSFORMS.add(transform, replace)
    return transform


def unregister_transform(name: str) -> None:
    """Forget a transform (tests, plugin unloading); unknown names are ignored."""
    TRANSFORMS.remove(name)


def get_transform(name: str) -> Transform:
    """The transform registered under ``name``; ``KeyError`` if there is none."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"unknown transform '{name}'") from None


# ------------------------------------------------------------------ text

def to_int(value: Any) -> int:
    """``"7"`` / ``7`` / ``7.0`` → ``7``; anything else fails."""
    if isinstance(value, bool):
        raise TransformError("a boolean is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise TransformError(f"not an integer: {value!r}")


def to_float(value: Any) -> float:
    """``"121.45"`` / ``121`` → float; NaN, infinity and non-numbers fail."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TransformError(f"not a number: {value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise TransformError(f"not a number: {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise TransformError(f"not a finite number: {value!r}")
    return number


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TransformError(f"not text: {type(value).__name__}")


def strip(value: Any) -> str:
    """Surrounding whitespace removed (numbers become their text)."""
    return _text(value).strip()


# Invisible format characters that only get in the way (zero-width space, BOM, bidi
# controls, soft hyphen). The zero-width joiner U+200D is kept: emoji sequences use it.
_INVISIBLE = frozenset("\u00ad\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                       "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")


def _is_fullwidth_alnum(char: str) -> bool:
    return "\uff10" <= char <= "\uff19" or "\uff21" <= char <= "\uff3a" or "\uff41" <= char <= "\uff5a"


def clean_text(value: Any) -> str:
    """Text as people meant it: full-width letters and digits made ASCII (NFKC on those
    only, so Chinese punctuation such as ，：（） stays), control and invisible characters
    dropped, whitespace runs collapsed to one space, NFC; emoji kept. Idempotent."""
    chars: list[str] = []
    for char in _text(value):
        if char.isspace():
            chars.append(" ")
        elif unicodedata.category(char) == "Cc" or char in _INVISIBLE:
            continue
        elif _is_fullwidth_alnum(char):
            chars.append(unicodedata.normalize("NFKC", char))
        else:
            chars.append(char)
    # NFC last: composing never creates spaces, controls or full-width forms, so a second
    # pass finds nothing to change.
    return unicodedata.normalize("NFC", " ".join("".join(chars).split()))


def empty_to_none(value: Any) -> Any:
    """``""`` or whitespace-only text → ``None``; anything else unchanged."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def upper(value: Any) -> str:
    """Upper-case text."""
    return _text(value).upper()


def lower(value: Any) -> str:
    """Lower-case text."""
    return _text(value).lower()


def null_if(value: Any, values: list[str]) -> Any:
    """``None`` when the value (as stripped text) is one of ``values`` (e.g. ``匿名``)."""
    if isinstance(value, str | int) and str(value).strip() in values:
        return None
    return value


# ------------------------------------------------------------------ time

def zone(name: str) -> tzinfo:
    """The tz database zone ``name``. Asia/Shanghai falls back to a fixed UTC+8 (China has
    kept no daylight saving since 1991) where no tz database is installed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        if name in ("Asia/Shanghai", "Asia/Chongqing", "PRC"):
            return timezone(timedelta(hours=8), "CST")
        raise


def _check_zone(name: str) -> None:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}") from None


def _check_format(fmt: str) -> None:
    if "%" not in fmt:
        raise ValidationError(f"{fmt!r} is not a strftime format")


class LocalTimeArgs(Schema):
    format = fields.String(load_default="%Y-%m-%d %H:%M:%S", validate=_check_format)
    tz = fields.String(load_default="Asia/Shanghai", validate=_check_zone)


class CompactTimeArgs(Schema):
    tz = fields.String(load_default="Asia/Shanghai", validate=_check_zone)


class NullIfArgs(Schema):
    values = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


def local_time(value: Any, format: str = "%Y-%m-%d %H:%M:%S", tz: str = "Asia/Shanghai") -> datetime | None:
    """Naive local time text (``format``, zone ``tz``) → aware UTC datetime; ``""`` → ``None``."""
    text = _text(value).strip()
    if not text:
        return None
    try:
        naive = datetime.strptime(text, format)
    except ValueError:
        raise TransformError(f"time {text!r} does not match format {format!r}") from None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=zone(tz)).astimezone(UTC)


def compact_time(value: Any, tz: str = "Asia/Shanghai") -> datetime | None:
    """``yyyyMMddHHmmss`` local time → aware UTC datetime; ``""`` → ``None``."""
    text = _text(value).strip()
    if text and not re.fullmatch(r"\d{14}", text):
        raise TransformError(f"time {text!r} is not yyyyMMddHHmmss")
    return local_time(text, "%Y%m%d%H%M%S", tz)


def iso_time(value: Any) -> datetime | None:
    """ISO-8601 with an offset (``2026-11-23T09:13:40+08:00``, ``…Z``) → aware UTC; ``""`` → ``None``.
    A time without offset fails: guessing the zone would shift it silently."""
    text = _text(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TransformError(f"time {text!r} is not ISO-8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise TransformError(f"time {text!r} has no UTC offset")
    return parsed.astimezone(UTC)


# ------------------------------------------------------------------ coordinates

def lnglat_string(value: Any) -> tuple[float, float] | None:
    """``"121.4532,31.1921"`` (also with a full-width comma) → ``(lng, lat)``; ``""`` → ``None``."""
    text = _text(value).strip()
    if not text:
        return None
    parts = [part.strip() for part in text.replace("，", ",").split(",")]
    if len(parts) != 2:
        raise TransformError(f"{text!r} is not 'lng,lat'")
    return to_float(parts[0]), to_float(parts[1])


def _register_builtins() -> None:
    for name, fn in (("to_int", to_int), ("to_float", to_float), ("strip", strip),
                     ("clean_text", clean_text), ("empty_to_none", empty_to_none), ("upper", upper),
                     ("lower", lower), ("iso_time", iso_time), ("lnglat_string", lnglat_string)):
        register_transform(name, fn)
    register_transform("local_time", local_time, LocalTimeArgs)
    register_transform("compact_time", compact_time, CompactTimeArgs)
    register_transform("null_if", null_if, NullIfArgs)


_register_builtins()
