"""Grid workers' reports end to end: a real hub against the simulators. A report is a record of the
hub's own ``grid`` system: it opens a case, a second report joins it (by the worker's choice or by
de-duplication), the case is routed to 数字城管 as a source-07 case, handled there up to 05, and the
grid worker's on-site verification (with a photo) is delivered as VERIFY.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.models import Case, CaseEvent, OutboundStatus, Ticket
from hub.models.work import Attachment
from tests.conftest import make_token
from tests.integration.test_sync_flows import (
    DCM,
    LAW,
    SteppedClock,
    case_of,
    dcm_case,
    dcm_handles,
    law_case,
    law_handles,
    route,
    sent,
    settle,
)
from tests.support.console import make_user

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\1" * 64
SPOT = (31.18830, 121.43660)  # WGS-84, 斜土路, inside the sandbox district


@pytest.fixture
def world(hub_ctx: HubContext, connected: Any) -> Iterator[Any]:
    connected.sim(DCM).close_after_s = 0
    connected.sim(DCM).clock = connected.sim(LAW).clock = SteppedClock()
    yield connected


def _worker(ctx: HubContext, name: str = "wangwu") -> tuple[dict[str, str], str]:
    """A grid worker of the street holding SPOT, and a token that reports as them."""
    grid = ctx.grids().locate(SPOT[1], SPOT[0])
    assert grid, "SPOT must lie in the sandbox grid layer"
    make_user(ctx, name, "grid_worker", grid[:9])
    return {"Authorization": f"Bearer {make_token(ctx, 'grid_worker', grid[:9], name=name)}"}, grid


def _report(client: Any, headers: dict[str, str], **kw: Any) -> Any:
    body = {"client_id": "draft-1", "category": "garbage_exposed", "text": "斜土路人行道上堆着几袋生活垃圾",
            "lat": SPOT[0], "lng": SPOT[1], "location_source": "gps", "photos": []}
    body.update(kw)
    return client.post("/api/v1/reports", headers=headers, json=body)


def test_a_report_opens_a_case_and_a_second_one_attaches_with_its_photo(hub_ctx: HubContext, world: Any,
                                                                        client: Any) -> None:
    headers, _ = _worker(hub_ctx)
    first = _report(client, headers, photos=[{"data": base64.b64encode(PNG).decode(), "mime": "image/png"}])
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    assert body["outcome"] == "new_case" and body["case_number"].startswith("GH")
    assert _report(client, headers).get_json() == body  # the resubmitted draft: the same answer
    assert _report(client, headers).status_code == 200

    nearby = client.get(f"/api/v1/reports/nearby?lat={SPOT[0] + 0.0002}&lng={SPOT[1]}&category=construction_waste",
                        headers=headers).get_json()["items"]
    assert [c["number"] for c in nearby] == [body["case_number"]] and 15 < nearby[0]["distance_m"] < 30

    second = _report(client, headers, client_id="draft-2", category="construction_waste", text="同一处，还有渣土",
                     lat=SPOT[0] + 0.0002, attach_to=body["case_number"],
                     photos=[{"data": base64.b64encode(JPEG).decode(), "mime": "image/jpeg"}])
    assert second.status_code == 201, second.get_data(as_text=True)
    attached = second.get_json()
    assert attached["outcome"] == "attached" and attached["case_id"] == body["case_id"]
    with hub_ctx.db.read_session() as s:
        photos = s.scalars(select(Attachment).where(Attachment.case_id == body["case_id"])
                           .order_by(Attachment.id)).all()
        assert [p.mime for p in photos] == ["image/png", "image/jpeg"]
        tickets = s.scalars(select(Ticket).where(Ticket.case_id == body["case_id"])).all()
        assert {t.system_key for t in tickets} == {"grid"} and len(tickets) == 2
    photo_id = attached["report"]["attachments"][0]
    got = client.get(f"/api/v1/attachments/{photo_id}", headers=headers)
    assert got.status_code == 200 and got.data == JPEG and got.mimetype == "image/jpeg"
    elsewhere = {"Authorization": f"Bearer {make_token(hub_ctx, 'grid_worker', '310104004')}"}
    assert client.get(f"/api/v1/attachments/{photo_id}", headers=elsewhere).status_code == 404


def test_a_nearby_report_without_attach_to_meets_the_dedup_matcher(hub_ctx: HubContext, world: Any,
                                                                   client: Any) -> None:
    headers, _ = _worker(hub_ctx)
    first = _report(client, headers).get_json()
    second = _report(client, headers, client_id="draft-2", text="斜土路人行道上堆着几袋生活垃圾，没人清运",
                     lat=SPOT[0] + 0.0001).get_json()
    with hub_ctx.db.read_session() as s:
        events = [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == second["case_id"]))]
    # de-duplication decides, not the worker: either linked into the first case or a new case that
    # names it as a candidate for a person to review
    if second["outcome"] == "linked":
        assert second["case_id"] == first["case_id"]
    else:
        assert second["outcome"] == "new_case" and "match_review" in events, (second, events)


def test_a_report_routed_to_dcm_is_verified_with_a_photo(hub_ctx: HubContext, world: Any, client: Any) -> None:
    headers, _ = _worker(hub_ctx)
    body = _report(client, headers, category="street_vending", text="斜土路口流动摊贩占道经营").get_json()
    case_id = body["case_id"]
    routed = route(hub_ctx, case_id, DCM, "属城管职责")
    assert (routed.source, routed.external_no) == ("07", body["case_number"])
    settle(hub_ctx, world)
    created = dcm_case(world, body["case_number"])
    assert created["source"] == "07"
    dcm_handles(world, created["caseId"], "02", "03", "04", "05")
    settle(hub_ctx, world)

    waiting = client.get("/api/v1/verifications", headers=headers).get_json()["items"]
    assert [(w["id"], w["asked_by"]) for w in waiting] == [(case_id, [DCM])]
    assert waiting[0]["status_codes"][DCM] == "05"
    elsewhere = {"Authorization": f"Bearer {make_token(hub_ctx, 'grid_worker', '310104004')}"}
    assert client.get("/api/v1/verifications", headers=elsewhere).get_json()["items"] == []

    bad = client.post(f"/api/v1/cases/{case_id}/verify", headers=headers,
                      json={"result": "pass", "text": "摊贩已撤离", "photos": [{"data": base64.b64encode(b"GIF89a")
                                                                                 .decode()}]})
    assert bad.status_code == 400
    answer = client.post(f"/api/v1/cases/{case_id}/verify", headers=headers,
                         json={"result": "pass", "text": "网格员现场核查：摊贩已撤离",
                               "photos": [{"data": base64.b64encode(JPEG).decode(), "mime": "image/jpeg"}]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == "VERIFIED" and len(answer.get_json()["attachments"]) == 1
    settle(hub_ctx, world)
    assert world.sim(DCM).get_case(created["caseId"])["verifyResult"] == "PASS"
    assert (DCM, "status", "VERIFY", OutboundStatus.SENT) in sent(hub_ctx, case_id)
    with hub_ctx.db.read_session() as s:
        photo = s.get(Attachment, answer.get_json()["attachments"][0])
        assert photo is not None and photo.purpose == "verify" and photo.case_id == case_id
        case = s.get(Case, case_id)
        assert case is not None and case.status in ("VERIFIED", "CLOSED")


def test_a_token_that_is_no_console_user_cannot_report(hub_ctx: HubContext, world: Any, client: Any) -> None:
    headers = {"Authorization": f"Bearer {make_token(hub_ctx, 'grid_worker', '310104', name='gateway')}"}
    answer = _report(client, headers)
    assert answer.status_code == 403 and "console user" in answer.get_json()["message"]
    auditor = {"Authorization": f"Bearer {make_token(hub_ctx, 'auditor')}"}
    assert _report(client, auditor).status_code == 403
    headers, _ = _worker(hub_ctx)
    far = _report(client, headers, lat=31.30, lng=121.50)  # Shanghai, but not this worker's street
    assert far.status_code == 403


def test_a_report_of_illegal_construction_ends_in_law_enforcement_not_dcm(hub_ctx: HubContext, world: Any,
                                                                          client: Any) -> None:
    """The task list sends 违法建设 to 综合执法 (TransferClue, Source 网格), never to 数字城管."""
    headers, _ = _worker(hub_ctx)
    answer = _report(client, headers, category="illegal_construction", text="斜土路小区楼顶在搭彩钢板房，已施工两天")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    body = answer.get_json()
    settle(hub_ctx, world)
    clue = law_case(world, body["case_number"])
    assert clue["Source"] == "网格"
    assert not [c for c in world.sim(DCM).state()["cases"] if c["externalNo"] == body["case_number"]]
    assert case_of(hub_ctx, LAW, clue["ClueNo"]).id == body["case_id"]
    assert sent(hub_ctx, body["case_id"]) == [(LAW, "create", "", OutboundStatus.SENT)]  # TransferClue
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, body["case_id"])
        assert case is not None and case.owner_system == LAW and case.handling_mode == "department"
        assert case.level == "street" and case.due_at is not None
        assert not any(e.kind == "routed" and (e.detail or {}).get("to_owner") == DCM
                       for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)))
    law_handles(world, clue["ClueNo"], "HC", "LA", "DCQZ", "SC", "CFJD", "ZX", "JA", result="已责令拆除，现场恢复原状")
    settle(hub_ctx, world)
    assert case_of(hub_ctx, LAW, clue["ClueNo"]).status == "CLOSED"


def test_a_report_on_the_eve_of_national_day_is_due_after_the_holiday_and_escalates_when_late(
        hub_ctx: HubContext, world: Any, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """群租 is the community's to handle (on site in 1 working day, done in 7). Reported at 17:00 on
    30 September 2025, the clock skips 1–8 October and counts Saturday 11 October (调休)."""
    from hub.services import escalation, reports

    eve = datetime(2025, 9, 30, 9, tzinfo=UTC)  # 17:00 in Shanghai
    monkeypatch.setattr(reports, "utcnow", lambda: eve)
    headers, _ = _worker(hub_ctx)
    body = _report(client, headers, category="group_rental", text="斜土路某小区六楼隔成十间出租").get_json()
    assert body["outcome"] == "new_case", body
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, body["case_id"])
        assert case is not None and (case.handling_mode, case.level) == ("grid", "community")
        assert case.onsite_due_at == datetime(2025, 10, 9, 9, tzinfo=UTC)  # Thu 9 Oct 17:00, the first working day
        assert case.due_at == datetime(2025, 10, 16, 9, tzinfo=UTC)  # 9, 10, 11 (Sat), 13, 14, 15, 16 October
    assert escalation.sweep(hub_ctx, now=datetime(2025, 10, 16, 8, tzinfo=UTC)).escalated == 0
    assert escalation.sweep(hub_ctx, now=datetime(2025, 10, 16, 10, tzinfo=UTC)).escalated == 1
    with hub_ctx.db.read_session() as s:
        case = s.get(Case, body["case_id"])
        assert case is not None and case.level == "street" and case.escalations == 1
        assert case.due_at is not None and case.due_at > datetime(2025, 10, 16, 10, tzinfo=UTC)
        assert "escalated" in [e.kind for e in s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))]
