"""The language switch in a real Chromium: sign in (Chinese by default), switch to English from the
header, see the navigation and the case list in English on the same page, switch back."""

from __future__ import annotations

import re
from typing import Any

import pytest

from hub.context import HubContext
from tests.browser.conftest import make_user, shot, sign_in
from tests.browser.test_console_browser import cases_from_12345

pytestmark = pytest.mark.timeout(120)
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_switch_to_english_and_back(hub_ctx: HubContext, connected: Any, hub_server: Any, page: Any) -> None:
    cases = cases_from_12345(hub_ctx, connected)
    make_user(hub_ctx, "li", role="operator")
    page.goto(f"{hub_server.url}/console/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    sign_in(page, hub_server.url, "li")
    page.goto(f"{hub_server.url}/console/work/cases")
    assert page.get_by_role("heading", level=1).inner_text() == "案件工作台"

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    assert page.url.endswith("/console/work/cases")  # back on the same page
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Case workbench"
    nav = page.locator("header nav a")
    labels = [nav.nth(i).inner_text() for i in range(nav.count())]
    assert "Review queue" in labels and "Case workbench" in labels
    assert not [label for label in labels if CJK.search(label)], labels
    headers = page.locator("#work-cases-table th").all_inner_texts()
    assert headers[:4] == ["Number", "Title", "Category", "Status"]
    row = page.locator(f"#case-row-{cases[0].id}")
    assert row.locator("td").nth(3).inner_text() in {"Reported", "Accepted", "Dispatched", "In progress"}
    assert page.locator("#work-case-total").inner_text() == str(len(cases))
    assert "All times are Beijing time" in page.content()
    shot(page, "cases-en")

    # the choice follows to other pages, and back to Chinese from the same switch
    page.get_by_role("link", name="Overview").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Overview: case activity"
    page.get_by_role("button", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", level=1).inner_text() == "总览：案件动态"
