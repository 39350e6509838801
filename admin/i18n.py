"""The console's language: Simplified Chinese by default, English on request (Flask-Babel).

Message ids are the Chinese source strings themselves (``{{ _('案件工作台') }}``), so zh-CN needs
no catalog and a string nobody translated yet still reads correctly in Chinese. The English
catalog lives in ``admin/translations/en/LC_MESSAGES/messages.po``; its ``.mo`` is compiled from
it when the app starts if missing or older (no build step to forget). A person picks the language
with the header's switch (``/console/lang/<code>``, kept in the session and a cookie); dates stay
in Asia/Shanghai whatever the language.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel

TRANSLATIONS = Path(__file__).parent / "translations"
LANGUAGES: dict[str, str] = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "gridhub_lang"


def current_language() -> str:
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
        tmp = mo.with_suffix(".mo.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        tmp.replace(mo)


def init_app(app: Flask) -> None:
    try:
        compile_catalogs()
    except OSError:  # a read-only install: use whatever .mo is there
        pass
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    Babel(app, locale_selector=current_language, timezone_selector=lambda: "Asia/Shanghai")
