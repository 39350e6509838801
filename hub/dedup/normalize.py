"""A canonical ticket (docs/dedup-jsonl.md) → ``NormalizedTicket``, the form blocking and
scoring compare: WGS-84 point with its weak reason, parsed address, text tokens, canonical
category and group, aware UTC time, keyed phone hash (never the number in clear).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hub.crypto import normalize_phone
from hub.dedup.address import Address, complete_address, normalize_address
from hub.dedup.location import CentroidDetector, assess_location, normalize_point
from hub.dedup.text import tokenize
from mappings.taxonomy import Taxonomy

# Department systems speak Shanghai time; a naive timestamp is read as UTC+8 (no DST since 1991).
SHANGHAI = timezone(timedelta(hours=8))
FALLBACK_CATEGORY = "other"
# Grid workers' reports use the 12345 codes (docs/dedup-jsonl.md).
_CROSSWALK_ALIASES = {"grid": "hotline12345"}


@dataclass(frozen=True, slots=True)
class NormalizedTicket:
    """A ticket ready for matching; ``location_weak`` is ``no_pin``, ``shared_point``,
    ``road_only_address`` or ``None``; ``refs`` are ``(system, external_id)`` pairs."""

    system: str
    external_id: str
    reported_at: datetime
    category: str
    group: str
    lat: float | None
    lng: float | None
    location_weak: str | None
    address: Address
    tokens: frozenset[str]
    phone_hash: str | None
    refs: tuple[tuple[str, str], ...]


def parse_time(value: Any) -> datetime:
    """ISO-8601 text or a datetime → aware UTC; a naive value is Shanghai local time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"reported_at is not a timestamp: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(UTC)


def canonical_category(record: Mapping[str, Any], taxonomy: Taxonomy) -> str:
    """``category`` if already canonical, else ``category_code`` through the system's
    crosswalk; an unknown code falls back to ``other`` (matched only with other ``other``s)."""
    given = record.get("category")
    if isinstance(given, str) and given in taxonomy.codes:
        return given
    system = str(record.get("system") or "")
    crosswalk = taxonomy.crosswalk(_CROSSWALK_ALIASES.get(system, system))
    code = str(record.get("category_code") or "").strip()
    canonical = crosswalk.get(code)
    if canonical is None:
        return FALLBACK_CATEGORY if FALLBACK_CATEGORY in taxonomy.codes else next(iter(taxonomy.categories))
    return canonical


def _point(record: Mapping[str, Any]) -> tuple[float, float] | None:
    datum = str(record.get("datum") or "wgs84").lower()
    if datum == "epsg4549":
        return normalize_point(datum, record.get("x"), record.get("y"))
    return normalize_point(datum, record.get("lng"), record.get("lat"))


def _refs(raw: Any) -> tuple[tuple[str, str], ...]:
    refs: list[tuple[str, str]] = []
    for ref in raw or ():
        if isinstance(ref, Mapping) and ref.get("system") and ref.get("external_id"):
            refs.append((str(ref["system"]), str(ref["external_id"])))
    return tuple(refs)


def normalize(
    record: Mapping[str, Any],
    *,
    taxonomy: Taxonomy,
    hasher: Callable[[str], str],
    centroids: CentroidDetector | None = None,
) -> NormalizedTicket:
    """Normalize one canonical ticket; ``ValueError`` without system, external_id or a valid
    reported_at. ``hasher`` is e.g. ``SecretBox.keyed_hash``; ``centroids`` observes the
    point (so it learns centroids as tickets stream in) before judging it."""
    system = str(record.get("system") or "").strip()
    external_id = str(record.get("external_id") or "").strip()
    if not system or not external_id:
        raise ValueError("a ticket needs system and external_id")
    category = canonical_category(record, taxonomy)
    address = complete_address(normalize_address(str(record.get("address") or "")),
                               f"{record.get('title') or ''} {record.get('description') or ''}")
    point = _point(record)
    if point is not None and centroids is not None:
        centroids.observe(point[0], point[1], address.key or f"{system}:{external_id}")
    location = assess_location(point, address.level, centroids)
    phone_digits = normalize_phone(str(record.get("phone") or ""))
    return NormalizedTicket(
        system=system,
        external_id=external_id,
        reported_at=parse_time(record.get("reported_at")),
        category=category,
        group=taxonomy.group_of(category),
        lat=location.lat,
        lng=location.lng,
        location_weak=location.weak_reason,
        address=address,
        tokens=tokenize(record.get("title"), record.get("description")),
        phone_hash=hasher(phone_digits) if phone_digits else None,
        refs=_refs(record.get("refs")),
    )
