"""marshmallow schemas of the REST API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

NO_NUL = validate.Regexp(r"^[^\x00]*$", error="must not contain NUL characters")


def text(max_length: int) -> fields.Str:
    """A string argument the stores can hold: bounded, no NUL."""
    return fields.Str(validate=[validate.Length(max=max_length), NO_NUL])


STATUS_CHOICES = ["REPORTED", "ACCEPTED", "DISPATCHED", "IN_PROGRESS", "RESOLVED", "VERIFIED", "CLOSED",
                  "RETURNED", "SUSPENDED", "REOPENED", "CANCELLED", "DUPLICATE"]


class ErrorSchema(Schema):
    code = fields.Int()
    status = fields.Str()
    message = fields.Str()
    errors = fields.Dict()


class PageArgs(Schema):
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100000))
    page_size = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class CaseListArgs(PageArgs):
    status = fields.Str(validate=validate.OneOf(STATUS_CHOICES))
    category = text(64)
    system = text(64)
    grid = text(32)
    multi_system = fields.Bool(metadata={"description": "only cases whose tickets come from ≥2 systems"})
    reported_from = fields.AwareDateTime(default_timezone=None)
    reported_to = fields.AwareDateTime(default_timezone=None)


class TicketSchema(Schema):
    id = fields.Int()
    system = fields.Str(attribute="system_key")
    system_type = fields.Str()
    external_id = fields.Str()
    case_id = fields.Int(allow_none=True)
    status = fields.Str(metadata={"description": "canonical status"})
    status_code = fields.Str(metadata={"description": "status in the system's own vocabulary"})
    status_label = fields.Str(metadata={"description": "the system's own words for status_code"})
    version = fields.Int(attribute="seq", allow_none=True)
    category = fields.Str()
    category_code = fields.Str()
    title = fields.Str()
    description = fields.Str()
    address = fields.Str()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    grid_code = fields.Str()
    department = fields.Str()
    reported_at = fields.AwareDateTime()
    external_updated_at = fields.AwareDateTime(allow_none=True)
    deadline = fields.AwareDateTime(allow_none=True)
    reporter_confidential = fields.Bool()
    mapping_version_id = fields.Int(allow_none=True)
    aliases = fields.Method("get_aliases")
    references = fields.Method("get_references")

    def get_aliases(self, obj: object) -> list[dict[str, str]]:
        return [{"kind": a.kind, "value": a.value} for a in getattr(obj, "aliases", [])]

    def get_references(self, obj: object) -> list[dict[str, str]]:
        return [{"system_type": r.ref_system_type, "external_id": r.ref_external_id, "relation": r.relation}
                for r in getattr(obj, "references", [])]


class CaseEventSchema(Schema):
    at = fields.AwareDateTime()
    kind = fields.Str()
    system = fields.Str(attribute="system_key")
    summary = fields.Str()
    detail = fields.Dict()
    actor = fields.Str()


class CaseSchema(Schema):
    id = fields.Int()
    number = fields.Str()
    title = fields.Str()
    category = fields.Str()
    status = fields.Str()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    address = fields.Str()
    grid_code = fields.Str()
    owner_system = fields.Str()
    department = fields.Str()
    deadline = fields.AwareDateTime(allow_none=True)
    reported_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    systems = fields.List(fields.Str())
    ticket_count = fields.Int()


class CaseDetailSchema(CaseSchema):
    description = fields.Str()
    tickets = fields.List(fields.Nested(TicketSchema))
    timeline = fields.List(fields.Nested(CaseEventSchema))


class CasePageSchema(Schema):
    total = fields.Int()
    page = fields.Int()
    page_size = fields.Int()
    items = fields.List(fields.Nested(CaseSchema))


class SystemSchema(Schema):
    key = fields.Str()
    plugin = fields.Str()
    name = fields.Str()
    base_url = fields.Str()
    enabled = fields.Bool()
    poll_interval_s = fields.Int()
    push = fields.Bool()
    pull = fields.Bool()
    webhook_url = fields.Str(allow_none=True)
    credential_fields = fields.List(fields.Str(), metadata={"description": "names only; values are write-only"})
    active_mapping_version = fields.Int(allow_none=True)
    last_poll = fields.Dict(allow_none=True)
    counts = fields.Dict()


class ConnectionReportSchema(Schema):
    ok = fields.Bool()
    message = fields.Str()
    detail = fields.Dict()


class PluginSchema(Schema):
    name = fields.Str()
    version = fields.Str()
    module = fields.Str()
    hooks = fields.List(fields.Str())
    system_types = fields.List(fields.Str())


class InboundArgs(PageArgs):
    status = fields.Str(validate=validate.OneOf(["pending", "processed", "stale", "quarantined"]))
    system = text(64)


class InboundEventSummarySchema(Schema):
    id = fields.Int()
    system = fields.Str(attribute="system_key")
    event_id = fields.Str()
    external_id = fields.Str()
    kind = fields.Str()
    version = fields.Int(allow_none=True)
    status = fields.Str()
    error_kind = fields.Str()
    error_reason = fields.Str()
    attempts = fields.Int()
    ticket_id = fields.Int(allow_none=True)
    mapping_version_id = fields.Int(allow_none=True)
    received_at = fields.AwareDateTime()
    processed_at = fields.AwareDateTime(allow_none=True)
    content_type = fields.Str()


class InboundEventSchema(InboundEventSummarySchema):
    payload = fields.Str(metadata={"description": "raw payload, reporter identity masked"})


class InboundPageSchema(Schema):
    total = fields.Int()
    page = fields.Int()
    page_size = fields.Int()
    items = fields.List(fields.Nested(InboundEventSummarySchema))


class ReplayArgs(Schema):
    ids = fields.List(fields.Int(validate=validate.Range(min=1, max=2_147_483_647)), validate=validate.Length(max=1000))
    system = text(64)


class ReplayResultSchema(Schema):
    counts = fields.Dict(keys=fields.Str(), values=fields.Int())


class MappingVersionSchema(Schema):
    id = fields.Int()
    system = fields.Str(attribute="system_key")
    version = fields.Int()
    active = fields.Bool()
    comment = fields.Str()
    created_by = fields.Str()
    created_at = fields.AwareDateTime()
    checksum = fields.Str()
    document = fields.Str()


class MappingCreateArgs(Schema):
    document = fields.Str(required=True, validate=[validate.Length(min=1, max=500_000), NO_NUL])
    comment = fields.Str(load_default="", validate=[validate.Length(max=500), NO_NUL])
    activate = fields.Bool(load_default=False)
