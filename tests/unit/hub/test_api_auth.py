"""The API is authenticated and role-checked server-side; errors are JSON."""

from __future__ import annotations

from typing import Any

import pytest

from hub.context import HubContext
from tests.conftest import make_token

PROTECTED = ["/api/v1/cases", "/api/v1/systems", "/api/v1/plugins", "/api/v1/inbound-events",
             "/api/v1/cases/1", "/api/v1/tickets/hotline12345/GD1"]


@pytest.mark.parametrize("path", PROTECTED)
def test_no_token_is_401_json(client: Any, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 401
    assert resp.is_json and resp.json["code"] == 401 and "token" in resp.json["message"]


def test_wrong_and_revoked_token_are_401(client: Any, hub_ctx: HubContext) -> None:
    from sqlalchemy import update

    from hub.models import ApiToken

    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer gh_nope"}).status_code == 401
    token = make_token(hub_ctx, "operator")
    ok = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    with hub_ctx.db.session() as s:
        s.execute(update(ApiToken).values(revoked=True))
    assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_role_checks_are_403(client: Any, hub_ctx: HubContext) -> None:
    headers = {"Authorization": f"Bearer {make_token(hub_ctx, 'grid_worker')}"}
    assert client.get("/api/v1/cases", headers=headers).status_code == 200
    resp = client.get("/api/v1/inbound-events", headers=headers)
    assert resp.status_code == 403 and resp.is_json and "grid_worker" in resp.json["message"]
    resp = client.post("/api/v1/inbound-events/replay", json={}, headers=headers)
    assert resp.status_code == 403


def test_only_hash_of_token_is_stored(hub_ctx: HubContext) -> None:
    from sqlalchemy import select

    from hub.models import ApiToken

    token = make_token(hub_ctx)
    with hub_ctx.db.read_session() as s:
        stored = s.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_openapi_document_and_offline_docs(client: Any) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/tickets/{system}/{external_id}",
                 "/api/v1/systems", "/api/v1/inbound-events", "/api/v1/inbound-events/replay"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "401" in spec["paths"]["/api/v1/cases"]["get"]["responses"]
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in page and "cdn" not in page.lower()
    asset = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
