"""The console's language: Simplified Chinese by default, English on request through the header's
switch (CSRF-checked, kept in the session and a cookie, never an open redirect), dates in
Asia/Shanghai either way — and the English catalog complete for every string the sources mark
today (extracted afresh here, so a new untranslated string anywhere in the console fails)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from admin import i18n
from hub.app import create_app
from hub.config import HubConfig
from hub.context import HubContext
from hub.services import accounts
from mappings.canonical import STATUS_LABELS_ZH
from tests.support import console
from tests.unit.hub.conftest import make_fake_ctx

ROOT = Path(__file__).resolve().parents[3]
PO = ROOT / "admin" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None, "N_": None,
            "nav": (2,)}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def ctx(hub_config: HubConfig) -> Iterator[HubContext]:
    context = make_fake_ctx(hub_config)
    yield context
    context.close()


def _switch(client: Any, code: str, next_: str = "/console/", token: str | None = None) -> Any:
    token = console.csrf(client) if token is None else token
    return client.post(f"/console/lang/{code}", data={"csrf": token, "next": next_})


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _nav(page: str) -> str:
    found = re.search(r"<nav>(.*?)</nav>", page, re.S)
    assert found is not None
    return found.group(1)


# ----------------------------------------------------------------------------- the switch


def test_chinese_is_the_default(ctx: HubContext) -> None:
    client = create_app(context=ctx).test_client()
    page = _text(client.get("/console/login"))
    assert '<html lang="zh-CN">' in page and "<h1>登录</h1>" in page
    assert 'id="lang-en"' in page and 'aria-current="true" lang="zh-CN">中文' in page  # the switch, before sign-in
    admin = console.signed_in(ctx)
    page = _text(admin.get("/console/work/cases"))
    assert "<h1>案件工作台</h1>" in page and ">复核队列</a>" in _nav(page) and ">账号</a>" in _nav(page)


def test_switch_keeps_the_language_in_session_and_cookie(ctx: HubContext) -> None:
    admin = console.signed_in(ctx)
    response = _switch(admin, "en", "/console/work/cases?status=CLOSED")
    assert response.status_code == 302 and response.headers["Location"] == "/console/work/cases?status=CLOSED"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert int(re.search(r"Max-Age=(\d+)", cookie).group(1)) >= 365 * 24 * 3600  # type: ignore[union-attr]
    with admin.session_transaction() as sess:
        assert sess["lang"] == "en"
    page = _text(admin.get("/console/work/cases"))
    assert '<html lang="en">' in page and "<h1>Case workbench</h1>" in page
    assert not CJK.search(_nav(page).split("<form")[0])  # every header link in English
    # the cookie alone (a new session, signed out) keeps English; signing in keeps it too
    fresh = create_app(context=ctx).test_client()
    fresh.set_cookie(i18n.COOKIE, "en")
    assert "<h1>Sign in</h1>" in _text(fresh.get("/console/login"))
    console.sign_in(fresh, "adminall")
    assert "<h1>Overview: case activity</h1>" in _text(fresh.get("/console/"))
    # and back to Chinese
    assert _switch(admin, "zh", "/console/work/cases").status_code == 302
    assert "<h1>案件工作台</h1>" in _text(admin.get("/console/work/cases"))


def test_switch_needs_csrf_and_a_known_language(ctx: HubContext) -> None:
    client = create_app(context=ctx).test_client()
    console.csrf(client)  # a session with a token exists: only a wrong or missing one is refused
    assert client.post("/console/lang/en", data={"next": "/console/login"}).status_code == 400
    assert _switch(client, "en", token="forged").status_code == 400
    assert "<h1>登录</h1>" in _text(client.get("/console/login"))
    assert _switch(client, "fr").status_code == 404
    assert client.get("/console/lang/en").status_code == 405  # a link cannot change it


@pytest.mark.parametrize("target", ["https://evil.example/console/", "//evil.example/console/", "/\\evil.example",
                                    "javascript:alert(1)", "/api/docs", "/console/logout", "/console/nope", ""])
def test_switch_is_no_open_redirect(ctx: HubContext, target: str) -> None:
    client = create_app(context=ctx).test_client()
    response = _switch(client, "en", target)
    assert response.status_code == 302 and response.headers["Location"] == "/console/"


# ----------------------------------------------------------------------------- pages in English


@pytest.mark.parametrize(("path", "zh", "en"), [
    ("/console/", "<h1>总览：案件动态</h1>", "<h1>Overview: case activity</h1>"),
    ("/console/work/review", "<h1>复核队列（疑似重复工单）</h1>", "<h1>Review queue (possible duplicate tickets)</h1>"),
    ("/console/systems", "<h1>系统（接入的部门系统）</h1>", "<h1>Systems (connected department systems)</h1>"),
    ("/console/outbound", "<th>错误类型</th>", "<th>Error type</th>"),
    ("/console/inbound", "<td colspan=\"8\">隔离区为空</td>", "<td colspan=\"8\">Quarantine is empty</td>"),
    ("/console/mappings", "<h1>映射配置（字段映射 mapping）</h1>", "<h1>Mappings (field mapping)</h1>"),
    ("/console/users", "<h2>新建账号</h2>", "<h2>New account</h2>"),
    ("/console/audit", "<h1>审计日志</h1>", "<h1>Audit log</h1>"),
])
def test_pages_render_in_either_language(ctx: HubContext, path: str, zh: str, en: str) -> None:
    admin = console.signed_in(ctx)
    assert zh in _text(admin.get(path))
    _switch(admin, "en")
    page = _text(admin.get(path))
    assert en in page and zh not in page


def test_labels_from_outside_admin_show_in_english(ctx: HubContext) -> None:
    """Canonical statuses and roles are Chinese words in the hub; the console translates them."""
    assert set(i18n.CANONICAL_STATUS_MSGIDS) == set(STATUS_LABELS_ZH.values())
    assert set(i18n.ROLE_MSGIDS) == set(accounts.ROLE_LABELS.values())
    admin = console.signed_in(ctx)
    _switch(admin, "en")
    page = _text(admin.get("/console/work/cases"))
    assert '<option value="IN_PROGRESS" >In progress</option>' in page
    assert '<option value="grid_worker" >Grid worker</option>' in _text(admin.get("/console/users"))


def test_dates_stay_in_shanghai_time_in_english(ctx: HubContext) -> None:
    from flask_babel import get_timezone

    from admin.views import local_time

    app = create_app(context=ctx)
    for lang in i18n.LANGUAGES:
        with app.test_request_context("/console/", headers={"Cookie": f"{i18n.COOKIE}={lang}"}):
            assert i18n.current_language() == lang
            assert str(get_timezone()) == "Asia/Shanghai"
            assert local_time(datetime(2026, 11, 23, 16, 30, tzinfo=UTC)) == "2026-11-24 00:30"


# ----------------------------------------------------------------------------- the catalog


def _extracted() -> dict[str, list[str]]:
    """Every msgid the console's sources mark now, with where (babel's extractor over admin/)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / "admin"), method_map, options_map, keywords=KEYWORDS):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, []).append(filename)
    return found


def test_extraction_finds_templates_python_and_nav_labels() -> None:
    found = _extracted()
    assert "templates/console/base.html" in found["退出（%(name)s）"]  # Jinja
    assert "views.py" in found["审计日志"] and "pages/work.py" in found["复核队列"]  # nav(endpoint, label)
    assert "pages/systems.py" in found["断开（暂停外发）"]  # lazy_gettext
    assert "i18n.py" in found["已结案"]  # N_ (canonical statuses)


def test_catalog_translates_every_extracted_msgid() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f)
    problems = []
    for msgid, where in sorted(_extracted().items()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string:
            problems.append(f"untranslated: {msgid!r} ({', '.join(sorted(set(where)))})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
    assert not problems, "run scripts/i18n.sh update and translate:\n" + "\n".join(problems)


def test_translations_keep_their_placeholders() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f)
    wrong = [m.id for m in catalog if m.id and m.string
             and sorted(PLACEHOLDER.findall(str(m.id))) != sorted(PLACEHOLDER.findall(str(m.string)))]
    assert not wrong
    untouched = [m.id for m in catalog if m.id and m.string and CJK.search(str(m.string))]
    assert not untouched  # an English catalog holds no Chinese text


def test_compiled_catalog_is_rebuilt_when_the_po_changes(tmp_path: Path) -> None:
    target = tmp_path / "en" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes(PO.read_bytes())
    i18n.compile_catalogs(tmp_path)
    mo = target / "messages.mo"
    assert mo.stat().st_size > 1000
    from babel.support import Translations

    with mo.open("rb") as f:
        assert Translations(f).gettext("案件工作台") == "Case workbench"


def test_the_hubs_bilingual_refusals_show_one_language(ctx: HubContext) -> None:
    console.make_user(ctx, "wang", role="operator")
    client = create_app(context=ctx).test_client()
    refused = _text(client.post("/console/login", data={"username": "wang", "password": "nope-12345678",
                                                        "csrf": console.csrf(client)}))
    assert "用户名或密码错误 / wrong username or password" in refused  # Chinese: as the hub words it
    _switch(client, "en", "/console/login")
    refused = _text(client.post("/console/login", data={"username": "wang", "password": "nope-12345678",
                                                        "csrf": console.csrf(client)}))
    assert '<p class="error" role="alert">wrong username or password</p>' in refused
