"""The console: sign in with a console account, watch cases form, see quarantine; admins manage
accounts, auditors read the audit log.

Every rule is enforced here on the server, the same as in the API: the account's role decides
what a page allows, its jurisdiction (grid-code prefix) what it shows; a case outside it is a 404
whatever the URL. Sessions carry the account id and its password stamp: changing a password or
deactivating an account ends its other sessions.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from admin import i18n
from hub.context import HubContext
from hub.models import Case, InboundEvent, Ticket, User
from hub.services import accounts, audit
from mappings import load_taxonomy
from mappings.canonical import STATUS_LABELS_ZH

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/console/static")
F = TypeVar("F", bound=Callable[..., Any])
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str  # a Chinese msgid, shown through ``_()`` (extracted with the ``nav:2`` keyword)
    roles: tuple[str, ...]  # who sees the link (the page itself checks again)


# The header's links in order; page modules add theirs with ``nav`` when imported.
NAV: list[NavItem] = []


def nav(endpoint: str, label: str, *roles_: str) -> None:
    """Add a header link (shown to ``roles_``; every role when none given)."""
    NAV.append(NavItem(endpoint, label, roles_ or ("admin", "operator", "department", "grid_worker", "auditor")))


def _ctx() -> HubContext:
    ctx: HubContext = current_app.extensions["gridhub"]
    return ctx


def _stamp(user: User) -> str:
    return user.password_changed_at.isoformat()


def signed_in(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user_id = session.get("user_id")
        if not user_id:
            return redirect(url_for("console.login", next=request.path))
        with _ctx().db.read_session() as s:
            user = s.get(User, int(user_id))
            if user is None or not user.active or session.get("stamp") != _stamp(user):
                session.clear()
                return redirect(url_for("console.login"))
            g.caller = {"id": user.id, "name": user.username, "display_name": user.display_name,
                        "role": user.role, "scope": user.scope}
        return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def roles(*allowed: str) -> Callable[[F], F]:
    """Only these roles may open the page (403 otherwise); implies ``signed_in``."""
    def decorate(fn: F) -> F:
        @wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if g.caller["role"] not in allowed:
                abort(403)
            return fn(*args, **kwargs)
        return signed_in(inner)  # type: ignore[return-value]
    return decorate


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    lang = i18n.current_language()
    return {"status_labels": i18n.translated(STATUS_LABELS_ZH), "csrf_token": session["csrf"], "tz": SHANGHAI,
            "category_name": _category_name, "nav_items": NAV, "languages": i18n.LANGUAGES, "current_lang": lang,
            "html_lang": i18n.HTML_LANG[lang]}


@bp.app_template_filter("local")
def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (aware datetime or ISO text) as Asia/Shanghai wall time; "—" for none."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHANGHAI).strftime(fmt)


@bp.app_template_filter("one_language")
def one_language(message: str) -> str:
    """A hub message worded "中文 / English" in the request's language (see ``i18n.one_language``)."""
    return i18n.one_language(str(message))


def _category_name(code: str) -> str:
    taxonomy = load_taxonomy()
    return taxonomy.name_of(code) if code in taxonomy.codes else code


def _check_csrf() -> None:
    """Every form post carries the session's CSRF token (no session token: refused too)."""
    expected = session.get("csrf")
    if not expected or not secrets.compare_digest(str(request.form.get("csrf", "")), expected):
        abort(400)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    error = ""
    if request.method == "POST":
        _check_csrf()
        username = request.form.get("username", "")
        with _ctx().db.session() as s:
            result = accounts.sign_in(s, username, request.form.get("password", ""),
                                      remote_addr=request.remote_addr or "")
            stamp = _stamp(result.user) if result.user is not None else ""
            user_id = result.user.id if result.user is not None else None
        if user_id is None:
            error = i18n.one_language(result.error)
        else:
            lang = session.get("lang")
            session.clear()  # a fresh session (and CSRF token) after signing in: no fixation
            session["user_id"], session["stamp"] = user_id, stamp
            if lang:
                session["lang"] = lang
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/console") and not target.startswith("//")
                            else url_for("console.cases"))
    return render_template("console/login.html", error=error), 200 if not error else 401


@bp.post("/lang/<code>")
def set_language(code: str) -> Response:
    """The header's 中文 | English switch: kept in the session and a long-lived cookie (so the
    sign-in page remembers it too), then back to the page the person was on — only a console
    path on this site, never an address taken as-is from the form (no open redirect)."""
    _check_csrf()
    if code not in i18n.LANGUAGES:
        abort(404)
    session["lang"] = code
    response = redirect(i18n.safe_next(request.form.get("next", ""), url_for("console.cases")))
    response.set_cookie(i18n.COOKIE, code, max_age=i18n.COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


@bp.post("/logout")
def logout() -> Response:
    _check_csrf()
    session.clear()
    return redirect(url_for("console.login"))


@bp.get("/")
@signed_in
def cases() -> str:
    scope = g.caller["scope"]
    with _ctx().db.read_session() as s:
        q = select(Case).options(selectinload(Case.tickets))
        if scope:
            q = q.where(Case.grid_code.startswith(scope))
        rows = list(s.scalars(q.order_by(Case.updated_at.desc()).limit(100)))
        total = s.scalar(select(func.count(Case.id))) or 0
        tickets = s.scalar(select(func.count(Ticket.id))) or 0
        quarantined = s.scalar(select(func.count(InboundEvent.id))
                               .where(InboundEvent.status == "quarantined")) or 0
        multi = sum(1 for c in rows if len({t.system_key for t in c.tickets}) > 1)
        return render_template("console/cases.html", cases=rows, total=total, tickets=tickets,
                               quarantined=quarantined, multi=multi)


@bp.get("/cases/<int(max=2147483647):case_id>")
def case_detail(case_id: int) -> Response:
    """The case page moved to the 案件工作台; old links keep working (and are checked there)."""
    return redirect(url_for("console.work_case", case_id=case_id))


# ----- accounts (admin) and the audit log (admin, auditor) ------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
@roles("admin")
def users() -> Response | tuple[str, int]:
    errors: dict[str, str] = {}
    form: dict[str, str] = {}
    if request.method == "POST":
        _check_csrf()
        form = {k: request.form.get(k, "") for k in ("username", "display_name", "role", "scope")}
        try:
            with _ctx().db.session() as s:
                accounts.create_user(s, password=request.form.get("password", ""), actor=g.caller["name"],
                                     remote_addr=request.remote_addr or "", **form)
            flash(_("已创建账号 %(username)s", username=form["username"]))
            return redirect(url_for("console.users"))
        except accounts.AccountError as exc:
            errors[exc.field or "form"] = i18n.one_language(str(exc))
    with _ctx().db.read_session() as s:
        rows = [accounts.user_row(u) for u in accounts.list_users(s)]
    return render_template("console/users.html", users=rows, errors=errors, form=form,
                           roles=i18n.translated(accounts.ROLE_LABELS)), 200 if not errors else 422


@bp.route("/users/<int(max=2147483647):user_id>", methods=["GET", "POST"])
@roles("admin")
def user_edit(user_id: int) -> Response | tuple[str, int]:
    errors: dict[str, str] = {}
    if request.method == "POST":
        _check_csrf()
        try:
            with _ctx().db.session() as s:  # an AccountError rolls every part of the change back
                _apply_user_form(s, user_id)
            flash(_("已保存"))
            return redirect(url_for("console.users"))
        except accounts.AccountError as exc:
            errors[exc.field or "form"] = i18n.one_language(str(exc))
    with _ctx().db.read_session() as s:
        user = accounts.get_user(s, user_id)
        if user is None:
            abort(404)
        row = accounts.user_row(user)
    return render_template("console/user_edit.html", user=row, errors=errors,
                           roles=i18n.translated(accounts.ROLE_LABELS)), 200 if not errors else 422


def _apply_user_form(s: Any, user_id: int) -> None:
    user = accounts.get_user(s, user_id)
    if user is None:
        abort(404)
    actor, addr = g.caller["name"], request.remote_addr or ""
    if user.id == g.caller["id"] and (request.form.get("role") != "admin" or "active" not in request.form):
        raise accounts.AccountError(_("不能取消自己的管理员权限或停用自己"), "role")
    accounts.update_user(s, user, actor=actor, remote_addr=addr, role=request.form.get("role", user.role),
                         scope=request.form.get("scope", user.scope),
                         display_name=request.form.get("display_name", user.display_name),
                         active="active" in request.form)
    if request.form.get("password"):
        accounts.set_password(s, user, request.form["password"], actor=actor, remote_addr=addr)


@bp.get("/audit")
@roles("admin", "auditor")
def audit_log() -> str:
    page = max(1, request.args.get("page", 1, type=int) or 1)
    with _ctx().db.read_session() as s:
        total, rows = audit.list_entries(s, target_type=request.args.get("target_type") or None,
                                         actor=request.args.get("actor") or None, page=page)
        entries = [audit.entry_row(e) for e in rows]
    return render_template("console/audit.html", entries=entries, total=total, page=page)


nav("console.cases", "总览")
nav("console.users", "账号", "admin")
nav("console.audit_log", "审计日志", "admin", "auditor")

# Page modules register their routes on ``bp`` and their links with ``nav`` (imported last: they
# use the decorators above).
from admin import pages  # noqa: E402,F401
