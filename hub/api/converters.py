"""URL converters that refuse what the stores cannot hold (PostgreSQL text has no NUL)."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import BaseConverter

TEXT_PATTERN = "^[^/\\u0000]{1,100}$"


class TextConverter(BaseConverter):
    """One path segment of 1–100 characters, no NUL: ``<text:key>``."""

    regex = "[^/\x00]{1,100}"


def text_param_schema(_converter: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 100, "pattern": TEXT_PATTERN}
