"""The console (first slice): sign in with an API token, watch cases form, see quarantine.

Full accounts, mapping editor and review queue come with the console issue; this slice already
enforces the same server-side rules as the API (token role and jurisdiction scope).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from hub.context import HubContext
from hub.models import Case, InboundEvent, Ticket
from hub.services.tokens import authenticate
from mappings import load_taxonomy
from mappings.canonical import STATUS_LABELS_ZH

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/console/static")
F = TypeVar("F", bound=Callable[..., Any])
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _ctx() -> HubContext:
    ctx: HubContext = current_app.extensions["gridhub"]
    return ctx


def signed_in(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = session.get("token")
        if not token:
            return redirect(url_for("console.login", next=request.path))
        with _ctx().db.session() as s:
            row = authenticate(s, token)
            if row is None:
                session.clear()
                return redirect(url_for("console.login"))
            g.caller = {"name": row.name, "role": row.role, "scope": row.scope}
        return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    return {"status_labels": STATUS_LABELS_ZH, "csrf_token": session["csrf"], "tz": SHANGHAI,
            "category_name": _category_name}


def _category_name(code: str) -> str:
    taxonomy = load_taxonomy()
    return taxonomy.name_of(code) if code in taxonomy.codes else code


def _check_csrf() -> None:
    """Every form post carries the session's CSRF token (no session token: refused too)."""
    expected = session.get("csrf")
    if not expected or not secrets.compare_digest(str(request.form.get("csrf", "")), expected):
        abort(400)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    error = ""
    if request.method == "POST":
        _check_csrf()
        token = request.form.get("token", "").strip()
        with _ctx().db.session() as s:
            row = authenticate(s, token) if token else None
        if row is None:
            error = "令牌无效或已吊销"
        else:
            session.clear()
            session["token"] = token
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/console") else url_for("console.cases"))
    return render_template("console/login.html", error=error)


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
@signed_in
def case_detail(case_id: int) -> str:
    scope = g.caller["scope"]
    with _ctx().db.read_session() as s:
        case = s.scalar(select(Case).where(Case.id == case_id)
                        .options(selectinload(Case.tickets), selectinload(Case.events)))
        if case is None or (scope and not case.grid_code.startswith(scope)):
            abort(404)
        return render_template("console/case.html", case=case)


@bp.get("/quarantine")
@signed_in
def quarantine() -> str:
    if g.caller["role"] not in ("admin", "auditor"):
        abort(403)
    with _ctx().db.read_session() as s:
        rows = list(s.scalars(select(InboundEvent).where(InboundEvent.status == "quarantined")
                              .order_by(InboundEvent.id.desc()).limit(200)))
        return render_template("console/quarantine.html", events=rows)
