"""The grid worker's report page on a phone-sized screen, in a real headless Chromium: the phone's
position, the "already reported — add to it?" check, a photo, a tap on the grid map, and a
submission whose answer is lost on the way back (the retry gets the first result, not a second
report), then the draft surviving a reload."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hub.context import HubContext
from hub.models import Case
from hub.models.work import Attachment, GridReport
from tests.browser.conftest import FLAGS, make_user, shot, sign_in

pytestmark = pytest.mark.timeout(180)

SPOT = {"latitude": 31.18830, "longitude": 121.43660}  # WGS-84, 斜土路, in the sandbox's grid layer
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser: Any) -> Any:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", permissions=["geolocation"],
                                  geolocation=SPOT, **PHONE)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _fits_the_screen(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_report_from_a_phone(hub_ctx: HubContext, connected: Any, hub_server: Any, phone: Any) -> None:
    assert "--no-sandbox" in FLAGS
    street = hub_ctx.grids().locate(SPOT["longitude"], SPOT["latitude"])[:9]
    make_user(hub_ctx, "wangwu", role="grid_worker", scope=street)
    page = phone
    sign_in(page, hub_server.url, "wangwu")
    page.get_by_role("link", name="上报").click()
    page.wait_for_load_state()
    assert _fits_the_screen(page)
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)).map(e => e.name || e.id)""")
    assert unlabelled == []

    # 1. the phone's position, a photo: a new case
    page.get_by_label("问题类别").select_option(label="暴露垃圾")
    page.get_by_label("一句话描述").fill("斜土路人行道上堆着几袋生活垃圾")
    page.get_by_role("button", name="用手机定位").click()
    page.wait_for_function("document.getElementById('report-lat').value !== ''")
    assert page.locator("#report-place-status").inner_text() == "已定位（手机定位）"
    page.wait_for_selector("#report-nearby:not([hidden])")
    assert "将新建案件" in page.locator("#report-nearby-intro").inner_text()
    page.get_by_label("照片（最多 4 张）").set_input_files(
        [{"name": "site.png", "mimeType": "image/png", "buffer": PNG}])
    shot(page, "report-phone-form")
    with page.expect_navigation():
        page.get_by_role("button", name="提交上报").click()
    assert page.locator("#report-outcome").inner_text() == "已新建案件"
    first_number = page.locator("#report-case").inner_text()

    # 2. a second worker's eye on the same heap: the page offers the open case, the report joins it
    page.get_by_role("link", name="再报一件").click()
    page.wait_for_load_state()
    page.get_by_label("问题类别").select_option(label="建筑垃圾渣土")
    page.get_by_label("一句话描述").fill("同一处还有装修渣土")
    page.get_by_role("button", name="用手机定位").click()
    page.wait_for_selector(f"#nearby-{first_number}")
    assert "是否为同一问题" in page.locator("#report-nearby-intro").inner_text()
    shot(page, "report-phone-nearby")
    page.locator(f"#nearby-{first_number} button.attach").click()
    assert page.locator("#report-attach-to").input_value() == first_number
    with page.expect_navigation():
        page.get_by_role("button", name="提交上报").click()
    assert page.locator("#report-outcome").inner_text() == "已补充到您选择的案件"
    assert page.locator("#report-case").inner_text() == first_number

    # 3. a tap on the grid map, and an answer lost on the way back: the retry is not a second report
    page.get_by_role("link", name="再报一件").click()
    page.wait_for_load_state()
    page.get_by_label("问题类别").select_option(label="非法小广告")
    page.get_by_label("一句话描述").fill("小区门口电线杆上贴满小广告")
    tapped = page.locator("#report-map path").nth(10)  # only the worker's own grids are drawn
    tapped.click()
    assert tapped.get_attribute("class") == "here"
    assert page.locator("#report-place-status").inner_text() == "已在网格图上选点"
    assert page.locator("#report-source").input_value() == "map"
    lat, lng = float(page.locator("#report-lat").input_value()), float(page.locator("#report-lng").input_value())
    assert hub_ctx.grids().locate(lng, lat) == tapped.get_attribute("data-grid")
    client_id = page.locator("#report-client-id").input_value()

    def lose_the_answer(route: Any) -> None:
        route.fetch()  # the hub gets and stores the report ...
        route.abort("connectionreset")  # ... the phone never hears back

    page.route("**/console/report", lose_the_answer)
    page.get_by_role("button", name="提交上报").click()
    page.wait_for_selector("#report-retry:not([hidden])")
    assert "网络不稳定" in page.locator("#report-status").inner_text()
    page.unroute("**/console/report")
    page.reload()  # the draft is still there, with its draft id
    assert page.get_by_label("一句话描述").input_value() == "小区门口电线杆上贴满小广告"
    assert page.locator("#report-client-id").input_value() == client_id
    assert page.locator("#report-status").inner_text() == "已恢复未提交的草稿"
    with page.expect_navigation():
        page.get_by_role("button", name="提交上报").click()
    assert page.locator("#report-outcome").inner_text() == "已新建案件"
    assert _fits_the_screen(page)
    shot(page, "report-phone-done")
    assert page.evaluate("localStorage.getItem('gridhub-report-draft')") is None

    # 4. the session ended while the worker was typing: the page says so and keeps the draft
    page.get_by_role("link", name="再报一件").click()
    page.wait_for_load_state()
    page.get_by_label("问题类别").select_option(label="井盖缺损")
    page.get_by_label("一句话描述").fill("人行道井盖破损，有人差点踩空")
    page.get_by_role("button", name="用手机定位").click()
    page.wait_for_function("document.getElementById('report-lat').value !== ''")
    page.context.clear_cookies()
    page.get_by_role("button", name="提交上报").click()
    page.wait_for_selector("#report-retry:not([hidden])")
    assert "登录已过期" in page.locator("#report-status").inner_text()
    sign_in(page, hub_server.url, "wangwu")
    page.goto(f"{hub_server.url}/console/report")
    assert page.get_by_label("一句话描述").input_value() == "人行道井盖破损，有人差点踩空"
    with page.expect_navigation():
        page.get_by_role("button", name="提交上报").click()
    assert page.locator("#report-outcome").inner_text() == "已新建案件"

    with hub_ctx.db.read_session() as s:
        reports_ = s.scalars(select(GridReport).order_by(GridReport.id)).all()
        assert [r.outcome for r in reports_] == ["new_case", "attached", "new_case", "new_case"]
        assert [r.location_source for r in reports_] == ["gps", "gps", "map", "gps"]
        assert reports_[2].client_id == client_id
        first = s.scalar(select(Case).where(Case.number == first_number))
        assert first is not None
        assert [a.mime for a in s.scalars(select(Attachment).where(Attachment.case_id == first.id))] == ["image/png"]
