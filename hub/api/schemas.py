"""marshmallow schemas of the REST API."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub.services import reports

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


class LogLineSchema(Schema):
    at = fields.Str(allow_none=True)
    operation = fields.Str()
    kind = fields.Str()
    detail = fields.Str()


class HealthOutboundSchema(Schema):
    backlog = fields.Int(metadata={"description": "effects waiting (pending or failed)"})
    lag_s = fields.Float(metadata={"description": "age of the oldest waiting effect, seconds"})
    oldest_pending_at = fields.Str(allow_none=True)
    dead = fields.Int(metadata={"description": "dead letters waiting for a person"})
    oldest_dead_at = fields.Str(allow_none=True)


class HealthDeliverySchema(Schema):
    window_s = fields.Int()
    attempts = fields.Int()
    failures = fields.Int()
    error_rate = fields.Float()
    last_success_at = fields.Str(allow_none=True)
    last_error = fields.Nested(LogLineSchema, allow_none=True)


class HealthInboundSchema(Schema):
    last_success_at = fields.Str(allow_none=True)
    pending = fields.Int()
    quarantined = fields.Int()
    last_error = fields.Nested(LogLineSchema, allow_none=True)


class HealthCircuitSchema(Schema):
    state = fields.Str(metadata={"description": "closed, open or half_open"})
    failures = fields.Int(metadata={"description": "consecutive transient failures"})
    opened_at = fields.Str(allow_none=True)
    retry_at = fields.Str(allow_none=True)
    last_error = fields.Str()


class SystemHealthSchema(Schema):
    key = fields.Str()
    enabled = fields.Bool()
    status = fields.Str(metadata={"description": "ok, degraded, down or disabled"})
    last_success_at = fields.Str(allow_none=True)
    outbound = fields.Nested(HealthOutboundSchema)
    delivery = fields.Nested(HealthDeliverySchema)
    inbound = fields.Nested(HealthInboundSchema)
    circuit = fields.Nested(HealthCircuitSchema)


class ReconcileArgs(Schema):
    limit = fields.Int(load_default=500, validate=validate.Range(min=1, max=5000),
                       metadata={"description": "records re-read at most"})


class ReconcileReportSchema(Schema):
    system_key = fields.Str()
    checked = fields.Int()
    stored = fields.Int(metadata={"description": "snapshots stored; ingest applies the newer ones"})
    missing = fields.List(fields.Str(), metadata={"description": "records the system no longer knows"})
    errors = fields.List(fields.Str())
    dead_writes = fields.List(fields.Int(), metadata={"description": "dead-lettered writes the record does not "
                                                                     "show: replay them"})
    ok = fields.Bool()


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


# --- dedup: match explanations, review queue, case operations (hub/api/dedup.py) ---------------

REVIEW_STATUS_CHOICES = ["pending", "accepted", "rejected", "linked_elsewhere", "superseded"]
DB_ID = validate.Range(min=1, max=2_147_483_647)


class ContributionSchema(Schema):
    feature = fields.Str()
    level = fields.Str()
    weight = fields.Float()


class MatchRecordSchema(Schema):
    id = fields.Int()
    ticket_id = fields.Int()
    case_id = fields.Int(metadata={"description": "the case the decision put the ticket in"})
    candidate_case_id = fields.Int(allow_none=True, metadata={"description": "the case it probably belongs to"})
    action = fields.Str(metadata={"description": "link / review / new / recurrence"})
    matcher = fields.Str()
    probability = fields.Float(allow_none=True)
    score = fields.Float(allow_none=True)
    member_ticket_id = fields.Int(allow_none=True, metadata={"description": "the candidate's closest ticket"})
    contributions = fields.List(fields.Nested(ContributionSchema))
    candidates = fields.List(fields.Dict())
    thresholds = fields.Dict()
    reason = fields.Str()
    model_version = fields.Str()
    created_at = fields.AwareDateTime()
    review_status = fields.Str(metadata={"description": "empty unless the decision asked for a review"})
    reviewed_by = fields.Str()
    reviewed_at = fields.AwareDateTime(allow_none=True)
    review_note = fields.Str()


class TicketBriefSchema(Schema):
    id = fields.Int()
    system = fields.Str()
    system_type = fields.Str()
    external_id = fields.Str()
    case_id = fields.Int(allow_none=True)
    title = fields.Str()
    category = fields.Str()
    address = fields.Str()
    reported_at = fields.AwareDateTime()
    status = fields.Str()
    grid_code = fields.Str()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)


class CaseBriefSchema(Schema):
    id = fields.Int()
    number = fields.Str()
    title = fields.Str()
    category = fields.Str()
    status = fields.Str()
    address = fields.Str()
    grid_code = fields.Str()
    reported_at = fields.AwareDateTime()
    closed_at = fields.AwareDateTime(allow_none=True)
    merged_into_id = fields.Int(allow_none=True)
    recurrence_of_id = fields.Int(allow_none=True)
    ticket_count = fields.Int()
    tickets = fields.List(fields.Nested(TicketBriefSchema), metadata={"description": "the first 20 tickets"})


class ReviewItemSchema(MatchRecordSchema):
    ticket = fields.Nested(TicketBriefSchema, allow_none=True)
    case = fields.Nested(CaseBriefSchema, allow_none=True, metadata={"description": "the ticket's current case"})
    candidate_case = fields.Nested(CaseBriefSchema, allow_none=True)
    ticket_moved = fields.Bool(metadata={"description": "the ticket left the case the decision put it in"})


class ReviewListArgs(Schema):
    status = fields.Str(load_default="pending", validate=validate.OneOf(REVIEW_STATUS_CHOICES))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class ReviewPageSchema(Schema):
    total = fields.Int()
    limit = fields.Int()
    offset = fields.Int()
    items = fields.List(fields.Nested(ReviewItemSchema))


class ReviewNoteArgs(Schema):
    note = fields.Str(load_default="", validate=[validate.Length(max=500), NO_NUL])


class ReviewLinkArgs(ReviewNoteArgs):
    case_id = fields.Int(required=True, validate=DB_ID, metadata={"description": "the case the ticket belongs to"})


class CaseOperationSchema(Schema):
    id = fields.Int()
    kind = fields.Str(metadata={"description": "merge / split / link / review_accept / review_link / undo"})
    case_id = fields.Int()
    actor = fields.Str()
    at = fields.AwareDateTime()
    reason = fields.Str()
    detail = fields.Dict(metadata={"description": "moves [{ticket_id, from_case, to_case}] and the case "
                                                  "statuses, merged_into and closed_at before"})
    undone_at = fields.AwareDateTime(allow_none=True)
    undone_by = fields.Str()
    undo_of = fields.Int(allow_none=True)


class ReviewDecisionSchema(Schema):
    review = fields.Nested(ReviewItemSchema)
    operation = fields.Nested(CaseOperationSchema, allow_none=True,
                              metadata={"description": "the undoable move (none for a rejection)"})


class MergeArgs(Schema):
    into_case_id = fields.Int(required=True, validate=DB_ID)
    reason = fields.Str(required=True, validate=[validate.Length(min=1, max=500), NO_NUL])


class RouteArgs(Schema):
    system_key = fields.Str(required=True, validate=[validate.Length(min=1, max=64), NO_NUL],
                            metadata={"description": "the department system that is to handle the case"})
    reason = fields.Str(load_default="", validate=[validate.Length(max=500), NO_NUL])


class RoutedSchema(Schema):
    case_id = fields.Int()
    owner_system = fields.Str()
    message_id = fields.Int(allow_none=True, metadata={"description": "the create effect (null: a record "
                                                                      "in that system was linked already)"})
    external_no = fields.Str(metadata={"description": "the number the record is filed under there"})
    source = fields.Str()


class VerifyArgs(Schema):
    result = fields.Str(required=True, validate=validate.OneOf(["pass", "fail"]))
    text = fields.Str(required=True, validate=[validate.Length(min=2, max=500), NO_NUL],
                      metadata={"description": "what the grid worker found on site"})


class VerifiedSchema(Schema):
    case_id = fields.Int()
    status = fields.Str()
    planned = fields.Int(metadata={"description": "outbound effects planned"})


class SplitArgs(Schema):
    reason = fields.Str(required=True, validate=[validate.Length(min=1, max=500), NO_NUL])
    case_id = fields.Int(validate=DB_ID, metadata={"description": "link to this case instead of opening a new one"})


class UndoArgs(Schema):
    reason = fields.Str(load_default="", validate=[validate.Length(max=500), NO_NUL])


class TicketExplanationSchema(TicketBriefSchema):
    decisions = fields.List(fields.Nested(MatchRecordSchema), metadata={"description": "newest first"})


class MatchExplanationSchema(Schema):
    case = fields.Nested(CaseBriefSchema)
    tickets = fields.List(fields.Nested(TicketExplanationSchema))
    operations = fields.List(fields.Nested(CaseOperationSchema))


# --- outbound: delivery state, dead letters and replay (hub/api/outbound.py) -------------------

OUTBOUND_STATUS_CHOICES = ["pending", "sent", "failed", "dead"]


class OutboundArgs(PageArgs):
    status = fields.Str(validate=validate.OneOf(OUTBOUND_STATUS_CHOICES),
                        metadata={"description": "``dead``: the dead-letter queue"})
    system = text(64)


class OutboundMessageSchema(Schema):
    id = fields.Int()
    case_id = fields.Int(allow_none=True)
    system = fields.Str(attribute="system_key")
    operation = fields.Str()
    idempotency_key = fields.Str()
    status = fields.Str(metadata={"description": "pending / sent / failed (retry scheduled) / dead"})
    attempts = fields.Int()
    error_kind = fields.Str(metadata={"description": "transient / permanent / mapping (empty once sent)"})
    last_error = fields.Str(metadata={"description": "the last failure's reason, credentials masked"})
    next_attempt_at = fields.AwareDateTime()
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)
    payload = fields.Dict(metadata={"description": "the effect as the hub asked for it, phone numbers masked"})


class OutboundPageSchema(Schema):
    total = fields.Int()
    page = fields.Int()
    page_size = fields.Int()
    items = fields.List(fields.Nested(OutboundMessageSchema))


class OutboundReplayArgs(Schema):
    ids = fields.List(fields.Int(validate=DB_ID), validate=validate.Length(max=1000),
                      metadata={"description": "dead messages to replay; omitted: every dead message (of system)"})
    system = text(64)


class OutboundReplayResultSchema(Schema):
    replayed = fields.Int(metadata={"description": "how many dead messages are pending again"})


class AuditListArgs(PageArgs):
    target_type = text(64)
    actor = text(100)


class AuditEntrySchema(Schema):
    id = fields.Int()
    at = fields.Str()
    actor = fields.Str()
    action = fields.Str()
    target_type = fields.Str()
    target_id = fields.Str()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    remote_addr = fields.Str()


class AuditPageSchema(Schema):
    total = fields.Int()
    page = fields.Int()
    page_size = fields.Int()
    items = fields.List(fields.Nested(AuditEntrySchema))


# ---------------------------------------------------------------- grid reports (hub/api/reports.py)


# mainland China with a margin, as hub.services.reports checks: a point outside is a wrong datum
CHINA_LAT = validate.Range(*reports.CHINA_LAT)
CHINA_LNG = validate.Range(*reports.CHINA_LNG)


class PhotoIn(Schema):
    """A photo sent inline: base64 bytes. The bytes decide the type (JPEG, PNG or WebP)."""

    data = fields.Str(required=True, metadata={"description": "base64 of the image, at most 5 MB decoded",
                                               "format": "byte"})
    mime = fields.Str(load_default="", validate=validate.Length(max=64))
    filename = fields.Str(load_default="", validate=[validate.Length(max=200), NO_NUL])


class ReportArgs(Schema):
    client_id = fields.Str(required=True, validate=[validate.Length(min=1, max=64), NO_NUL],
                           metadata={"description": "made by the client per draft; a repeat returns the first result"})
    category = fields.Str(required=True, validate=[validate.Length(min=1, max=64), NO_NUL])
    text = fields.Str(required=True, validate=[validate.Length(min=1, max=500), NO_NUL])
    lat = fields.Float(required=True, allow_nan=False, validate=CHINA_LAT, metadata={"description": "WGS-84"})
    lng = fields.Float(required=True, allow_nan=False, validate=CHINA_LNG, metadata={"description": "WGS-84"})
    location_source = fields.Str(load_default="gps", validate=validate.OneOf(["gps", "map"]))
    photos = fields.List(fields.Nested(PhotoIn), load_default=list, validate=validate.Length(max=4))
    attach_to = fields.Str(load_default="", validate=[validate.Length(max=32), NO_NUL],
                           metadata={"description": "a case number: add this report to that open case"})


class ReportOutSchema(Schema):
    report = fields.Dict()
    outcome = fields.Str(metadata={"description": "new_case | attached | linked | quarantined | pending"})
    ticket_id = fields.Int(allow_none=True)
    case_id = fields.Int(allow_none=True)
    case_number = fields.Str()
    inbound_id = fields.Int(allow_none=True)
    reason = fields.Str()


class NearbyArgs(Schema):
    lat = fields.Float(required=True, allow_nan=False, validate=CHINA_LAT, metadata={"description": "WGS-84"})
    lng = fields.Float(required=True, allow_nan=False, validate=CHINA_LNG, metadata={"description": "WGS-84"})
    category = fields.Str(required=True, validate=[validate.Length(min=1, max=64), NO_NUL])


class NearbyCaseSchema(Schema):
    id = fields.Int()
    number = fields.Str()
    title = fields.Str()
    category = fields.Str()
    status = fields.Str()
    grid_code = fields.Str()
    distance_m = fields.Float()


class NearbySchema(Schema):
    items = fields.List(fields.Nested(NearbyCaseSchema))


class VerificationSchema(Schema):
    id = fields.Int()
    number = fields.Str()
    title = fields.Str()
    category = fields.Str()
    grid_code = fields.Str()
    address = fields.Str()
    lat = fields.Float(allow_none=True)
    lng = fields.Float(allow_none=True)
    updated_at = fields.DateTime()
    asked_by = fields.List(fields.Str(), metadata={"description": "systems waiting for the verdict "
                                                                  "(数字城管 at 05 处置完成待核查)"})
    status_codes = fields.Dict(keys=fields.Str(), values=fields.Str())


class VerificationListSchema(Schema):
    items = fields.List(fields.Nested(VerificationSchema))


class VerifyPhotosArgs(VerifyArgs):
    photos = fields.List(fields.Nested(PhotoIn), load_default=list, validate=validate.Length(max=4),
                         metadata={"description": "on-site photos, kept as the case's verify attachments"})


class VerifiedPhotosSchema(VerifiedSchema):
    attachments = fields.List(fields.Int())
