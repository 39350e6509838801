"""The dedup API (hub/api/dedup.py): match explanations, review queue, merge / split / undo —
authenticated, role-checked, jurisdiction-scoped, and documented in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.app import create_app
from hub.context import HubContext
from hub.models import AuditEntry, Case, CaseEvent, Ticket
from tests.conftest import make_token
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest
from tests.unit.hub.test_dedup_ops import _case_of, _propose, _state, _two_cases

OUTSIDE = "320500000000"  # a grid outside the scoped operator's 310104
ROUTES = [
    ("get", "/api/v1/cases/{a}/match-explanations"),
    ("get", "/api/v1/cases/{a}/operations"),
    ("post", "/api/v1/cases/{a}/merge"),
    ("post", "/api/v1/tickets/fake/A2/split"),
    ("post", "/api/v1/case-operations/1/undo"),
    ("get", "/api/v1/review-queue"),
    ("get", "/api/v1/review-queue/1"),
    ("post", "/api/v1/review-queue/1/accept"),
    ("post", "/api/v1/review-queue/1/reject"),
    ("post", "/api/v1/review-queue/1/link"),
]
WRITES_AND_QUEUE = [r for r in ROUTES if r[0] == "post" or "review-queue" in r[1]]


def _auth(ctx: HubContext, role: str = "operator", scope: str = "", name: str = "张三") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(ctx, role, scope, name)}"}


@pytest.fixture
def api(fake_ctx: HubContext) -> Any:
    return create_app(context=fake_ctx).test_client()


def _call(api: Any, method: str, path: str, headers: dict[str, str] | None = None,
          body: dict[str, Any] | None = None) -> Any:
    return getattr(api, method)(path, headers=headers or {}, json=body if method == "post" else None)


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_token(api: Any, method: str, path: str) -> None:
    resp = _call(api, method, path.format(a=1), body={})
    assert resp.status_code == 401 and resp.is_json and "token" in resp.json["message"]


@pytest.mark.parametrize("role", ["auditor", "department", "grid_worker"])
def test_readers_see_explanations_but_only_operators_change_cases(fake_ctx: HubContext, api: Any,
                                                                  role: str) -> None:
    a, b = _two_cases(fake_ctx)
    headers = _auth(fake_ctx, role)
    bodies = {"merge": {"into_case_id": b, "reason": "r"}, "split": {"reason": "r"}, "link": {"case_id": b}}
    for method, path in WRITES_AND_QUEUE:
        body = next((v for k, v in bodies.items() if path.endswith(k)), {})
        resp = _call(api, method, path.format(a=a), headers, body)
        assert resp.status_code == 403 and role in resp.json["message"], (path, resp.status_code)
    assert _state(fake_ctx)[1] == {"A1": a, "A2": a, "B1": b}
    assert api.get(f"/api/v1/cases/{a}/match-explanations", headers=headers).status_code == 200
    assert api.get(f"/api/v1/cases/{a}/operations", headers=headers).json == []


def test_merge_then_undo_through_the_api(fake_ctx: HubContext, api: Any) -> None:
    a, b = _two_cases(fake_ctx)
    before = _state(fake_ctx)
    headers = _auth(fake_ctx, "operator", name="张三")
    resp = api.post(f"/api/v1/cases/{a}/merge", json={"into_case_id": b, "reason": "同一摊位"}, headers=headers)
    assert resp.status_code == 200, resp.json
    op = resp.json
    assert (op["kind"], op["actor"], op["case_id"], op["detail"]["into_case"]) == ("merge", "张三", a, b)
    detail = api.get(f"/api/v1/cases/{a}", headers=headers).json
    assert detail["status"] == "CANCELLED" and detail["ticket_count"] == 0
    assert api.get(f"/api/v1/cases/{b}", headers=headers).json["ticket_count"] == 3
    assert [o["id"] for o in api.get(f"/api/v1/cases/{b}/operations", headers=headers).json] == [op["id"]]

    again = api.post(f"/api/v1/cases/{a}/merge", json={"into_case_id": b, "reason": "r"}, headers=headers)
    assert again.status_code == 409 and "merged into" in again.json["message"]
    assert api.post(f"/api/v1/cases/{b}/merge", json={"into_case_id": b, "reason": "r"},
                    headers=headers).status_code == 409
    assert api.post("/api/v1/cases/999999/merge", json={"into_case_id": b, "reason": "r"},
                    headers=headers).status_code == 404
    assert api.post(f"/api/v1/cases/{a}/merge", json={"into_case_id": b}, headers=headers).status_code == 422
    assert api.post(f"/api/v1/cases/{a}/merge", json={"into_case_id": 0, "reason": "r"},
                    headers=headers).status_code == 422

    undo = api.post(f"/api/v1/case-operations/{op['id']}/undo", headers=_auth(fake_ctx, "admin", name="李四"))
    assert undo.status_code == 200 and undo.json["undo_of"] == op["id"] and undo.json["actor"] == "李四"
    assert _state(fake_ctx) == before
    twice = api.post(f"/api/v1/case-operations/{op['id']}/undo", json={"reason": "再撤一次"}, headers=headers)
    assert twice.status_code == 409 and "already undone" in twice.json["message"]
    assert api.post("/api/v1/case-operations/999999/undo", json={}, headers=headers).status_code == 404
    with fake_ctx.db.read_session() as s:
        actors = set(s.scalars(select(CaseEvent.actor).where(CaseEvent.kind.in_(["case_merge", "operation_undone"]))))
        # the audit log has both, written in the operations' own transactions (as the console's)
        lines = [(e.action, e.actor, e.after["operation_id" if e.action == "case.merge" else "undo_id"])
                 for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actors == {"张三", "李四"}
    assert lines == [("case.merge", "张三", op["id"]), ("case_operation.undo", "李四", undo.json["id"])]


def test_split_and_link_elsewhere_through_the_api(fake_ctx: HubContext, api: Any) -> None:
    a, b = _two_cases(fake_ctx)
    headers = _auth(fake_ctx)
    resp = api.post("/api/v1/tickets/fake/A2/split", json={"reason": "两件事"}, headers=headers)
    assert resp.status_code == 200 and resp.json["kind"] == "split"
    new = resp.json["detail"]["created_case"]
    assert _case_of(fake_ctx, "A2") == new
    only = api.post("/api/v1/tickets/fake/B1/split", json={"reason": "r"}, headers=headers)
    assert only.status_code == 409 and "nothing to split" in only.json["message"]
    link = api.post("/api/v1/tickets/fake/A2/split", json={"reason": "其实是 B1", "case_id": b}, headers=headers)
    assert link.status_code == 200 and link.json["kind"] == "link" and _case_of(fake_ctx, "A2") == b
    assert api.post("/api/v1/tickets/fake/NOPE/split", json={"reason": "r"}, headers=headers).status_code == 404
    assert api.post("/api/v1/tickets/fake/A1/split", json={"reason": "r", "case_id": 999999},
                    headers=headers).status_code == 404
    assert api.post("/api/v1/tickets/fake/A1/split", json={}, headers=headers).status_code == 422
    assert api.post("/api/v1/tickets/fake/A1/split", json={"reason": "a\x00b"}, headers=headers).status_code == 422
    # the first split cannot be undone: A2 has moved since
    refused = api.post(f"/api/v1/case-operations/{resp.json['id']}/undo", headers=headers)
    assert refused.status_code == 409 and "moved since" in refused.json["message"]
    assert api.post(f"/api/v1/case-operations/{link.json['id']}/undo", headers=headers).status_code == 200
    assert _case_of(fake_ctx, "A2") == new and a != new


def test_review_queue_through_the_api(fake_ctx: HubContext, api: Any) -> None:
    ingest(fake_ctx, record("M1"), record("N1"), record("P1"), record("Q1"), record("O1"))
    accept_id, reject_id, link_id = (_propose(fake_ctx, x, "M1") for x in ("N1", "P1", "Q1"))
    headers = _auth(fake_ctx)
    page = api.get("/api/v1/review-queue", headers=headers)
    assert page.status_code == 200 and page.json["total"] == 3
    assert [i["id"] for i in page.json["items"]] == [accept_id, reject_id, link_id]
    item = api.get(f"/api/v1/review-queue/{accept_id}", headers=headers).json
    assert item["ticket"]["external_id"] == "N1" and item["candidate_case"]["id"] == _case_of(fake_ctx, "M1")
    assert item["contributions"][0]["feature"] == "distance" and item["review_status"] == "pending"

    accepted = api.post(f"/api/v1/review-queue/{accept_id}/accept", headers=headers)  # no body: no note
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["review"]["review_status"] == "accepted"
    assert accepted.json["operation"]["kind"] == "review_accept"
    assert _case_of(fake_ctx, "N1") == _case_of(fake_ctx, "M1")
    again = api.post(f"/api/v1/review-queue/{accept_id}/reject", json={"note": "x"}, headers=headers)
    assert again.status_code == 409 and "already accepted" in again.json["message"]

    rejected = api.post(f"/api/v1/review-queue/{reject_id}/reject", json={"note": "不同摊位"}, headers=headers)
    assert rejected.status_code == 200 and rejected.json["operation"] is None
    assert rejected.json["review"]["review_note"] == "不同摊位" and rejected.json["review"]["reviewed_by"] == "张三"

    other = _case_of(fake_ctx, "O1")
    assert api.post(f"/api/v1/review-queue/{link_id}/link", json={}, headers=headers).status_code == 422
    linked = api.post(f"/api/v1/review-queue/{link_id}/link", json={"case_id": other, "note": "n"}, headers=headers)
    assert linked.status_code == 200 and linked.json["review"]["review_status"] == "linked_elsewhere"
    assert _case_of(fake_ctx, "Q1") == other

    assert api.get("/api/v1/review-queue", headers=headers).json["total"] == 0
    history = api.get("/api/v1/review-queue?status=rejected", headers=headers).json
    assert [i["id"] for i in history["items"]] == [reject_id]
    assert api.get("/api/v1/review-queue?limit=201", headers=headers).status_code == 422
    assert api.get("/api/v1/review-queue?status=bogus", headers=headers).status_code == 422
    assert api.get("/api/v1/review-queue/999999", headers=headers).status_code == 404
    assert api.post("/api/v1/review-queue/999999/accept", json={}, headers=headers).status_code == 404

    undo = api.post(f"/api/v1/case-operations/{accepted.json['operation']['id']}/undo", headers=headers)
    assert undo.status_code == 200
    assert [i["id"] for i in api.get("/api/v1/review-queue", headers=headers).json["items"]] == [accept_id]
    explained = api.get(f"/api/v1/cases/{_case_of(fake_ctx, 'N1')}/match-explanations", headers=headers).json
    (ticket,) = explained["tickets"]
    assert ticket["external_id"] == "N1" and ticket["decisions"][0]["id"] == accept_id
    assert [o["kind"] for o in explained["operations"]] == ["undo", "review_accept"]


def test_jurisdiction_scopes_every_route(fake_ctx: HubContext, api: Any) -> None:
    ingest(fake_ctx, record("A1"), record("A2"), record("X1", grid=OUTSIDE), record("X2", grid=OUTSIDE))
    a1, a2, x1 = _case_of(fake_ctx, "A1"), _case_of(fake_ctx, "A2"), _case_of(fake_ctx, "X1")
    inside, outside = _propose(fake_ctx, "A2", "A1"), _propose(fake_ctx, "X2", "X1")
    scoped = _auth(fake_ctx, "operator", scope="310104", name="徐汇")
    everywhere = _auth(fake_ctx, "admin", name="管理员")
    merge_out = api.post(f"/api/v1/cases/{a1}/merge", json={"into_case_id": x1, "reason": "r"}, headers=scoped)
    assert merge_out.status_code == 404
    assert api.post(f"/api/v1/cases/{x1}/merge", json={"into_case_id": a1, "reason": "r"},
                    headers=scoped).status_code == 404
    assert api.get(f"/api/v1/cases/{x1}/match-explanations", headers=scoped).status_code == 404
    assert api.get(f"/api/v1/cases/{x1}/operations", headers=scoped).status_code == 404
    assert api.post("/api/v1/tickets/fake/X2/split", json={"reason": "r", "case_id": a1},
                    headers=scoped).status_code == 404
    assert [i["id"] for i in api.get("/api/v1/review-queue", headers=scoped).json["items"]] == [inside]
    assert api.get(f"/api/v1/review-queue/{outside}", headers=scoped).status_code == 404
    assert api.post(f"/api/v1/review-queue/{outside}/accept", json={}, headers=scoped).status_code == 404
    assert api.post(f"/api/v1/review-queue/{inside}/link", json={"case_id": x1}, headers=scoped).status_code == 404
    assert api.get(f"/api/v1/cases/{a1}/match-explanations", headers=scoped).status_code == 200
    # an admin's operation across districts cannot be undone by the scoped operator
    op = api.post(f"/api/v1/cases/{a2}/merge", json={"into_case_id": x1, "reason": "r"}, headers=everywhere).json
    assert api.post(f"/api/v1/case-operations/{op['id']}/undo", headers=scoped).status_code == 404
    assert api.post(f"/api/v1/case-operations/{op['id']}/undo", headers=everywhere).status_code == 200
    with fake_ctx.db.read_session() as s:
        assert s.scalar(select(Ticket.case_id).where(Ticket.external_id == "A2")) == a2
        case = s.get(Case, a2)
        assert case is not None and case.merged_into_id is None


def test_openapi_documents_every_dedup_operation(api: Any) -> None:
    spec = api.get("/api/openapi.json").json
    expected = {
        "/api/v1/cases/{case_id}/match-explanations": ("get", {"200", "401", "403", "404"}),
        "/api/v1/cases/{case_id}/operations": ("get", {"200", "404"}),
        "/api/v1/cases/{case_id}/merge": ("post", {"200", "404", "409", "422"}),
        "/api/v1/tickets/{system_key}/{external_id}/split": ("post", {"200", "404", "409", "422"}),
        "/api/v1/case-operations/{op_id}/undo": ("post", {"200", "404", "409", "422"}),
        "/api/v1/review-queue": ("get", {"200", "422"}),
        "/api/v1/review-queue/{review_id}": ("get", {"200", "404"}),
        "/api/v1/review-queue/{review_id}/accept": ("post", {"200", "404", "409"}),
        "/api/v1/review-queue/{review_id}/reject": ("post", {"200", "404", "409"}),
        "/api/v1/review-queue/{review_id}/link": ("post", {"200", "404", "409", "422"}),
    }
    for path, (method, codes) in expected.items():
        operation = spec["paths"][path][method]
        assert codes <= set(operation["responses"]), (path, sorted(operation["responses"]))
        assert operation["responses"]["200"]["content"]["application/json"]["schema"], path
    body = spec["paths"]["/api/v1/cases/{case_id}/merge"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/MergeArgs")
    assert set(spec["components"]["schemas"]["MergeArgs"]["required"]) == {"into_case_id", "reason"}
