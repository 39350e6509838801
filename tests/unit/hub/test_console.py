"""The console's first slice: token sign-in with CSRF, case list and page, jurisdiction."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from hub.app import create_app
from hub.context import HubContext
from hub.models import Ticket
from tests.conftest import make_token
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest


def _sign_in(client: Any, token: str) -> Any:
    page = client.get("/console/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    return client.post("/console/login", data={"token": token, "csrf": csrf.group(1)})


def test_sign_in_needs_csrf_and_a_valid_token(fake_ctx: HubContext) -> None:
    client = create_app(context=fake_ctx).test_client()
    assert client.get("/console/").status_code == 302
    assert client.post("/console/login", data={"token": make_token(fake_ctx)}).status_code == 400
    assert "令牌无效" in _sign_in(client, "gh_wrong").get_data(as_text=True)
    assert _sign_in(client, make_token(fake_ctx)).status_code == 302
    ingest(fake_ctx, record("C1"))
    page = client.get("/console/").get_data(as_text=True)
    assert "流动摊贩占道经营" in page and "fake" in page


def test_jurisdiction_is_enforced_by_url(fake_ctx: HubContext) -> None:
    ingest(fake_ctx, record("IN", grid="310104001001001"), record("OUT", grid="310104002001001"))
    with fake_ctx.db.read_session() as s:
        cases = {t.external_id: t.case_id for t in s.scalars(select(Ticket))}
    client = create_app(context=fake_ctx).test_client()
    _sign_in(client, make_token(fake_ctx, "operator", scope="310104001"))
    assert client.get(f"/console/cases/{cases['IN']}").status_code == 200
    assert client.get(f"/console/cases/{cases['OUT']}").status_code == 404
    listing = client.get("/console/").get_data(as_text=True)
    assert "标题IN" in listing and "标题OUT" not in listing
    assert client.get("/console/quarantine").status_code == 403
    api = create_app(context=fake_ctx).test_client()
    headers = {"Authorization": f"Bearer {make_token(fake_ctx, 'operator', scope='310104001')}"}
    assert api.get(f"/api/v1/cases/{cases['OUT']}", headers=headers).status_code == 404
    assert api.get("/api/v1/cases", headers=headers).json["total"] == 1
