"""The grid worker's console pages: report once (with photos, the grid map and the nearby check),
the result page, the 待核查 list with photos, and photos on the case page, all within jurisdiction."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.gridlayer import GridLayer
from hub.models import AuditEntry, Case, User
from hub.models.work import Attachment, GridReport
from tests.support.console import csrf, signed_in
from tests.unit.hub.test_reports import GRID_A, GRID_B, JPEG, PNG, _square

SCOPE = GRID_A[:9]


@pytest.fixture
def ctx(hub_ctx: HubContext) -> HubContext:
    hub_ctx.cache["grid_layer"] = GridLayer.from_geojson(
        {"type": "FeatureCollection", "features": [_square(GRID_A, 121.40, 31.20), _square(GRID_B, 121.41, 31.20)]})
    return hub_ctx


def _form(client: Any, **kw: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"csrf": csrf(client, "/console/report"), "client_id": "d-1", "category": "group_rental",
                            "text": "六楼隔成十间出租", "lat": "31.205", "lng": "121.405", "location_source": "map",
                            "attach_to": ""}
    form.update(kw)
    return form


def test_the_report_page_offers_the_short_list_and_the_workers_own_grids(ctx: HubContext) -> None:
    worker = signed_in(ctx, "grid_worker", SCOPE)
    page = worker.get("/console/report").get_data(as_text=True)
    assert 'id="report-form"' in page and "群租" in page and "违法建设" in page
    assert f'data-grid="{GRID_A}"' in page and GRID_B not in page  # only the worker's jurisdiction is drawn
    assert 'name="client_id"' in page and 'capture="environment"' in page
    assert signed_in(ctx, "auditor").get("/console/report").status_code == 403
    assert signed_in(ctx, "department").get("/console/verify").status_code == 403


def test_a_report_with_a_photo_opens_a_case_and_a_resubmitted_draft_does_not(ctx: HubContext) -> None:
    worker = signed_in(ctx, "grid_worker", SCOPE)
    form = _form(worker, photos=[(io.BytesIO(PNG), "site.png", "image/png")])
    answer = worker.post("/console/report", data=form, content_type="multipart/form-data")
    assert answer.status_code == 302 and "/console/report/done/" in answer.headers["Location"]
    done = worker.get(answer.headers["Location"]).get_data(as_text=True)
    assert "已新建案件" in done and 'id="report-case"' in done
    again = worker.post("/console/report", data=_form(worker), content_type="multipart/form-data",
                        headers={"X-Requested-With": "fetch"})
    assert again.status_code == 200 and again.get_json()["repeat"] is True
    assert again.get_json()["url"] == answer.headers["Location"]
    with ctx.db.read_session() as s:
        report = s.scalar(select(GridReport))
        assert report is not None and report.location_source == "map" and report.grid_code == GRID_A
        assert len(s.scalars(select(GridReport)).all()) == 1
        photo = s.scalar(select(Attachment))
        assert photo is not None and photo.data == PNG and photo.case_id == report.case_id
    other = signed_in(ctx, "grid_worker", SCOPE, username="lisi")  # someone else's result page
    assert other.get(answer.headers["Location"]).status_code == 404


def test_a_refused_report_keeps_what_was_typed_and_says_why(ctx: HubContext) -> None:
    worker = signed_in(ctx, "grid_worker", SCOPE)
    page = worker.post("/console/report", data=_form(worker, category="policy_inquiry", text="保留的文字"),
                       content_type="multipart/form-data")
    body = page.get_data(as_text=True)
    assert page.status_code == 400 and 'id="report-error"' in body and "请选择问题类别" in body
    assert "保留的文字" in body and 'value="d-1"' in body
    fetched = worker.post("/console/report", data=_form(worker, lat=""), content_type="multipart/form-data",
                          headers={"X-Requested-With": "fetch"})
    assert fetched.status_code == 400 and fetched.get_json()["field"] == "lat"
    outside = worker.post("/console/report", data=_form(worker, lng="121.415"), content_type="multipart/form-data",
                          headers={"X-Requested-With": "fetch"})
    assert outside.status_code == 403 and GRID_B in outside.get_json()["message"]
    gif = worker.post("/console/report", data=_form(worker, photos=[(io.BytesIO(b"GIF89a..."), "a.png")]),
                      content_type="multipart/form-data", headers={"X-Requested-With": "fetch"})
    assert gif.status_code == 400 and gif.get_json()["field"] == "photos"
    assert worker.post("/console/report", data=_form(worker, csrf="nope")).status_code == 400
    with ctx.db.read_session() as s:
        assert s.scalars(select(GridReport)).all() == []


def test_the_nearby_check_and_adding_to_a_case(ctx: HubContext) -> None:
    worker = signed_in(ctx, "grid_worker", SCOPE)
    first = worker.post("/console/report", data=_form(worker, category="garbage_exposed", text="路口垃圾"),
                        content_type="multipart/form-data", headers={"X-Requested-With": "fetch"}).get_json()
    nearby = worker.get("/console/report/nearby?lat=31.2051&lng=121.4051&category=construction_waste").get_json()
    assert [c["number"] for c in nearby["items"]] == [first["case_number"]] and nearby["grid_code"] == GRID_A
    assert worker.get("/console/report/nearby?lat=31.2051&lng=121.4051&category=noise_construction"
                      ).get_json()["items"] == []
    assert worker.get("/console/report/nearby?lat=nope&lng=1&category=x").status_code == 400
    added = worker.post("/console/report", data=_form(worker, client_id="d-2", category="construction_waste",
                                                      text="还有渣土", lat="31.2051", lng="121.4051",
                                                      attach_to=first["case_number"],
                                                      photos=[(io.BytesIO(JPEG), "b.jpg")]),
                        content_type="multipart/form-data", headers={"X-Requested-With": "fetch"}).get_json()
    assert added["outcome"] == "attached" and added["case_number"] == first["case_number"]
    assert "已补充到您选择的案件" in worker.get(added["url"]).get_data(as_text=True)
    elsewhere = signed_in(ctx, "grid_worker", GRID_B[:9])
    assert elsewhere.get("/console/report/nearby?lat=31.2051&lng=121.4051&category=garbage_exposed"
                         ).get_json()["items"] == []


def test_the_verification_list_verifies_with_a_photo_and_the_case_page_shows_it(ctx: HubContext) -> None:
    with ctx.db.session() as s:
        mine = Case(number="GH-V1", category="street_vending", status="RESOLVED", title="摊贩占道", grid_code=GRID_A,
                    reported_at=datetime(2026, 12, 1, tzinfo=UTC))
        theirs = Case(number="GH-V2", category="street_vending", status="RESOLVED", title="别处", grid_code=GRID_B,
                      reported_at=datetime(2026, 12, 1, tzinfo=UTC))
        s.add_all([mine, theirs])
        s.flush()
        mine_id, theirs_id = mine.id, theirs.id
    worker = signed_in(ctx, "grid_worker", SCOPE)
    page = worker.get("/console/verify").get_data(as_text=True)
    assert f'id="verify-{mine_id}"' in page and "GH-V2" not in page
    token = csrf(worker, "/console/verify")
    bad = worker.post(f"/console/work/cases/{mine_id}/verify",
                      data={"csrf": token, "next": "verify", "result": "pass", "text": "已撤离",
                            "photos": [(io.BytesIO(b"<svg/>"), "x.svg")]},
                      content_type="multipart/form-data", follow_redirects=True)
    assert "照片不合要求" in bad.get_data(as_text=True)
    done = worker.post(f"/console/work/cases/{mine_id}/verify",
                       data={"csrf": token, "next": "verify", "result": "pass", "text": "网格员现场核查：已撤离",
                             "photos": [(io.BytesIO(JPEG), "v.jpg")]}, content_type="multipart/form-data")
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/verify")
    assert worker.post(f"/console/work/cases/{theirs_id}/verify",
                       data={"csrf": token, "next": "verify", "result": "pass", "text": "越权核查"}).status_code == 404
    with ctx.db.read_session() as s:
        case = s.get(Case, mine_id)
        assert case is not None and case.status == "VERIFIED"
        photo = s.scalar(select(Attachment).where(Attachment.case_id == mine_id))
        assert photo is not None and photo.purpose == "verify"
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "case.verify"))
        assert entry is not None and entry.after["photos"] == [photo.id]
        assert s.scalar(select(User).where(User.username == entry.actor)) is not None
    assert f'id="verify-{mine_id}"' not in worker.get("/console/verify").get_data(as_text=True)
    case_page = worker.get(f"/console/work/cases/{mine_id}").get_data(as_text=True)
    assert 'id="case-photos"' in case_page and f"/console/attachments/{photo.id}" in case_page
    got = worker.get(f"/console/attachments/{photo.id}")
    assert got.status_code == 200 and got.data == JPEG and got.headers["X-Content-Type-Options"] == "nosniff"
    assert signed_in(ctx, "auditor", GRID_B[:9]).get(f"/console/attachments/{photo.id}").status_code == 404
