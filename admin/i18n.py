"""The console's language: Simplified Chinese by default, English on request (Flask-Babel).

Message ids are the Chinese source strings themselves (``{{ _('案件工作台') }}``), so zh-CN needs
no catalog and a string nobody translated yet still reads correctly in Chinese. The English
catalog lives in ``admin/translations/en/LC_MESSAGES/messages.po``; its ``.mo`` is compiled from
it when the app starts if missing or older (no build step to forget). A person picks the language
with the header's switch (``/console/lang/<code>``, kept in the session and a cookie); dates stay
in Asia/Shanghai whatever the language.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request, session
from flask_babel import Babel, gettext
from werkzeug.exceptions import HTTPException

TRANSLATIONS = Path(__file__).parent / "translations"
LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "gridhub_lang"
COOKIE_MAX_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes near 400 days
HTML_LANG: dict[str, str] = {"zh": "zh-CN", "en": "en"}


def current_language() -> str:
    """The session's choice, else the cookie's, else Chinese (also outside a request: CLI, workers)."""
    if not has_request_context():
        return DEFAULT
    lang = session.get("lang") or request.cookies.get(COOKIE) or DEFAULT
    return lang if lang in LANGUAGES else DEFAULT


def compile_catalogs(root: Path = TRANSLATIONS) -> None:
    """Compile every ``messages.po`` whose ``.mo`` is missing or older (babel's own compiler)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parent.parent.name)
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")  # several processes may start at once
        with tmp.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        tmp.replace(mo)


def init_app(app: Flask) -> None:
    with contextlib.suppress(OSError):  # a read-only install: use whatever .mo is there
        compile_catalogs()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=current_language, timezone_selector=lambda: "Asia/Shanghai")


def N_(message: str) -> str:
    """Mark a string for extraction without translating it here (it is translated when shown)."""
    return message


# Labels that live outside admin/ (mappings.canonical, hub.services.accounts) are Chinese words the
# hub also logs and stores; the console shows them through ``gettext`` at render time. Listing them
# here lets the extractor find them; a unit test keeps this list equal to the tables it mirrors.
CANONICAL_STATUS_MSGIDS = (N_("已上报"), N_("已受理"), N_("已派遣"), N_("处置中"), N_("已处置"), N_("已核查"),
                           N_("已结案"), N_("已退回"), N_("挂起/延期"), N_("重新办理"), N_("已撤销"), N_("重复件"))
ROLE_MSGIDS = (N_("管理员"), N_("值班员"), N_("部门用户"), N_("网格员"), N_("审计员"))


def translated(labels: Mapping[str, str]) -> dict[str, str]:
    """A label table in the request's language (its values are msgids)."""
    return {key: gettext(value) for key, value in labels.items()}


def one_language(message: str) -> str:
    """The hub's own refusals read "中文 / English" (they are also seen by API clients and in logs);
    in English the console shows the English half, in Chinese the message as it is."""
    _chinese, sep, english = message.partition(" / ")
    return english.strip() if sep and english.strip() and current_language() == "en" else message


def safe_next(target: str, fallback: str) -> str:
    """``target`` if it is a console page on this site that answers GET, else ``fallback``.

    Only a relative path under /console is accepted: no scheme, no host, no ``//`` or ``\\``
    tricks (browsers read ``/\\evil.example`` as another host), so the switch is no open redirect.
    """
    if not target or not target.startswith("/console") or "\\" in target or target.startswith("//"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    try:
        current_app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:  # no such page, or not one that answers GET (RequestRedirect too)
        return fallback
    return parts.path + (f"?{parts.query}" if parts.query else "")
