"""The console's working-cases pages: the case list with its filters (Shanghai days, overdue,
several systems) within the caller's jurisdiction; a case's detail with its timeline joined with
outbound delivery status, each system's own status words and the server-drawn location map; the
actions (route, merge, split, verify) through the hub's services with refusals shown next to the
form; and the review queue's decisions — every change audited, roles and CSRF enforced."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.context import HubContext
from hub.models import AuditEntry, Case, CaseOperation, MatchRecord, OutboundMessage, ReviewStatus, Ticket, utcnow
from hub.services import outbox
from hub.services.inbox import Inbox
from tests.support import console
from tests.support.console import csrf
from tests.support.fake_system import raw, record
from tests.unit.hub.conftest import add_fake_system, ingest, make_fake_ctx
from tests.unit.hub.test_dedup_ops import _propose
from tests.unit.hub.test_outbox import T0, fake_connector

IN, OUT = "310104001001001", "310104002001001"  # two streets; scoped accounts get 310104001


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    """The fake system ``fake`` and a second one, ``other`` (same plugin): cases of two systems."""
    context = make_fake_ctx(hub_config)
    add_fake_system(context, "other", "另一系统")
    yield context
    context.close()


def signed_in(ctx: HubContext, role: str = "operator", scope: str = "") -> Any:
    return console.signed_in(ctx, role, scope)


def post(client: Any, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(path, data={"csrf": csrf(client, "/console/work/cases"), **(data or {})})


def page(client: Any, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.status_code
    return html.unescape(answer.get_data(as_text=True))


def ingest_other(ctx: HubContext, *records: dict[str, Any]) -> None:
    Inbox(ctx, "other").store_many([raw(r) for r in records])


def case_of(ctx: HubContext, external_id: str) -> Case:
    with ctx.db.read_session() as s:
        case = s.scalar(select(Case).join(Ticket, Ticket.case_id == Case.id).where(Ticket.external_id == external_id))
        assert case is not None
        return case


def audits(ctx: HubContext, action: str) -> list[AuditEntry]:
    with ctx.db.read_session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def rows(text: str) -> set[int]:
    return {int(n) for n in re.findall(r'id="case-row-(\d+)"', text)}


# ----------------------------------------------------------------------------- who may open what


@pytest.mark.parametrize("role,cases,review", [("admin", 200, 200), ("operator", 200, 200), ("auditor", 200, 403),
                                               ("department", 200, 403), ("grid_worker", 200, 403)])
def test_roles_and_header_links(ctx: HubContext, role: str, cases: int, review: int) -> None:
    ingest(ctx, record("R1"))
    client = signed_in(ctx, role)
    assert client.get("/console/work/cases").status_code == cases
    assert client.get(f"/console/work/cases/{case_of(ctx, 'R1').id}").status_code == cases
    assert client.get("/console/work/review").status_code == review
    header = client.get("/console/work/cases").get_data(as_text=True)
    assert "案件工作台" in header and ("复核队列" in header) == (review == 200)


@pytest.mark.parametrize("path", ["route", "merge", "split"])
def test_only_operators_act_and_always_with_csrf(ctx: HubContext, path: str) -> None:
    ingest(ctx, record("R1"))
    url = f"/console/work/cases/{case_of(ctx, 'R1').id}/{path}"
    for role in ("auditor", "department", "grid_worker"):
        assert post(signed_in(ctx, role), url, {"system_key": "other", "into": "x", "reason": "r"}).status_code == 403
    operator = signed_in(ctx)
    assert operator.post(url, data={"system_key": "other", "reason": "r"}).status_code == 400
    assert operator.post(url, data={"system_key": "other", "csrf": "forged"}).status_code == 400
    assert audits(ctx, "case.route") == audits(ctx, "case.merge") == []


# ----------------------------------------------------------------------------- the list


def test_list_filters_in_shanghai_days_and_the_jurisdiction(ctx: HubContext) -> None:
    ingest(ctx, record("D1", at="2026-11-23 09:00:00"), record("D2", at="2026-11-24 07:30:00", st="DOING"),
           record("D3", cat="B", grid=OUT), record("D4", grid="310104001002001"))
    ingest_other(ctx, record("M1", ref="D1"))  # 另一系统 reports D1's incident: a case of two systems
    ids = {k: case_of(ctx, k).id for k in ("D1", "D2", "D3", "D4")}
    assert case_of(ctx, "M1").id == ids["D1"]
    client = signed_in(ctx, "admin")
    assert rows(page(client, "/console/work/cases")) == set(ids.values())
    # 2026-11-24 07:30 in Shanghai is 2026-11-23 23:30 UTC: a day of the 24th, not the 23rd
    assert rows(page(client, "/console/work/cases?reported_from=2026-11-23&reported_to=2026-11-23")) == \
        {ids["D1"], ids["D3"], ids["D4"]}
    assert rows(page(client, "/console/work/cases?reported_from=2026-11-24")) == {ids["D2"]}
    assert rows(page(client, "/console/work/cases?status=IN_PROGRESS")) == {ids["D2"]}
    assert rows(page(client, "/console/work/cases?category=garbage_exposed")) == {ids["D3"]}
    assert rows(page(client, "/console/work/cases?system=other")) == {ids["D1"]}
    assert rows(page(client, "/console/work/cases?multi=1")) == {ids["D1"]}
    assert rows(page(client, "/console/work/cases?grid=310104001002")) == {ids["D4"]}
    scoped = signed_in(ctx, "operator", "310104001")
    assert rows(page(scoped, "/console/work/cases")) == {ids["D1"], ids["D2"], ids["D4"]}
    assert rows(page(scoped, f"/console/work/cases?grid={OUT}")) == set()
    bad = client.get("/console/work/cases?reported_from=23.11.2026&grid=abc&status=X")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and text.count('role="alert"') == 3 and 'aria-invalid="true"' in text
    assert rows(text) == set(ids.values())  # the unusable filters are not applied


def test_overdue_means_deadline_passed_and_not_finished(ctx: HubContext) -> None:
    ingest(ctx, record("O1", st="DOING"), record("O2", st="DONE"), record("O3", st="DOING"))
    with ctx.db.session() as s:
        for ext, hours in (("O1", -2), ("O2", -2), ("O3", 5)):
            case = s.get(Case, case_of(ctx, ext).id)
            assert case is not None
            case.deadline = utcnow() + timedelta(hours=hours)
    client = signed_in(ctx)
    text = page(client, "/console/work/cases?overdue=1")
    assert rows(text) == {case_of(ctx, "O1").id} and "超期" in text


def test_paging_keeps_the_filters(ctx: HubContext) -> None:
    ingest(ctx, *[record(f"P{i}", st="DOING") for i in range(55)], record("X1"))
    client = signed_in(ctx)
    first = page(client, "/console/work/cases?status=IN_PROGRESS")
    assert len(rows(first)) == 50 and 'id="work-case-total">55<' in first
    link = re.search(r'id="page-next" href="([^"]+)"', first)
    assert link is not None and "status=IN_PROGRESS" in link.group(1)
    assert len(rows(page(client, link.group(1)))) == 5


# ----------------------------------------------------------------------------- one case


def test_detail_shows_own_words_timeline_with_delivery_status_and_the_map(ctx: HubContext) -> None:
    ingest(ctx, record("T1", st="DOING"))
    ingest_other(ctx, record("T2", ref="T1", lng=121.5, lat=31.2))
    case = case_of(ctx, "T1")
    ingest(ctx, record("T1", v=2, st="DONE", upd="2026-11-23 10:00:00"))  # 另一系统 is told: DONE
    fake_connector(ctx, "other").fail_permanent("refused: INVALID_STATE")
    outbox.deliver_due(ctx, now=T0)
    with ctx.db.read_session() as s:
        message = s.scalar(select(OutboundMessage).where(OutboundMessage.case_id == case.id))
        assert message is not None and message.status == "dead"
    text = page(signed_in(ctx), f"/console/work/cases/{case.id}")
    assert 'id="case-number">案件 ' + case.number in text
    assert "完成" in text and "新建" in text  # each system's own words (fakesys status_labels)
    assert "已处置" in text  # the canonical status
    assert re.search(rf'data-message="{message.id}" data-status="dead"', text)
    assert "INVALID_STATE" in text and "状态同步外发" in text and "立案" in text
    svg = text[text.index('<svg class="location"'):text.index("</svg>")]
    assert 'id="map-scale"' in svg and "米" in svg and f"网格 {case.grid_code}" in svg
    assert svg.count('class="map-ticket"') == 2 and "other T2" in svg
    assert 'id="route-form"' in text and 'id="verify-form"' in text  # RESOLVED: verifiable
    auditor = page(signed_in(ctx, "auditor"), f"/console/work/cases/{case.id}")
    assert 'id="route-form"' not in auditor and 'id="verify-form"' not in auditor


def test_detail_is_404_outside_the_jurisdiction_whatever_the_url(ctx: HubContext) -> None:
    ingest(ctx, record("J1", grid=OUT), record("J2", st="DONE", grid=OUT))
    outside, resolved = case_of(ctx, "J1").id, case_of(ctx, "J2").id
    client = signed_in(ctx, "operator", "310104001")
    assert client.get(f"/console/work/cases/{outside}").status_code == 404
    for path, data in (("route", {"system_key": "other"}), ("merge", {"into": "x", "reason": "r"}),
                       ("split", {"ticket_id": "1", "reason": "r"})):
        assert post(client, f"/console/work/cases/{outside}/{path}", data).status_code == 404
    worker = signed_in(ctx, "grid_worker", "310104001")
    assert post(worker, f"/console/work/cases/{resolved}/verify", {"result": "pass", "text": "现场已清理"}
                ).status_code == 404
    assert case_of(ctx, "J2").status == "RESOLVED"


# ----------------------------------------------------------------------------- actions


def test_route_opens_a_record_there_and_is_audited(ctx: HubContext) -> None:
    ingest(ctx, record("U1"))
    case = case_of(ctx, "U1")
    client = signed_in(ctx)
    answer = post(client, f"/console/work/cases/{case.id}/route", {"system_key": "other", "reason": "属地管理"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/console/work/cases/{case.id}")
    assert "已转 other 处理" in page(client, f"/console/work/cases/{case.id}")
    assert case_of(ctx, "U1").owner_system == "other"
    with ctx.db.read_session() as s:
        created = s.scalar(select(OutboundMessage).where(OutboundMessage.operation == "create"))
        assert created is not None and created.system_key == "other" and created.case_id == case.id
    (entry,) = audits(ctx, "case.route")
    assert entry.target_id == case.number and entry.before == {"owner_system": "fake"}
    assert entry.after is not None and entry.after["owner_system"] == "other" and entry.after["reason"] == "属地管理"


def test_a_refused_route_is_explained_next_to_the_field(ctx: HubContext) -> None:
    ingest(ctx, record("U2", cat="B"))  # garbage_exposed: the mapping has no outbound code for it
    case = case_of(ctx, "U2")
    client = signed_in(ctx)
    post(client, f"/console/work/cases/{case.id}/route", {"system_key": "other", "reason": "试试"})
    text = page(client, f"/console/work/cases/{case.id}")
    assert 'id="route-system_key-error"' in text and "映射无法表达本案" in text
    assert 'value="试试"' in text  # what was typed stays
    assert case_of(ctx, "U2").owner_system == "fake" and audits(ctx, "case.route") == []
    post(client, f"/console/work/cases/{case.id}/route", {"reason": "x"})
    assert "请填写处理系统" in page(client, f"/console/work/cases/{case.id}")
    assert "请填写处理系统" not in page(client, f"/console/work/cases/{case.id}")  # shown once


def test_verify_pass_and_fail_only_when_resolved(ctx: HubContext) -> None:
    ingest(ctx, record("V1", st="DONE"), record("V2", st="DONE"), record("V3", st="DOING"))
    worker = signed_in(ctx, "grid_worker")
    v1, v2, v3 = (case_of(ctx, k) for k in ("V1", "V2", "V3"))
    post(worker, f"/console/work/cases/{v1.id}/verify", {"result": "pass", "text": "x"})
    assert "至少 2 个字" in page(worker, f"/console/work/cases/{v1.id}")
    post(worker, f"/console/work/cases/{v1.id}/verify", {"result": "pass", "text": "现场已清理"})
    post(worker, f"/console/work/cases/{v2.id}/verify", {"result": "fail", "text": "摊位仍在"})
    assert case_of(ctx, "V1").status == "VERIFIED" and case_of(ctx, "V2").status == "REOPENED"
    assert [e.after["result"] for e in audits(ctx, "case.verify") if e.after] == ["pass", "fail"]
    assert 'id="verify-form"' not in page(worker, f"/console/work/cases/{v3.id}")
    post(worker, f"/console/work/cases/{v3.id}/verify", {"result": "pass", "text": "现场已清理"})
    assert "只有“已处置”的案件才能现场核查" in page(worker, f"/console/work/cases/{v3.id}")
    assert case_of(ctx, "V3").status == "IN_PROGRESS" and len(audits(ctx, "case.verify")) == 2


def test_merge_by_case_number_and_its_refusals(ctx: HubContext) -> None:
    ingest(ctx, record("G1"), record("G2"), record("G3", grid=OUT))
    g1, g2, g3 = (case_of(ctx, k) for k in ("G1", "G2", "G3"))
    client = signed_in(ctx, "operator", "310104001")
    post(client, f"/console/work/cases/{g1.id}/merge", {"into": g3.number, "reason": "同一摊位"})
    assert f"找不到案件编号 {g3.number}" in page(client, f"/console/work/cases/{g1.id}")  # outside: unknown
    post(client, f"/console/work/cases/{g1.id}/merge", {"into": g1.number, "reason": "同一摊位"})
    assert "合并未执行：当前状态不允许此操作" in page(client, f"/console/work/cases/{g1.id}")
    post(client, f"/console/work/cases/{g1.id}/merge", {"into": g2.number, "reason": "同一摊位"})
    assert case_of(ctx, "G1").id == g2.id
    merged = page(client, f"/console/work/cases/{g1.id}")
    assert 'id="case-merged"' in merged and 'id="merge-form"' not in merged
    (entry,) = audits(ctx, "case.merge")
    assert entry.target_id == g1.number and entry.after is not None and entry.after["into_case"] == g2.number
    with ctx.db.read_session() as s:
        op = s.get(CaseOperation, entry.after["operation_id"])
        assert op is not None and op.kind == "merge" and op.actor == "operator310104001"


def test_split_a_ticket_out_into_a_new_case(ctx: HubContext) -> None:
    ingest(ctx, record("S1"), record("S2", ref="S1"))
    case = case_of(ctx, "S1")
    assert case_of(ctx, "S2").id == case.id
    client = signed_in(ctx)
    with ctx.db.read_session() as s:
        s2 = s.scalar(select(Ticket.id).where(Ticket.external_id == "S2"))
    post(client, f"/console/work/cases/{case.id}/split", {"ticket_id": str(s2), "reason": ""})
    assert 'id="split-reason-error"' in page(client, f"/console/work/cases/{case.id}")
    post(client, f"/console/work/cases/{case.id}/split", {"ticket_id": str(s2), "reason": "不同地点"})
    assert case_of(ctx, "S2").id != case.id and case_of(ctx, "S1").id == case.id
    (entry,) = audits(ctx, "ticket.split")
    assert entry.target_id == "fake/S2" and entry.after is not None and entry.after["reason"] == "不同地点"


# ----------------------------------------------------------------------------- the review queue


def test_review_pair_side_by_side_with_every_contribution(ctx: HubContext) -> None:
    ingest(ctx, record("A1", text="门口有人摆摊卖水果"), record("B1", text="人行道上有水果摊 13812345678"))
    review = _propose(ctx, "B1", "A1", probability=0.9)
    client = signed_in(ctx)
    listing = page(client, "/console/work/review")
    assert f'id="review-row-{review}"' in listing and "90%" in listing
    text = page(client, f"/console/work/review/{review}")
    assert "人行道上有水果摊" in text and "门口有人摆摊卖水果" in text and "13812345678" not in text
    assert 'id="feature-distance"' in text and 'id="feature-text"' in text and "+2.10" in text and "-0.80" in text
    assert "90.0%" in text and all(f'id="{f}-form"' in text for f in ("accept", "reject", "link"))
    assert client.get("/console/work/review/999999").status_code == 404


def test_review_decisions_move_tickets_and_are_audited(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"), record("C1"), record("D1"), record("E1"))
    accept, reject, link = _propose(ctx, "B1", "A1"), _propose(ctx, "C1", "A1"), _propose(ctx, "D1", "A1")
    client = signed_in(ctx)
    assert post(client, f"/console/work/review/{accept}/accept", {"note": "同一摊位"}).status_code == 302
    assert case_of(ctx, "B1").id == case_of(ctx, "A1").id
    assert "已并案" in page(client, f"/console/work/review/{accept}")
    post(client, f"/console/work/review/{reject}/reject", {"note": "不同店铺"})
    assert case_of(ctx, "C1").id != case_of(ctx, "A1").id
    post(client, f"/console/work/review/{link}/link", {"case_number": "GH-nope"})
    assert 'id="link-case_number-error"' in page(client, f"/console/work/review/{link}")
    post(client, f"/console/work/review/{link}/link", {"case_number": case_of(ctx, "E1").number})
    assert case_of(ctx, "D1").id == case_of(ctx, "E1").id
    post(client, f"/console/work/review/{accept}/reject", {})  # decided already: refused, said so
    assert "当前状态不允许此操作" in page(client, f"/console/work/review/{accept}")
    assert [e.target_id for e in audits(ctx, "review.accept")] == [str(accept)]
    assert [e.after["review_status"] for e in audits(ctx, "review.reject") if e.after] == ["rejected"]
    assert [e.after["case_number"] for e in audits(ctx, "review.link") if e.after] == [case_of(ctx, "E1").number]
    with ctx.db.read_session() as s:
        statuses = {r.id: r.review_status for r in s.scalars(select(MatchRecord).where(MatchRecord.id.in_(
            [accept, reject, link])))}
    assert statuses == {accept: ReviewStatus.ACCEPTED, reject: ReviewStatus.REJECTED,
                        link: ReviewStatus.LINKED_ELSEWHERE}
    decided = page(client, "/console/work/review?status=accepted")
    assert f'id="review-row-{accept}"' in decided and "operatorall" in decided
    assert f'id="review-row-{accept}"' not in page(client, "/console/work/review")


def test_review_items_of_other_districts_are_hidden(ctx: HubContext) -> None:
    ingest(ctx, record("A1", grid=OUT), record("B1", grid=OUT))
    review = _propose(ctx, "B1", "A1")
    client = signed_in(ctx, "operator", "310104001")
    assert f'id="review-row-{review}"' not in page(client, "/console/work/review")
    assert client.get(f"/console/work/review/{review}").status_code == 404
    assert post(client, f"/console/work/review/{review}/accept").status_code == 404
    assert post(signed_in(ctx, "auditor"), f"/console/work/review/{review}/accept").status_code == 403
    assert audits(ctx, "review.accept") == []


def test_every_feature_and_level_the_model_can_explain_has_a_label() -> None:
    """The review page explains a decision feature by feature: no level may show as a raw key."""
    from admin.pages.work import FEATURE_LABELS, LEVEL_LABELS
    from hub.dedup.model import LEVELS

    assert set(LEVELS) <= set(FEATURE_LABELS)
    unlabelled = [f"{feature}:{level}" for feature, levels in LEVELS.items() for level in levels
                  if f"{feature}:{level}" not in LEVEL_LABELS and level not in LEVEL_LABELS]
    assert unlabelled == []
