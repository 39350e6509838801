"""Console tests in a real headless Chromium (Debian's ``chromium``, driven by Playwright with
``executable_path``: nothing is downloaded). The hub is served from the test process on an
ephemeral port (``hub_server``); screenshots of the key pages go to
``test-artifacts/screenshots/`` (kept by CI as artifacts).

Without Chromium the tests are skipped locally; ``scripts/test.sh`` sets
``GRIDHUB_REQUIRE_BROWSER=1`` so that in the suite a missing browser is a failure, not a skip
(``scripts/services.sh`` installs it)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.console import PASSWORD, make_user

__all__ = ["PASSWORD", "make_user", "shot", "sign_in"]

CHROMIUM = os.environ.get("GRIDHUB_CHROMIUM", "/usr/bin/chromium")
# the machine notes' flags: no sandbox as root, and no background networking on a closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("GRIDHUB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/console/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{re.sub(r'[^A-Za-z0-9_-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
