"""The console's 操作记录: case operations newest first with what each moved and whether it can
still be undone (the service's rule, computed without writing), filters, paging, the caller's
jurisdiction (an operation touching a case outside it is hidden and a 404), roles (auditors read,
operators undo), CSRF, and the undo itself through ``dedup_ops.undo_operation`` — the tickets go
back, the undo is audited, and a second undo is refused with the reason shown."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from admin.pages import undo as undo_page
from hub.config import HubConfig
from hub.context import HubContext
from hub.models import AuditEntry, Case, CaseOperation, Ticket
from hub.services import dedup_ops
from tests.support import console
from tests.support.console import csrf
from tests.support.fake_system import record
from tests.unit.hub.conftest import ingest, make_fake_ctx

IN, OUT = "310104001001001", "310104002001001"  # two streets; scoped accounts get 310104001
STREET = "310104001"


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    context = make_fake_ctx(hub_config)
    yield context
    context.close()


def signed_in(ctx: HubContext, role: str = "operator", scope: str = "") -> Any:
    return console.signed_in(ctx, role, scope)


def page(client: Any, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, answer.status_code
    return html.unescape(answer.get_data(as_text=True))


def undo(client: Any, op_id: int, reason: str = "误合并") -> Any:
    return client.post(f"/console/work/operations/{op_id}/undo",
                       data={"csrf": csrf(client, "/console/work/operations"), "reason": reason})


def listed(text: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="op-row-(\d+)"', text)]


def state_of(text: str, op_id: int) -> str:
    found = re.search(rf'id="op-row-{op_id}"[^>]*data-state="(\w+)"', text)
    assert found is not None, f"operation {op_id} not listed"
    return found.group(1)


def case_id(ctx: HubContext, external_id: str) -> int:
    with ctx.db.read_session() as s:
        found = s.scalar(select(Ticket.case_id).where(Ticket.external_id == external_id))
    assert found is not None
    return found


def merge(ctx: HubContext, source: str, target: str, actor: str = "li", reason: str = "同一摊位") -> int:
    op = dedup_ops.merge_cases(ctx, case_id(ctx, source), case_id(ctx, target), actor, reason)
    return int(op["id"])


def split(ctx: HubContext, external_id: str, actor: str = "wang", into: str | None = None) -> int:
    target = case_id(ctx, into) if into is not None else None
    return int(dedup_ops.split_ticket(ctx, "fake", external_id, actor, "不同地点", target)["id"])


def operation(ctx: HubContext, op_id: int) -> CaseOperation:
    with ctx.db.read_session() as s:
        op = s.get(CaseOperation, op_id)
        assert op is not None
        return op


# ----------------------------------------------------------------------------- who may open what


@pytest.mark.parametrize("role,status", [("admin", 200), ("operator", 200), ("auditor", 200),
                                         ("department", 403), ("grid_worker", 403)])
def test_roles_and_header_link(ctx: HubContext, role: str, status: int) -> None:
    ingest(ctx, record("A1"), record("B1"))
    op_id = merge(ctx, "B1", "A1")
    client = signed_in(ctx, role)
    assert client.get("/console/work/operations").status_code == status
    assert client.get(f"/console/work/operations/{op_id}").status_code == status
    header = client.get("/console/work/cases").get_data(as_text=True)
    assert ("操作记录" in header) == (status == 200)


def test_auditor_reads_but_cannot_undo(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"))
    op_id = merge(ctx, "B1", "A1")
    auditor = signed_in(ctx, "auditor")
    detail = page(auditor, f"/console/work/operations/{op_id}")
    assert 'id="undo-form"' not in detail and 'id="undo-read-only"' in detail
    assert 'id="op-undo-' not in page(auditor, "/console/work/operations")
    assert undo(auditor, op_id).status_code == 403
    assert operation(ctx, op_id).undone_at is None and case_id(ctx, "B1") == case_id(ctx, "A1")


def test_undo_needs_the_csrf_token_and_a_reason(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"))
    op_id = merge(ctx, "B1", "A1")
    client = signed_in(ctx)
    path = f"/console/work/operations/{op_id}/undo"
    assert client.post(path, data={"reason": "误合并"}).status_code == 400
    assert client.post(path, data={"reason": "误合并", "csrf": "forged"}).status_code == 400
    assert undo(client, op_id, reason="  ").status_code == 302
    detail = page(client, f"/console/work/operations/{op_id}")
    assert "请填写撤销原因" in detail and 'aria-invalid="true"' in detail
    assert operation(ctx, op_id).undone_at is None and case_id(ctx, "B1") == case_id(ctx, "A1")


# ----------------------------------------------------------------------------- the list


def test_list_newest_first_with_cases_moves_and_state(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"), record("C1"), record("C2", ref="C1"))
    a, b, c = case_id(ctx, "A1"), case_id(ctx, "B1"), case_id(ctx, "C1")
    merged = merge(ctx, "B1", "A1", actor="li", reason="同一摊位")
    split_op = split(ctx, "C2", actor="wang")
    new_case = case_id(ctx, "C2")
    text = page(signed_in(ctx), "/console/work/operations")
    assert listed(text) == [split_op, merged]
    row = text[text.index(f'id="op-row-{merged}"'):text.index("</tr>", text.index(f'id="op-row-{merged}"'))]
    assert "合并" in row and "li" in row and "同一摊位" in row and "fake B1" in row
    assert f'href="/console/work/cases/{a}"' in row and f'href="/console/work/cases/{b}"' in row
    assert state_of(text, merged) == "undoable" and f'id="op-undo-{merged}"' in row
    split_row = text[text.index(f'id="op-row-{split_op}"'):]
    assert "拆分" in split_row and "fake C2" in split_row and f'href="/console/work/cases/{new_case}"' in split_row
    assert f'href="/console/work/cases/{c}"' in split_row


def test_states_undone_is_undo_and_moved_since(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"), record("D1"), record("E1"))
    merged = merge(ctx, "B1", "A1")
    client = signed_in(ctx)
    assert undo(client, merged).status_code == 302
    (undo_id,) = [op for op in listed(page(client, "/console/work/operations")) if op > merged]
    moved = merge(ctx, "E1", "D1")
    later = split(ctx, "E1")  # E1 left D1's case since: the merge can no longer be undone exactly
    text = page(client, "/console/work/operations")
    assert state_of(text, merged) == "undone" and state_of(text, undo_id) == "is_undo"
    assert state_of(text, moved) == "moved" and state_of(text, later) == "undoable"
    assert f'href="/console/work/operations/{undo_id}"' in text  # the undone row links to its undo
    assert "本身是撤销操作" in text and "工单 fake E1 此后已移至" in text
    # the page's rule is the service's: what it calls undoable is undone, what it refuses is refused
    with pytest.raises(dedup_ops.OperationError) as info:
        dedup_ops.undo_operation(ctx, moved, "x")
    assert info.value.status == 409 and "has moved since" in info.value.message


def test_filters_by_kind_actor_case_and_undoable(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"), record("C1"), record("C2", ref="C1"), record("D1"))
    merged = merge(ctx, "B1", "A1", actor="li")
    split_op = split(ctx, "C2", actor="wang")
    merged_d = merge(ctx, "D1", "C1", actor="wang")
    client = signed_in(ctx, "admin")
    assert undo(client, merged_d).status_code == 302
    everything = listed(page(client, "/console/work/operations"))
    assert len(everything) == 4 and everything == sorted(everything, reverse=True)
    undo_id = everything[0]
    assert listed(page(client, "/console/work/operations?kind=merge")) == [merged_d, merged]
    assert listed(page(client, "/console/work/operations?kind=undo")) == [undo_id]
    assert listed(page(client, "/console/work/operations?actor=wang")) == [merged_d, split_op]
    with ctx.db.read_session() as s:
        number = s.scalar(select(Case.number).where(Case.id == case_id(ctx, "C1")))
    assert set(listed(page(client, f"/console/work/operations?case={number}"))) == {split_op, merged_d, undo_id}
    assert listed(page(client, "/console/work/operations?undoable=1")) == [split_op, merged]
    assert listed(page(client, "/console/work/operations?undoable=1&actor=li&kind=merge")) == [merged]
    bad = client.get("/console/work/operations?kind=bogus&case=GH-00000000-404")
    text = html.unescape(bad.get_data(as_text=True))
    assert bad.status_code == 422 and text.count('role="alert"') == 2 and 'aria-invalid="true"' in text
    assert "找不到案件编号 GH-00000000-404" in text and listed(text) == []


@pytest.mark.parametrize("scope", ["", STREET])
def test_paging_keeps_the_filters(ctx: HubContext, scope: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(undo_page, "PER_PAGE", 2)
    ingest(ctx, *(record(f"P{i}") for i in range(5)))
    ops = [merge(ctx, f"P{i}", "P0", actor="li") for i in range(1, 5)]
    client = signed_in(ctx, "operator", scope)
    first = page(client, "/console/work/operations?actor=li")
    assert listed(first) == ops[:1:-1] and "共 4 条" in first
    assert 'href="/console/work/operations?actor=li&amp;page=2"' in client.get(
        "/console/work/operations?actor=li").get_data(as_text=True)
    assert listed(page(client, "/console/work/operations?actor=li&page=2")) == ops[1::-1]


# ----------------------------------------------------------------------------- the jurisdiction


def test_other_streets_operations_are_hidden_and_a_crafted_undo_is_404(ctx: HubContext) -> None:
    ingest(ctx, record("A1", grid=IN), record("B1", grid=IN), record("X1", grid=OUT), record("Y1", grid=OUT),
           record("Z1", grid=IN))
    mine = merge(ctx, "B1", "A1")
    theirs = merge(ctx, "Y1", "X1")
    across = merge(ctx, "Z1", "X1")  # an unscoped admin merged a case of ours into theirs
    scoped = signed_in(ctx, "operator", STREET)
    assert listed(page(scoped, "/console/work/operations")) == [mine]
    assert listed(page(scoped, "/console/work/operations?undoable=1")) == [mine]
    for op_id in (theirs, across):
        assert scoped.get(f"/console/work/operations/{op_id}").status_code == 404
        assert undo(scoped, op_id).status_code == 404
        assert operation(ctx, op_id).undone_at is None
    assert case_id(ctx, "Y1") == case_id(ctx, "X1") == case_id(ctx, "Z1")
    assert scoped.get("/console/work/operations/999999").status_code == 404
    assert listed(page(signed_in(ctx, "admin"), "/console/work/operations")) == [across, theirs, mine]


# ----------------------------------------------------------------------------- the undo


def test_undo_puts_the_tickets_back_is_audited_and_a_second_is_refused(ctx: HubContext) -> None:
    ingest(ctx, record("A1", grid=IN), record("A2", grid=IN, ref="A1"), record("B1", grid=IN))
    a, b = case_id(ctx, "A1"), case_id(ctx, "B1")
    op_id = merge(ctx, "A1", "B1")
    assert case_id(ctx, "A1") == case_id(ctx, "A2") == b
    client = signed_in(ctx, "operator", STREET)
    detail = page(client, f"/console/work/operations/{op_id}")
    assert 'id="undo-form"' in detail and '<label for="undo-reason">撤销原因</label>' in detail
    assert "fake A1" in detail and "fake A2" in detail
    answer = undo(client, op_id, "并错了")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/console/work/operations")
    listing = page(client, "/console/work/operations")
    assert f"已撤销合并操作 #{op_id}" in listing and state_of(listing, op_id) == "undone"
    assert case_id(ctx, "A1") == case_id(ctx, "A2") == a and case_id(ctx, "B1") == b
    op = operation(ctx, op_id)
    assert op.undone_at is not None and op.undone_by == f"operator{STREET}"
    with ctx.db.read_session() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "case_operation.undo"))
        undo_op = s.scalar(select(CaseOperation).where(CaseOperation.undo_of == op_id))
    assert undo_op is not None and entry.target_id == str(op_id) and entry.after is not None
    assert entry.after["undo_id"] == undo_op.id and entry.after["reason"] == "并错了"
    assert entry.actor == f"operator{STREET}"
    # a second undo (a stale form in another tab): refused, the service's reason shown
    assert undo(client, op_id, "再撤一次").status_code == 302
    refused = page(client, f"/console/work/operations/{op_id}")
    assert 'id="undo-error"' in refused and "撤销未执行：当前状态不允许撤销" in refused
    assert f"operation {op_id} was already undone by operator{STREET}" in refused
    assert 'id="undo-form"' not in refused
    assert case_id(ctx, "A1") == a
    # an undo cannot itself be undone
    assert undo(client, undo_op.id).status_code == 302
    assert "is an undo" in page(client, f"/console/work/operations/{undo_op.id}")


def test_a_merge_that_told_a_system_of_a_duplicate_says_undo_will_not_take_it_back(ctx: HubContext) -> None:
    ingest(ctx, record("A1"), record("B1"))
    op_id = merge(ctx, "B1", "A1")  # two records of one system in one case: it is told B1 duplicates A1
    detail = page(signed_in(ctx), f"/console/work/operations/{op_id}")
    assert 'id="duplicate-notices"' in detail and "记录 B1 被标为 A1 的重复件" in detail
    assert "12345 无法撤销重复件" not in detail  # not a 12345 record: no CF sentence
    split_op = split(ctx, "B1")
    assert 'id="duplicate-notices"' not in page(signed_in(ctx), f"/console/work/operations/{split_op}")
