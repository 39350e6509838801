"""Reporter identity never leaves the hub in clear: mask it in anything the API shows."""

from __future__ import annotations

import re
from collections.abc import Iterable

# mainland mobiles, landlines with area code, full-width digits already NFKC-normalized upstream
PHONE_RE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")
MASK = "***"


def redact_text(text: str, known_values: Iterable[str] = ()) -> str:
    for value in sorted({v for v in known_values if v and len(v) >= 2}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return PHONE_RE.sub(MASK, text)
