"""Bearer-token authentication and role checks for the REST API (enforced server-side)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.services import audit
from hub.services.tokens import authenticate

F = TypeVar("F", bound=Callable[..., Any])


def hub_ctx() -> HubContext:
    ctx: HubContext = current_app.extensions["gridhub"]
    return ctx


def load_caller() -> None:
    """before_request of every API blueprint: 401 without a valid token."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        fail(401, "missing bearer token (Authorization: Bearer <token>)")
    with hub_ctx().db.session() as s:
        row = authenticate(s, token.strip())
        if row is None:
            fail(401, "invalid or revoked token")
        g.caller = {"id": row.id, "name": row.name, "role": row.role, "scope": row.scope}


def require_role(*roles: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            role = g.caller["role"]
            if role not in roles:
                fail(403, f"role {role!r} may not do this (needs one of: {', '.join(roles)})")
            return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


READERS = ("admin", "operator", "department", "grid_worker", "auditor")
ADMINS = ("admin",)


def audited(action: str, target_type: str, target_id: str, before: dict[str, Any] | None,
            after: dict[str, Any] | None, session: Session | None = None) -> None:
    """Record an admin's change in the audit log, as the caller, in ``session`` (the change's own
    transaction) or, for changes a service committed itself, in a transaction of its own."""
    actor, addr = str(g.caller["name"]), request.remote_addr or ""
    if session is not None:
        audit.record(session, actor, action, target_type, target_id, before, after, addr)
        return
    with hub_ctx().db.session() as s:
        audit.record(s, actor, action, target_type, target_id, before, after, addr)


def fail(status: int, message: str, **kwargs: Any) -> NoReturn:
    """Answer with a JSON error (flask-smorest's format) and stop the view."""
    abort(status, message=message, **kwargs)
    raise AssertionError("abort returned")  # pragma: no cover - abort always raises
