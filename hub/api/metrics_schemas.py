"""marshmallow schemas of the metrics API (``hub.api.metrics``)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub.services.metrics import BY


class MetricsArgs(Schema):
    first = fields.Date(data_key="from", load_default=None,
                        metadata={"description": "first filing day, Asia/Shanghai (default: 29 days before `to`); "
                                                 "ends the wrong way round are swapped, dates outside "
                                                 "1970–2199 clamped"})
    last = fields.Date(data_key="to", load_default=None,
                       metadata={"description": "last filing day, inclusive (default: today)"})
    by = fields.Str(load_default="category", validate=validate.OneOf(BY),
                    metadata={"description": "one row per " + " | ".join(BY)})


class PeriodArgs(Schema):
    first = fields.Date(data_key="from", load_default=None)
    last = fields.Date(data_key="to", load_default=None)


class FiguresSchema(Schema):
    filed = fields.Int(metadata={"description": "cases filed in the period (merged-away ones are not cases)"})
    closed = fields.Int(metadata={"description": "of those, closed now (已处置 or 已结案)"})
    closure_rate = fields.Float(allow_none=True, metadata={"description": "closed / filed"})
    closed_with_deadline = fields.Int()
    on_time = fields.Int(metadata={"description": "closed no later than the hub's handling deadline"})
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "on_time / closed_with_deadline"})
    avg_handling_s = fields.Float(allow_none=True, metadata={"description": "working seconds, report to closure"})
    p90_handling_s = fields.Float(allow_none=True, metadata={"description": "90th percentile, from fixed buckets"})
    entries_saved = fields.Int(metadata={"description": "tickets linked beyond each case's first: reports "
                                                        "nobody typed in again"})


class MetricsRowSchema(FiguresSchema):
    key = fields.Str(metadata={"description": "the value of `by` (category code, department, grid code, street "
                                              "code, day / week's Monday as YYYY-MM-DD, month as YYYY-MM)"})
    label = fields.Str()


class MetricsSchema(Schema):
    first = fields.Date(data_key="from")
    last = fields.Date(data_key="to")
    by = fields.Str()
    live = fields.Bool(metadata={"description": "computed from the cases (a jurisdiction finer than a street)"})
    refreshed_at = fields.DateTime(allow_none=True, metadata={"description": "the rollup's last refresh"})
    totals = fields.Nested(FiguresSchema)
    rows = fields.List(fields.Nested(MetricsRowSchema))


class ReasonSchema(Schema):
    reason = fields.Str()
    count = fields.Int()


class DepartmentReturnsSchema(Schema):
    department = fields.Str()
    returns = fields.Int()
    reasons = fields.List(fields.Nested(ReasonSchema))


class ReturnsSchema(Schema):
    first = fields.Date(data_key="from")
    last = fields.Date(data_key="to")
    items = fields.List(fields.Nested(DepartmentReturnsSchema))


class MixShareSchema(Schema):
    category = fields.Str()
    label = fields.Str()
    mine = fields.Float(metadata={"description": "share of the worker's reports"})
    grid = fields.Float(metadata={"description": "share of all cases filed in the worker's grids"})


class WorkerMixSchema(Schema):
    reporter_id = fields.Int()
    name = fields.Str()
    reports = fields.Int()
    grids = fields.List(fields.Str())
    distance = fields.Float(metadata={"description": "total variation distance between the worker's category mix "
                                                     "and the grids' (0 = same mix, 1 = nothing in common)"})
    top = fields.List(fields.Nested(MixShareSchema))


class WorkerMixListSchema(Schema):
    first = fields.Date(data_key="from")
    last = fields.Date(data_key="to")
    items = fields.List(fields.Nested(WorkerMixSchema))
