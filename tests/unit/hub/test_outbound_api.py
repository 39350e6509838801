"""The outbound API: the dead-letter queue with reasons, replay by admins only."""

from __future__ import annotations

from typing import Any

import pytest

from hub.context import HubContext
from hub.services import outbox
from tests.conftest import make_token
from tests.unit.hub.test_outbox import T0, case_of, fake_connector, put, row


def _auth(ctx: HubContext, role: str = "admin", scope: str = "") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(ctx, role, scope, name=f'{role}-1')}"}


@pytest.fixture
def dead(fake_ctx: HubContext) -> list[int]:
    """Three messages: the first two dead (permanent refusal), the third sent."""
    case_id = case_of(fake_ctx, "A1")
    ids = [put(fake_ctx, "k1", case_id, status="DONE", phone="13812345678"), put(fake_ctx, "k2"),
           put(fake_ctx, "k3")]
    conn = fake_connector(fake_ctx)
    conn.fail_permanent("refused: INVALID_STATE")
    conn.fail_permanent("refused: INVALID_STATE")
    outbox.deliver_due(fake_ctx, now=T0)
    return ids


def test_every_outbound_route_needs_a_token(fake_client: Any) -> None:
    assert fake_client.get("/api/v1/outbound").status_code == 401
    assert fake_client.post("/api/v1/outbound/replay", json={}).status_code == 401


@pytest.mark.parametrize("role,status", [("admin", 200), ("operator", 200), ("auditor", 200),
                                         ("department", 403), ("grid_worker", 403)])
def test_who_may_list(fake_ctx: HubContext, fake_client: Any, dead: list[int], role: str, status: int) -> None:
    resp = fake_client.get("/api/v1/outbound", headers=_auth(fake_ctx, role))
    assert resp.status_code == status and resp.is_json


def test_the_dead_letter_queue_shows_reasons_and_masks_phones(fake_ctx: HubContext, fake_client: Any,
                                                             dead: list[int]) -> None:
    resp = fake_client.get("/api/v1/outbound?status=dead&system=fake&page=1&page_size=1",
                           headers=_auth(fake_ctx, "auditor"))
    assert resp.status_code == 200
    body = resp.json
    assert (body["total"], body["page"], body["page_size"], len(body["items"])) == (2, 1, 1, 1)
    item = body["items"][0]
    assert (item["id"], item["system"], item["status"], item["error_kind"], item["last_error"], item["attempts"]) == (
        dead[1], "fake", "dead", "permanent", "refused: INVALID_STATE", 1)
    page2 = fake_client.get("/api/v1/outbound?status=dead&page=2&page_size=1", headers=_auth(fake_ctx)).json
    first = page2["items"][0]
    assert first["id"] == dead[0] and first["payload"] == {"status": "DONE", "phone": "***"}
    assert first["case_id"] is not None and first["sent_at"] is None
    assert fake_client.get("/api/v1/outbound?status=sent", headers=_auth(fake_ctx)).json["total"] == 1
    assert fake_client.get("/api/v1/outbound?status=bogus", headers=_auth(fake_ctx)).status_code == 422
    # a token scoped to another district sees none of this case's messages
    scoped = fake_client.get("/api/v1/outbound", headers=_auth(fake_ctx, "operator", scope="9999")).json
    assert scoped["total"] == 0


@pytest.mark.parametrize("role", ["operator", "auditor", "department", "grid_worker"])
def test_only_admins_replay(fake_ctx: HubContext, fake_client: Any, dead: list[int], role: str) -> None:
    resp = fake_client.post("/api/v1/outbound/replay", json={"ids": dead}, headers=_auth(fake_ctx, role))
    assert resp.status_code == 403
    assert row(fake_ctx, dead[0]).status == "dead"


def test_replay_one_then_the_rest_and_they_are_delivered(fake_ctx: HubContext, fake_client: Any,
                                                         dead: list[int]) -> None:
    headers = _auth(fake_ctx)
    resp = fake_client.post("/api/v1/outbound/replay", json={"ids": [dead[0], dead[2]]}, headers=headers)
    assert resp.status_code == 200 and resp.json == {"replayed": 1}
    assert row(fake_ctx, dead[0]).status == "pending"
    assert fake_client.post("/api/v1/outbound/replay", json={"system": "fake"}, headers=headers).json == {
        "replayed": 1}
    assert fake_client.post("/api/v1/outbound/replay", json={}, headers=headers).json == {"replayed": 0}
    assert fake_client.post("/api/v1/outbound/replay", json={"ids": [0]}, headers=headers).status_code == 422
    assert outbox.deliver_due(fake_ctx)["sent"] == 2
    assert fake_client.get("/api/v1/outbound?status=dead", headers=headers).json["total"] == 0
