"""The console's system pages: live health and plugins, adding and editing a system with
write-only credentials, testing the connection for real, circuit reset and reconciliation, the
quarantine with masked payloads and replay, and the outbound dead letters with replay — every
change audited, only admins change anything (with CSRF), jurisdiction hides other cases' rows."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.context import HubContext
from hub.models import AuditEntry, Case, CircuitBreaker, InboundEvent, MappingVersion, OutboundMessage, System
from hub.services import circuit, outbox
from hub.services.mapping_versions import create_version
from hub.services.systems import system_config
from tests.support.console import csrf, signed_in
from tests.support.fake_system import MAPPING, record
from tests.unit.hub.conftest import ingest, make_fake_ctx
from tests.unit.hub.test_outbox import T0, case_of, fake_connector, put, row

SECRET = "fake-secret-value"  # what make_fake_ctx stores for the system "fake"


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    context = make_fake_ctx(hub_config)
    yield context
    context.close()


def post(client: Any, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(path, data={"csrf": csrf(client, "/console/outbound"), **(data or {})})


def audit_entries(ctx: HubContext, action: str) -> list[Any]:
    """The entries of one action, oldest first (``Any``: their before/after are read as dicts)."""
    with ctx.db.read_session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def quarantined(ctx: HubContext, ext_id: str = "Q1", **fields: Any) -> int:
    ingest(ctx, record(ext_id, cat="Z", **fields))
    with ctx.db.read_session() as s:
        ev = s.scalar(select(InboundEvent).where(InboundEvent.external_id == ext_id))
        assert ev is not None and ev.status == "quarantined"
        return ev.id


@pytest.fixture
def dead(ctx: HubContext) -> list[int]:
    """Two dead messages (refused for good: one of a case in grid 310104001001001, one of no case)
    and one sent (the case's second, delivered once the first is dead)."""
    case_id = case_of(ctx, "A1")
    ids = [put(ctx, "k1", case_id, status="DONE", phone="13812345678"), put(ctx, "k2"), put(ctx, "k3", case_id)]
    conn = fake_connector(ctx)
    conn.fail_permanent("refused: INVALID_STATE 13812345678")
    conn.fail_permanent("refused: INVALID_STATE")
    outbox.deliver_due(ctx, now=T0)
    assert [row(ctx, i).status for i in ids] == ["dead", "dead", "sent"]
    return ids


# ----------------------------------------------------------------------------- who may open what


@pytest.mark.parametrize("role,systems,inbound,outbound,edit", [
    ("admin", 200, 200, 200, 200), ("operator", 200, 403, 200, 403), ("auditor", 200, 200, 200, 403),
    ("department", 403, 403, 403, 403), ("grid_worker", 403, 403, 403, 403)])
def test_roles(ctx: HubContext, role: str, systems: int, inbound: int, outbound: int, edit: int) -> None:
    client = signed_in(ctx, role)
    assert client.get("/console/systems").status_code == systems
    assert client.get("/console/inbound").status_code == inbound
    assert client.get("/console/outbound").status_code == outbound
    assert client.get("/console/systems/fake").status_code == edit
    assert client.get("/console/systems/new").status_code == edit
    header = client.get("/console/").get_data(as_text=True)
    assert ('href="/console/systems"' in header) == (systems == 200)
    assert ('href="/console/outbound"' in header) == (outbound == 200)


@pytest.mark.parametrize("path", ["/console/systems/fake", "/console/systems/new", "/console/systems/fake/test",
                                  "/console/systems/fake/circuit/reset", "/console/systems/fake/reconcile",
                                  "/console/inbound/replay", "/console/outbound/replay"])
def test_only_admins_post_and_always_with_csrf(ctx: HubContext, path: str) -> None:
    for role in ("operator", "auditor"):
        assert post(signed_in(ctx, role), path, {"ids": "1"}).status_code == 403
    admin = signed_in(ctx)
    assert admin.post(path, data={"ids": "1"}).status_code == 400
    assert admin.post(path, data={"ids": "1", "csrf": "forged"}).status_code == 400
    assert audit_entries(ctx, "system.update") == audit_entries(ctx, "outbound.replay") == []


# ----------------------------------------------------------------------------- 系统: health, plugins, totals


def test_systems_page_shows_live_health_plugins_and_totals(ctx: HubContext, dead: list[int]) -> None:
    quarantined(ctx)
    page = signed_in(ctx, "auditor").get("/console/systems").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="10">' in page
    status = re.search(r'id="system-status-fake" class="badge badge-(\w+)"[^>]*>([^<]+)<', page)
    assert status is not None and status.groups() == ("degraded", "异常")  # dead letters and quarantine
    assert re.search(r'id="total-quarantined" href="/console/inbound"><strong>1</strong>', page)
    assert re.search(r'id="total-dead" href="/console/outbound\?status=dead"><strong>2</strong>', page)
    assert 'id="plugin-row-' in page and "fakesys" in page and "hub_register_system_types" in page
    assert "system-test-fake" not in page and "system-add" not in page  # auditors change nothing
    operator = signed_in(ctx, "operator").get("/console/systems").get_data(as_text=True)
    assert 'href="/console/inbound"' not in operator  # a link the operator could not open
    scoped = signed_in(ctx, "admin", scope="310104002").get("/console/systems").get_data(as_text=True)
    assert re.search(r'id="total-dead" [^>]*><strong>0</strong>', scoped)  # another district's case
    assert re.search(r'id="total-quarantined" [^>]*><strong>0</strong>', scoped)


def test_disabled_and_down_systems_have_their_own_badge(ctx: HubContext) -> None:
    with ctx.db.session() as s:
        for _ in range(circuit.FAILURE_THRESHOLD):
            circuit.record(s, "fake", transient_failure=True, error="503")
    client = signed_in(ctx)
    assert 'badge badge-down' in client.get("/console/systems").get_data(as_text=True)
    with ctx.db.session() as s:
        system = s.scalar(select(System).where(System.key == "fake"))
        assert system is not None
        system.enabled = False
    assert 'badge badge-disabled' in client.get("/console/systems").get_data(as_text=True)


# ----------------------------------------------------------------------------- add and edit


def test_adding_a_system_validates_then_stores_it_with_its_mapping_and_audit(ctx: HubContext) -> None:
    client = signed_in(ctx)
    first = client.get("/console/systems/new").get_data(as_text=True)
    assert 'id="plugin-choice"' in first and 'value="fakesys"' in first
    form = client.get("/console/systems/new?plugin=fakesys").get_data(as_text=True)
    assert 'id="cred-secret" name="cred-secret" type="password"' in form and "<label for=\"cred-secret\"" in form
    bad = post(client, "/console/systems/new", {
        "plugin": "fakesys", "key": "New Key", "name": "", "base_url": "https://u:p@host/", "poll_interval_s": "1",
        "settings": "a: [1", "cred-secret": "s3cret-typed"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422
    for name in ("key", "name", "base_url", "poll_interval_s", "settings"):
        assert f'id="{name}-error"' in text and f'aria-describedby="{name}-error"' in text
    assert "s3cret-typed" not in text  # a typed secret is not echoed back either
    assert post(client, "/console/systems/new", {"plugin": "fakesys", "key": "fake", "name": "x",
                                                 "poll_interval_s": "30"}).status_code == 422  # taken
    assert post(client, "/console/systems/new", {"plugin": "nope", "key": "x2", "name": "x",
                                                 "poll_interval_s": "30"}).status_code == 422
    list_settings = post(client, "/console/systems/new", {"plugin": "fakesys", "key": "x3", "name": "x",
                                                          "poll_interval_s": "30", "settings": "- 1"})
    assert list_settings.status_code == 422 and "键值对" in list_settings.get_data(as_text=True)
    done = post(client, "/console/systems/new", {
        "plugin": "fakesys", "key": "street2", "name": "二号街道", "base_url": "https://example.test/api",
        "poll_interval_s": "60", "enabled": "1", "settings": '{"page_size": 50, "units": ["A"]}',
        "cred-secret": "s3cret-typed"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/systems/street2")
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == "street2"))
        assert system is not None and (system.name, system.poll_interval_s, system.enabled) == ("二号街道", 60, True)
        assert system.settings == {"page_size": 50, "units": ["A"]}
        assert system_config(ctx, system).credentials == {"secret": "s3cret-typed"}
        assert s.scalar(select(MappingVersion.active).where(MappingVersion.system_key == "street2")) is True
    (entry,) = audit_entries(ctx, "system.create")
    assert entry.before is None and entry.after["name"] == "二号街道" and entry.after["new_values_for"] == ["secret"]
    assert "s3cret-typed" not in json.dumps(entry.after, ensure_ascii=False)
    assert "s3cret-typed" not in client.get("/console/systems/street2").get_data(as_text=True)


def test_editing_keeps_a_credential_left_empty_and_replaces_a_typed_one(ctx: HubContext) -> None:
    client = signed_in(ctx)
    page = client.get("/console/systems/fake").get_data(as_text=True)
    assert SECRET not in page and "已设置" in page and 'name="key"' not in page  # the key is fixed
    kept = post(client, "/console/systems/fake", {"name": "测试改名", "poll_interval_s": "45",
                                                  "settings": "timeout_s: 5", "cred-secret": ""})
    assert kept.status_code == 302
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == "fake"))
        assert system is not None and (system.name, system.enabled, system.settings) == ("测试改名", False,
                                                                                          {"timeout_s": 5})
        assert system_config(ctx, system).credentials == {"secret": SECRET}
    post(client, "/console/systems/fake", {"name": "测试", "poll_interval_s": "45", "enabled": "1",
                                           "cred-secret": "rotated-value-9"})
    with ctx.db.read_session() as s:
        system = s.scalar(select(System).where(System.key == "fake"))
        assert system is not None and system_config(ctx, system).credentials == {"secret": "rotated-value-9"}
    first, second = audit_entries(ctx, "system.update")
    assert (first.before["name"], first.after["name"], first.after["enabled"]) == ("测试", "测试改名", False)
    assert first.after["new_values_for"] == [] and second.after["new_values_for"] == ["secret"]
    logged = json.dumps([e.before for e in (first, second)] + [e.after for e in (first, second)])
    assert SECRET not in logged and "rotated-value-9" not in logged
    assert client.get("/console/systems/nope").status_code == 404


# ----------------------------------------------------------------------------- test, reset, reconcile


def test_test_connection_calls_the_connector_and_masks_its_secrets(ctx: HubContext) -> None:
    client = signed_in(ctx)
    ok = post(client, "/console/systems/fake/test").get_data(as_text=True)
    assert 'id="test-result" class="result result-ok"' in ok and '<p id="test-message">fake</p>' in ok
    assert 'http-equiv="refresh"' not in ok  # the answer stays on screen

    def refuses() -> Any:
        raise PermissionError(f"401 invalid secret {SECRET}")

    fake_connector(ctx).test_connection = refuses  # type: ignore[method-assign]
    bad = post(client, "/console/systems/fake/test").get_data(as_text=True)
    assert "result-bad" in bad and "PermissionError: 401 invalid secret ***" in bad and SECRET not in bad
    assert "<li>kind：permanent</li>" in bad
    assert post(client, "/console/systems/nope/test").status_code == 404


def test_circuit_reset_closes_the_breaker_and_is_audited(ctx: HubContext) -> None:
    with ctx.db.session() as s:
        for _ in range(circuit.FAILURE_THRESHOLD):
            circuit.record(s, "fake", transient_failure=True, error="503")
    client = signed_in(ctx)
    assert "断开（暂停外发）" in client.get("/console/systems/fake").get_data(as_text=True)
    done = post(client, "/console/systems/fake/circuit/reset")
    assert done.status_code == 302
    with ctx.db.read_session() as s:
        breaker = s.get(CircuitBreaker, "fake")
        assert breaker is not None and breaker.state == "closed" and breaker.failures == 0
    (entry,) = audit_entries(ctx, "system.circuit_reset")
    assert (entry.target_id, entry.before, entry.after) == ("fake", {"circuit": "open"}, {"circuit": "closed"})
    assert "断路器已复位" in client.get(done.headers["Location"]).get_data(as_text=True)


def test_reconcile_rereads_the_system_and_reports_drift(ctx: HubContext) -> None:
    ingest(ctx, record("R1"), record("R2"))
    fake_connector(ctx).current["R1"] = record("R1", v=2, st="DOING")  # R2 is gone from the system
    page = post(signed_in(ctx), "/console/systems/fake/reconcile")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="reconcile-result"' in text
    assert "检查 2 条，存入新快照 1 条" in text and "对方已无记录：R2" in text
    (entry,) = audit_entries(ctx, "system.reconcile")
    assert entry.after == {"checked": 2, "stored": 1, "ok": True}


# ----------------------------------------------------------------------------- 隔离区与重放


def test_quarantine_lists_and_shows_payloads_with_the_reporter_masked(ctx: HubContext) -> None:
    event_id = quarantined(ctx, phone="13812345678", name="王小明")
    client = signed_in(ctx, "auditor")
    listing = client.get("/console/inbound").get_data(as_text=True)
    assert f'id="inbound-row-{event_id}"' in listing and "映射错误" in listing and "Q1" in listing
    assert "inbound-replay-selected" not in listing  # auditors read only
    detail = html.unescape(client.get(f"/console/inbound/{event_id}").get_data(as_text=True))
    assert '"cat": "Z"' in detail and '"phone": "***"' in detail and '"name": "***"' in detail
    assert "13812345678" not in detail and "王小明" not in detail
    assert client.get("/console/inbound/999999").status_code == 404
    scoped = signed_in(ctx, "admin", scope="310104001")  # a payload of no case: not a scoped account's
    assert f"inbound-row-{event_id}" not in scoped.get("/console/inbound").get_data(as_text=True)
    assert scoped.get(f"/console/inbound/{event_id}").status_code == 404
    assert post(scoped, "/console/inbound/replay", {"one": str(event_id)}).status_code == 404


def test_replay_after_a_mapping_fix_shows_each_result_and_is_audited(ctx: HubContext) -> None:
    first, second = quarantined(ctx, "Q1"), quarantined(ctx, "Q2")
    client = signed_in(ctx)
    still = post(client, "/console/inbound/replay", {"one": str(first)}).get_data(as_text=True)
    assert f'id="replay-result-{first}" data-status="quarantined"' in still and "仍在隔离区" in still
    fixed = MAPPING.read_text(encoding="utf-8").replace('"B": garbage_exposed}', '"B": garbage_exposed, "Z": other}')
    with ctx.db.session() as s:
        create_version(s, "fake", fixed.replace("category: [A, B]", "category: [A, B, Z]"), activate=True)
    done = post(client, "/console/inbound/replay", {"ids": [str(first), str(second)], "action": "selected"})
    text = done.get_data(as_text=True)
    assert f'id="replay-result-{first}" data-status="processed"' in text
    assert f'id="replay-result-{second}" data-status="processed"' in text and "隔离区为空" in text
    assert post(client, "/console/inbound/replay", {"ids": str(first)}).status_code == 404  # not quarantined now
    assert post(client, "/console/inbound/replay", {"action": "selected"}).status_code == 400  # nothing ticked
    one, both = audit_entries(ctx, "inbound.replay")
    assert (one.target_id, one.after) == (str(first), {"results": {str(first): "quarantined"}})
    assert both.after == {"results": {str(first): "processed", str(second): "processed"}}


def test_replay_all_of_a_system(ctx: HubContext) -> None:
    quarantined(ctx, "Q1")
    quarantined(ctx, "Q2")
    page = post(signed_in(ctx), "/console/inbound/replay", {"action": "all", "system": "fake"})
    assert page.get_data(as_text=True).count('data-status="quarantined"') == 2
    (entry,) = audit_entries(ctx, "inbound.replay")
    assert entry.target_id == "fake" and len(entry.before["ids"]) == 2


# ----------------------------------------------------------------------------- 外发死信


def test_dead_letters_list_reasons_with_case_links_and_filters(ctx: HubContext, dead: list[int]) -> None:
    client = signed_in(ctx, "operator")
    page = client.get("/console/outbound").get_data(as_text=True)
    assert f'id="outbound-row-{dead[0]}" data-status="dead"' in page and f'id="outbound-row-{dead[2]}"' not in page
    assert "对方拒绝" in page and "refused: INVALID_STATE ***" in page and "13812345678" not in page
    case_id = row(ctx, dead[0]).case_id
    with ctx.db.read_session() as s:
        number = s.scalar(select(Case.number).where(Case.id == case_id))
    assert f'<a href="/console/work/cases/{case_id}">{number}</a>' in page
    assert "outbound-replay-selected" not in page  # operators read only
    sent = client.get("/console/outbound?status=sent&system=fake").get_data(as_text=True)
    assert f'id="outbound-row-{dead[2]}" data-status="sent"' in sent and f"outbound-row-{dead[0]}" not in sent
    everything = client.get("/console/outbound?status=all").get_data(as_text=True)
    assert all(f'id="outbound-row-{i}"' in everything for i in dead)
    waiting = put(ctx, "k4")
    pending = client.get("/console/outbound?status=pending").get_data(as_text=True)
    assert f'id="outbound-row-{waiting}" data-status="pending"' in pending and "待发送" in pending
    elsewhere = signed_in(ctx, "operator", scope="310104002").get("/console/outbound?status=all")
    assert "outbound-row-" not in elsewhere.get_data(as_text=True)


def test_replay_selected_then_a_whole_system_audited(ctx: HubContext, dead: list[int]) -> None:
    client = signed_in(ctx)
    one = post(client, "/console/outbound/replay", {"one": str(dead[0]), "status": "dead", "filter_system": "fake"})
    assert one.status_code == 302 and "status=dead" in one.headers["Location"]
    assert row(ctx, dead[0]).status == "pending" and row(ctx, dead[1]).status == "dead"
    assert "已重放 1 条死信" in client.get(one.headers["Location"]).get_data(as_text=True)
    post(client, "/console/outbound/replay", {"action": "system", "system": "fake"})
    assert row(ctx, dead[1]).status == "pending"
    assert post(client, "/console/outbound/replay", {"action": "system", "system": "nope"}).status_code == 404
    assert post(client, "/console/outbound/replay", {"action": "selected"}).status_code == 400
    assert post(client, "/console/outbound/replay", {"ids": "abc"}).status_code == 400
    first, second = audit_entries(ctx, "outbound.replay")
    assert (first.target_id, first.before, first.after) == (str(dead[0]), {"ids": [dead[0]], "system": None},
                                                            {"replayed": 1})
    assert (second.target_id, second.after) == ("fake", {"replayed": 1})
    assert outbox.deliver_due(ctx)["sent"] == 2


def test_a_scoped_admin_cannot_replay_another_districts_dead_letters(ctx: HubContext, dead: list[int]) -> None:
    client = signed_in(ctx, "admin", scope="310104002")
    assert post(client, "/console/outbound/replay", {"ids": [str(dead[0])]}).status_code == 404
    post(client, "/console/outbound/replay", {"action": "system", "system": "fake"})  # none of them are its own
    with ctx.db.read_session() as s:
        assert {m.status for m in s.scalars(select(OutboundMessage).where(OutboundMessage.id.in_(dead[:2])))} == {
            "dead"}
    (entry,) = audit_entries(ctx, "outbound.replay")
    assert entry.after == {"replayed": 0}
