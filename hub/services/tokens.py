"""API tokens: bearer secrets shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ApiToken, utcnow

ROLES = ("admin", "operator", "department", "grid_worker", "auditor")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, role: str, scope: str = "") -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    token = "gh_" + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(token), role=role, scope=scope))
    session.flush()
    return token


def authenticate(session: Session, token: str) -> ApiToken | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token),
                                                ApiToken.revoked.is_(False)))
    if row is not None:
        row.last_used_at = utcnow()
    return row
