"""Errors of the mapping layer: one for documents, one for payloads.

``MappingDocumentError`` says a document cannot be used (its ``issues`` name every
problem by path). ``MappingError`` says one payload cannot be mapped by a good
document; its message is meant for an admin: which field, which path, what value,
which table, in Chinese and English.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mappings.canonical import PII_FIELDS


@dataclass(frozen=True)
class Issue:
    """One problem in a mapping document, e.g. ``fields.category.code_table: unknown table 'categry'``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MappingDocumentError(ValueError):
    """A mapping document is malformed or inconsistent; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "invalid mapping document")


class MappingErrorKind(StrEnum):
    """What went wrong, for classification (the sync engine files all of them as 'mapping')."""

    MISSING = "missing"
    UNKNOWN_CODE = "unknown_code"
    UNMAPPED_STATUS = "unmapped_status"
    TRANSFORM_FAILED = "transform_failed"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    BAD_PAYLOAD = "bad_payload"


_ZH = {
    MappingErrorKind.MISSING: "缺少必填值",
    MappingErrorKind.UNKNOWN_CODE: "代码表中没有该值（也未设 _default）",
    MappingErrorKind.UNMAPPED_STATUS: "状态未在 status_map.inbound 或 ignore 中映射",
    MappingErrorKind.TRANSFORM_FAILED: "转换失败",
    MappingErrorKind.WRONG_TYPE: "值的类型不对",
    MappingErrorKind.OUT_OF_RANGE: "坐标超出合理范围",
    MappingErrorKind.BAD_PAYLOAD: "报文结构不对",
}

_MAX_SHOWN = 80


def shown_value(field: str | None, value: Any) -> str:
    """A value as an error message may show it: PII masked, long values cut."""
    if field in PII_FIELDS and value not in (None, ""):
        return "'***'"
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


class MappingError(ValueError):
    """One payload cannot be mapped.

    ``field`` is the canonical field (``location`` for coordinates, ``None`` for the
    payload as a whole), ``reason`` the detail in English, ``value`` the offending raw
    value; ``path`` and ``table`` say where it came from and which code table refused it.
    """

    def __init__(self, field: str | None, reason: str, value: Any = None, *, path: str | None = None,
                 table: str | None = None, kind: MappingErrorKind = MappingErrorKind.TRANSFORM_FAILED
                 ) -> None:
        self.field = field
        self.reason = reason
        self.value = value
        self.path = path
        self.table = table
        self.kind = kind
        super().__init__(self._message())

    def _message(self) -> str:
        where_zh = [f"字段 {self.field or '（整个报文）'}"]
        where_en = [f"field {self.field or '(payload)'}"]
        if self.path:
            where_zh.append(f"路径 {self.path}")
            where_en.append(f"path {self.path}")
        if self.value is not None or self.kind is not MappingErrorKind.MISSING:
            shown = shown_value(self.field, self.value)
            where_zh.append(f"值 {shown}")
            where_en.append(f"value {shown}")
        if self.table:
            where_zh.append(f"代码表 {self.table}")
            where_en.append(f"table {self.table}")
        return (f"{'，'.join(where_zh)}：{_ZH[self.kind]} / "
                f"{', '.join(where_en)}: {self.reason}")

    # Named constructors keep the wording consistent across the engine.
    @classmethod
    def missing(cls, field: str, path: str | None) -> MappingError:
        """A required field has no value at its path."""
        return cls(field, "required value is missing or empty", None, path=path,
                   kind=MappingErrorKind.MISSING)

    @classmethod
    def unknown_code(cls, field: str, path: str | None, value: Any, table: str) -> MappingError:
        """A value is not a key of the code table and the table has no ``_default``."""
        return cls(field, f"value not in code table '{table}' and the table has no _default; "
                          f"add it to code_tables.{table}", value, path=path, table=table,
                   kind=MappingErrorKind.UNKNOWN_CODE)

    @classmethod
    def unmapped_status(cls, field: str, path: str | None, value: Any) -> MappingError:
        """A system status is neither in ``status_map.inbound`` nor in ``status_map.ignore``."""
        return cls(field, "status not in status_map.inbound nor status_map.ignore; map it", value,
                   path=path, table="status_map", kind=MappingErrorKind.UNMAPPED_STATUS)
