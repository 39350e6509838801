"""Console test helpers: an account, a signed-in test client, the CSRF token of a page."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from hub.app import create_app
from hub.context import HubContext
from hub.models import User
from hub.services import accounts

PASSWORD = "correct-horse-42"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def make_user(ctx: HubContext, username: str, role: str = "admin", scope: str = "",
              password: str = PASSWORD) -> str:
    """The account, created unless it exists already."""
    with ctx.db.session() as s:
        if s.scalar(select(User.id).where(User.username == username)) is None:
            accounts.create_user(s, username=username, password=password, role=role, scope=scope, actor="test")
    return username


def csrf(client: Any, path: str = "/console/login") -> str:
    """The CSRF token a page's forms carry (the session's)."""
    found = _CSRF.search(client.get(path).get_data(as_text=True))
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: Any, username: str, password: str = PASSWORD) -> Any:
    return client.post("/console/login", data={"username": username, "password": password, "csrf": csrf(client)})


def signed_in(ctx: HubContext, role: str = "admin", scope: str = "", username: str = "") -> Any:
    """A test client signed in as an account of ``role`` under ``scope`` (made if needed)."""
    username = make_user(ctx, username or f"{role}{scope or 'all'}", role, scope)
    client = create_app(context=ctx).test_client()
    sign_in(client, username)
    return client
