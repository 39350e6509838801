"""Cross-system deduplication: normalization of tickets before blocking and scoring.

This package is pure (no database): ``normalize`` turns a canonical ticket (the fields
of docs/dedup-jsonl.md) into a ``NormalizedTicket`` whose location, address, text,
category, time and phone can be compared across the department systems.
"""

from hub.dedup.address import Address, normalize_address
from hub.dedup.location import (
    CentroidDetector,
    Location,
    cell_of,
    haversine_m,
    neighbours,
    normalize_point,
)
from hub.dedup.normalize import NormalizedTicket, normalize
from hub.dedup.text import text_similarity, tokenize

__all__ = [
    "Address",
    "CentroidDetector",
    "Location",
    "NormalizedTicket",
    "cell_of",
    "haversine_m",
    "neighbours",
    "normalize",
    "normalize_address",
    "normalize_point",
    "text_similarity",
    "tokenize",
]
