"""The console in a real headless Chromium against a served hub wired to the four simulators:
sign in, watch cases form, jurisdiction by URL, accounts and the audit log, a mapping rolled back,
forms usable by keyboard and labelled. Screenshots of each page land in test-artifacts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.context import HubContext
from hub.models import AuditEntry, Case, Ticket
from hub.services.mapping_versions import active_version, create_version
from hub.workers.poller import poll_once
from tests.browser.conftest import PASSWORD, make_user, shot, sign_in
from tests.support.hotline12345_side import SYSTEM as HOTLINE
from tests.support.hotline12345_side import take_call
from tests.unit.hub.test_dedup_ops import _propose

DCM = "city_management"

pytestmark = pytest.mark.timeout(120)


def cases_from_12345(ctx: HubContext, cluster: Any, n: int = 2) -> list[Case]:
    for i in range(n):
        take_call(cluster, sqbt=f"占道经营{i}", sqnr=f"斜土路{100 + i * 300}号门口有流动摊贩占道经营，影响通行。",
                  zb=f"{121.4430 + i * 0.004:.4f},31.1940")  # BD-09, inside the sandbox district
    poll_once(ctx, HOTLINE)
    with ctx.db.read_session() as s:
        return list(s.scalars(select(Case).order_by(Case.id)))


def case_from_dcm(ctx: HubContext, cluster: Any) -> Case:
    """A 数字城管 inspector's case: the platform gives it its 单元网格 code (jurisdiction)."""
    cluster.sim(DCM).file_case({"bigClass": "05", "smallClass": "0504", "description": "店外经营占用人行道",
                                "address": "斜土路1200号", "x": 3_449_500.0, "y": 501_200.0})
    poll_once(ctx, DCM)
    with ctx.db.read_session() as s:
        case = s.scalars(select(Case).order_by(Case.id.desc())).first()
        assert case is not None
        return case


def test_sign_in_watch_cases_and_open_one(hub_ctx: HubContext, connected: Any, hub_server: Any, page: Any) -> None:
    cases = cases_from_12345(hub_ctx, connected)
    assert cases
    make_user(hub_ctx, "zhang", role="operator")
    page.goto(f"{hub_server.url}/console/")
    assert "/console/login" in page.url  # not signed in: the login page
    sign_in(page, hub_server.url, "zhang", "wrong-password-9")
    assert page.get_by_role("alert").inner_text().startswith("用户名或密码错误")
    shot(page, "login-error")
    sign_in(page, hub_server.url, "zhang")
    assert page.locator("#case-total").inner_text() == str(len(cases))
    shot(page, "cases")
    page.get_by_role("link", name=cases[0].number).click()
    page.wait_for_load_state()
    assert cases[0].number in page.content() and HOTLINE in page.content()
    shot(page, "case")


def test_a_street_operator_cannot_open_another_streets_case_by_url(hub_ctx: HubContext, connected: Any,
                                                                    hub_server: Any, page: Any) -> None:
    case = case_from_dcm(hub_ctx, connected)
    assert len(case.grid_code) == 15, case.grid_code
    own_street = case.grid_code[:9]
    other_street = own_street[:6] + ("999" if own_street[6:9] != "999" else "998")
    make_user(hub_ctx, "mine", role="operator", scope=own_street)
    make_user(hub_ctx, "other", role="operator", scope=other_street)
    sign_in(page, hub_server.url, "other")
    assert page.locator("#case-total").count() == 1
    assert case.number not in page.content()  # not listed
    answer = page.goto(f"{hub_server.url}/console/work/cases/{case.id}")
    assert answer is not None and answer.status == 404  # and not reachable by URL
    shot(page, "case-outside-jurisdiction")
    page.context.clear_cookies()
    sign_in(page, hub_server.url, "mine")
    answer = page.goto(f"{hub_server.url}/console/work/cases/{case.id}")
    assert answer is not None and answer.status == 200 and case.number in page.content()


def test_an_admin_creates_an_account_and_the_auditor_sees_it(hub_ctx: HubContext, hub_server: Any,
                                                            page: Any) -> None:
    make_user(hub_ctx, "root")
    make_user(hub_ctx, "audit1", role="auditor")
    sign_in(page, hub_server.url, "root")
    page.get_by_role("link", name="账号").click()
    page.wait_for_load_state()
    page.get_by_label("用户名").fill("liu")
    page.get_by_label("姓名").fill("刘网格")
    page.get_by_label("角色").select_option("grid_worker")
    page.get_by_label(re.compile("辖区")).fill("31010")  # not a district, street, community or grid
    page.get_by_label(re.compile("初始密码")).fill(PASSWORD)
    page.get_by_role("button", name="创建").click()
    page.wait_for_load_state()
    error = page.locator("#scope + p[role=alert]")
    assert "辖区" in error.inner_text() and page.get_by_label(re.compile("辖区")).get_attribute(
        "aria-invalid") == "true"
    shot(page, "users-error")
    page.get_by_label(re.compile("辖区")).fill("310104001")
    page.get_by_label(re.compile("初始密码")).fill(PASSWORD)
    page.get_by_role("button", name="创建").click()
    page.wait_for_load_state()
    assert page.get_by_role("cell", name="liu", exact=True).count() == 1
    shot(page, "users")
    page.context.clear_cookies()
    sign_in(page, hub_server.url, "audit1")
    page.get_by_role("link", name="审计日志").click()
    page.wait_for_load_state()
    assert "user.create" in page.content() and "310104001" in page.content() and PASSWORD not in page.content()
    shot(page, "audit")


def test_forms_are_labelled_and_work_from_the_keyboard(hub_ctx: HubContext, hub_server: Any, page: Any) -> None:
    make_user(hub_ctx, "kb")
    page.goto(f"{hub_server.url}/console/login")
    assert page.evaluate("document.activeElement.id") == "username"  # autofocus on the first field
    page.keyboard.type("kb")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form
    assert "/console/login" not in page.url
    for path in ("/console/login", "/console/users"):
        page.goto(f"{hub_server.url}{path}")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name || e.id)""")
        assert unlabelled == [], f"{path}: inputs without a label: {unlabelled}"


def test_connect_a_system_fix_a_broken_status_map_replay_and_roll_back(hub_ctx: HubContext, sandbox: Any,
                                                                       hub_server: Any, page: Any) -> None:
    """The console alone: connect 12345, see its orders quarantined by a status map that forgot
    20 (已派单待签收), fix the map, replay the quarantine into cases, roll the mapping back."""
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before activating
    make_user(hub_ctx, "admin1")
    sign_in(page, hub_server.url, "admin1")
    # connect the system
    page.goto(f"{hub_server.url}/console/systems/new")
    page.get_by_label(re.compile("选择插件类型")).select_option("hotline12345")
    page.locator("#plugin-next").click()
    page.wait_for_load_state()
    page.locator("#key").fill(HOTLINE)
    page.locator("#name").fill("12345 市民服务热线")
    page.locator("#base_url").fill(sandbox.urls[HOTLINE])
    page.locator("#settings").fill("units: [斜土路街道, 徐汇区城管执法局]")
    page.locator("#cred-app_key").fill("demo-app")
    page.locator("#cred-app_secret").fill("demo-secret-0001")
    page.locator("#system-save").click()
    page.wait_for_load_state()
    page.goto(f"{hub_server.url}/console/systems/{HOTLINE}")
    page.locator("#system-test").click()
    page.wait_for_load_state()
    assert "demo-secret-0001" not in page.content()  # credentials are write-only
    shot(page, "system-test-connection")
    # an earlier, broken mapping change: status 20 neither in the system's vocabulary nor mapped
    with hub_ctx.db.session() as s:
        text = active_version(s, HOTLINE).document  # type: ignore[union-attr]
        broken = re.sub(r'\n    "20": DISPATCHED[^\n]*', "", text)
        broken = broken.replace('statuses: ["10", "20", ', 'statuses: ["10", ')
        assert broken != text
        create_version(s, HOTLINE, broken, comment="精简状态表（误删 20）", activate=True)
    for i in range(3):
        take_call(sandbox, sqbt=f"占道经营{i}", sqnr=f"斜土路{100 + i * 300}号门口有流动摊贩占道经营，影响通行。")
    poll_once(hub_ctx, HOTLINE)
    with hub_ctx.db.read_session() as s:
        assert s.scalar(select(func.count(Case.id))) == 0
    page.goto(f"{hub_server.url}/console/inbound")
    assert page.locator("#inbound-table tbody tr").count() == 3
    shot(page, "inbound-quarantine")
    # fix it in the mapping editor (the YAML view) and activate
    page.goto(f"{hub_server.url}/console/systems/{HOTLINE}/mapping/edit?from=2")
    page.locator("#tab-yaml-button").click()
    draft = page.locator("#draft-yaml")
    fixed = draft.input_value().replace('statuses: ["10", ', 'statuses: ["10", "20", ').replace(
        "  inbound:\n", '  inbound:\n    "20": DISPATCHED\n', 1)
    draft.fill(fixed)
    page.locator("#draft-activate-button").click()
    page.wait_for_load_state()
    shot(page, "mapping-versions")
    # replay the quarantine: the orders become cases
    page.goto(f"{hub_server.url}/console/inbound")
    page.locator("#inbound-replay-all").click()
    page.wait_for_load_state()
    shot(page, "inbound-replayed")
    with hub_ctx.db.read_session() as s:
        assert s.scalar(select(func.count(Case.id))) == 3
        assert active_version(s, HOTLINE).version == 3  # type: ignore[union-attr]
    # and roll back to the plugin's default (version 1) with one click
    page.goto(f"{hub_server.url}/console/systems/{HOTLINE}/mapping")
    page.locator("#activate-1").click()
    page.wait_for_load_state()
    with hub_ctx.db.read_session() as s:
        assert active_version(s, HOTLINE).version == 1  # type: ignore[union-attr]
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert {"system.create", "mapping.create", "mapping.activate", "inbound.replay"} <= set(actions)


def test_an_operator_works_a_review_item(hub_ctx: HubContext, connected: Any, hub_server: Any, page: Any) -> None:
    first, second = cases_from_12345(hub_ctx, connected, 2)
    with hub_ctx.db.read_session() as s:
        ids = {c.id: s.scalar(select(Ticket.external_id).where(Ticket.case_id == c.id)) for c in (first, second)}
    review = _propose(hub_ctx, ids[second.id], ids[first.id], probability=0.89)
    make_user(hub_ctx, "reviewer", role="operator")
    sign_in(page, hub_server.url, "reviewer")
    page.get_by_role("link", name="复核队列").click()
    page.wait_for_load_state()
    page.locator(f"#review-row-{review} a").first.click()
    page.wait_for_load_state()
    assert page.locator("#review-contributions").is_visible()
    assert "89" in page.locator("#review-probability").inner_text()
    shot(page, "review-item")
    page.locator("#accept-note").fill("同一摊位，两次来电")
    page.locator("#accept-submit").click()
    page.wait_for_load_state()
    assert page.locator("#review-status").get_attribute("data-status") == "accepted"
    with hub_ctx.db.read_session() as s:
        moved = s.scalar(select(Ticket.case_id).where(Ticket.external_id == ids[second.id]))
    assert moved == first.id
    page.goto(f"{hub_server.url}/console/work/cases/{first.id}")
    assert page.locator("svg").count() >= 1 and ids[second.id] in page.content()  # both tickets, and the map
    shot(page, "work-case")
