"""The canonical vocabulary every mapping document maps onto.

A mapping document turns one system's payload into a dict of these fields. The hub's
case model is built from them; nothing downstream reads a system's own field names.
"""

from __future__ import annotations

from enum import StrEnum


class CanonicalStatus(StrEnum):
    """Canonical lifecycle (shared/design.md). ``DUPLICATE`` is ticket-level only."""

    REPORTED = "REPORTED"
    ACCEPTED = "ACCEPTED"
    DISPATCHED = "DISPATCHED"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    VERIFIED = "VERIFIED"
    CLOSED = "CLOSED"
    RETURNED = "RETURNED"
    SUSPENDED = "SUSPENDED"
    REOPENED = "REOPENED"
    CANCELLED = "CANCELLED"
    DUPLICATE = "DUPLICATE"


STATUS_LABELS_ZH: dict[str, str] = {
    "REPORTED": "已上报",
    "ACCEPTED": "已受理",
    "DISPATCHED": "已派遣",
    "IN_PROGRESS": "处置中",
    "RESOLVED": "已处置",
    "VERIFIED": "已核查",
    "CLOSED": "已结案",
    "RETURNED": "已退回",
    "SUSPENDED": "挂起/延期",
    "REOPENED": "重新办理",
    "CANCELLED": "已撤销",
    "DUPLICATE": "重复件",
}

# Canonical ticket fields: name -> (python type name, required, meaning).
# Types: str, int, bool, datetime (aware, UTC), float.
CANONICAL_FIELDS: dict[str, tuple[str, bool, str]] = {
    "external_id": ("str", True, "the record's id in its own system"),
    "version": ("int", False, "version / seq of this snapshot in its own system (newer wins)"),
    "title": ("str", False, "short title"),
    "description": ("str", False, "free text as the system holds it, cleaned"),
    "category": ("str", True, "canonical category code (mappings/defaults/taxonomy.yaml)"),
    "category_code": ("str", False, "the system's own category code"),
    "category_name": ("str", False, "the system's own category name"),
    "status": ("str", True, "canonical lifecycle status (CanonicalStatus)"),
    "status_code": ("str", True, "the system's own status code"),
    "reported_at": ("datetime", True, "when the incident was reported, aware UTC"),
    "updated_at": ("datetime", False, "last change in the system, aware UTC"),
    "deadline": ("datetime", False, "the system's own deadline, aware UTC"),
    "lat": ("float", False, "WGS-84 latitude"),
    "lng": ("float", False, "WGS-84 longitude"),
    "address": ("str", False, "address text"),
    "district": ("str", False, "区"),
    "street": ("str", False, "街道/镇"),
    "grid_code": ("str", False, "unit grid code"),
    "urgency": ("str", False, "normal | urgent | critical"),
    "source": ("str", False, "how the system got it (its own source code)"),
    "origin_system": ("str", False, "system type the record first came from, when this system relays other "
                                    "systems' records (the dedup matcher weighs it as from there)"),
    "department": ("str", False, "unit now holding it in that system"),
    "result_text": ("str", False, "handling result text"),
    "reporter_name": ("str", False, "PII: reporter's name"),
    "reporter_phone": ("str", False, "PII: reporter's phone"),
    "reporter_confidential": ("bool", False, "reporter identity must never leave its system"),
    # Added with the mapping layer: explicit links and outcomes the systems state themselves.
    "external_ref": ("str", False, "the sender's number a record carries (数字城管 externalNo = 12345 gdbh)"),
    "duplicate_of": ("str", False, "external id of the master record this one was merged into (12345 zgdbh)"),
    "handover_to": ("str", False, "system key a record was handed over to (police YJDW → city_management)"),
    "satisfaction": ("str", False, "citizen's verdict on the outcome: satisfied | basically | dissatisfied"),
    "verify_result": ("str", False, "on-site verification outcome: pass | fail"),
}

# Closed value sets of canonical fields (besides status → CanonicalStatus and category → taxonomy).
FIELD_CHOICES: dict[str, frozenset[str]] = {
    "urgency": frozenset({"normal", "urgent", "critical"}),
    "satisfaction": frozenset({"satisfied", "basically", "dissatisfied"}),
    "verify_result": frozenset({"pass", "fail"}),
}

# Field-name prefixes a document may use beside the names above (type: any scalar, kept as mapped).
# ``alias_<kind>``: another id of the same record (e.g. 案卷号 given at 立案); the hub stores it as an alias.
# ``x_<name>``: a system-specific extra kept with the ticket's fields, never interpreted by the hub.
FIELD_PREFIXES: dict[str, str] = {
    "alias_": "another permanent id of the same record (str)",
    "x_": "system-specific extra, kept but not interpreted",
}

PII_FIELDS = frozenset({"reporter_name", "reporter_phone"})
