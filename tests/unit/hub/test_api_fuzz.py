"""Fuzz the API from its own OpenAPI document (schemathesis): every operation gets generated
inputs; responses must match the documented schemas and status codes, and never be a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from hub.app import create_app
from hub.context import HubContext
from tests.conftest import make_token
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest


def _operations() -> list[str]:
    return ["GET /api/v1/cases", "GET /api/v1/cases/{case_id}", "GET /api/v1/tickets/{system}/{external_id}",
            "GET /api/v1/systems", "GET /api/v1/systems/{key}", "POST /api/v1/systems/{key}/test-connection",
            "GET /api/v1/cases/{case_id}/match-explanations", "GET /api/v1/cases/{case_id}/operations",
            "POST /api/v1/cases/{case_id}/merge", "POST /api/v1/tickets/{system_key}/{external_id}/split",
            "POST /api/v1/case-operations/{op_id}/undo", "GET /api/v1/review-queue",
            "GET /api/v1/review-queue/{review_id}", "POST /api/v1/review-queue/{review_id}/accept",
            "POST /api/v1/review-queue/{review_id}/reject", "POST /api/v1/review-queue/{review_id}/link",
            "GET /api/v1/plugins", "GET /api/v1/systems/{key}/mappings", "POST /api/v1/systems/{key}/mappings",
            "POST /api/v1/systems/{key}/mappings/{version}/activate", "GET /api/v1/inbound-events",
            "GET /api/v1/inbound-events/{event_id}", "POST /api/v1/inbound-events/{event_id}/replay",
            "POST /api/v1/inbound-events/replay", "GET /api/v1/outbound", "POST /api/v1/outbound/replay",
            "POST /api/v1/cases/{case_id}/route", "POST /api/v1/cases/{case_id}/verify",
            "GET /api/v1/systems/health", "GET /api/v1/systems/{key}/health",
            "POST /api/v1/systems/{key}/circuit/reset", "POST /api/v1/systems/{key}/reconcile",
            "GET /api/v1/audit", "GET /api/v1/task-list", "PUT /api/v1/task-list/{category}",
            "GET /api/v1/calendar", "PUT /api/v1/calendar/days/{day}", "DELETE /api/v1/calendar/days/{day}",
            "POST /api/v1/cases/{case_id}/dispatch", "POST /api/v1/reports", "GET /api/v1/reports/nearby",
            "GET /api/v1/attachments/{attachment_id}", "GET /api/v1/verifications", "GET /api/v1/metrics",
            "GET /api/v1/metrics.csv", "GET /api/v1/metrics/returns", "GET /api/v1/metrics/worker-mix"]


@pytest.mark.parametrize("label", _operations())
def test_api_conforms_to_its_openapi_document(fake_ctx: HubContext, label: str) -> None:
    ingest(fake_ctx, record("Z1"), record("Z2", ref="Z1"), record("Q1", cat="nope"))
    app = create_app(context=fake_ctx)
    headers = {"Authorization": f"Bearer {make_token(fake_ctx)}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = {op.ok().label: op.ok() for op in schema.get_all_operations()}
    assert set(operations) == set(_operations()), "the fuzz list must cover every documented operation"
    operation = operations[label]

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers)

    run()
