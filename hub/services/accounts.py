"""Console accounts: scrypt password hashes, lock-out after repeated failures, roles and
jurisdiction, every change audited.

Why scrypt from the standard library (``hashlib.scrypt``): it is a memory-hard password hash the
console issue names, it needs no native extension beyond OpenSSL (already required by
``cryptography``), and the stored string carries its parameters, so they can be raised later
without invalidating existing hashes (``needs_rehash``).

Lock-out: ``MAX_FAILURES`` wrong passwords in a row lock the account for ``LOCK_MINUTES``; while
locked even the right password is refused (and says so, without telling whether it was right).
Unknown user names take the same time as known ones (a dummy hash is checked), so the answer
does not reveal which names exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.facade import HubError
from hub.models import User, utcnow
from hub.services import audit
from hub.services.tokens import ROLES

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 10
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
SCOPE = re.compile(r"^(\d{6}(\d{3}(\d{3}(\d{3})?)?)?)?$")  # "" | district | street | community | grid
ROLE_LABELS = {"admin": "管理员", "operator": "值班员", "department": "部门用户", "grid_worker": "网格员",
               "auditor": "审计员"}


class AccountError(HubError):
    """A refused account operation; ``field`` names the form field at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    encoded = f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r),
                                p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}$")


_DUMMY = hash_password("not-a-password", salt=b"\0" * 16)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位 / at least {MIN_PASSWORD} characters", "password")
    if password.isdigit() or password.isalpha():
        raise AccountError("密码须同时包含字母和数字或符号 / mix letters with digits or symbols", "password")


def check_scope(scope: str) -> str:
    scope = scope.strip()
    if not SCOPE.match(scope):
        raise AccountError("辖区须为 6/9/12/15 位网格编码前缀（区/街道/社区/网格），或留空表示全部 / "
                           "a district, street, community or grid code prefix, or empty", "scope")
    return scope


def user_row(user: User) -> dict[str, Any]:
    """What an admin sees of an account (never the hash)."""
    return {"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role,
            "scope": user.scope, "active": user.active,
            "locked": bool(user.locked_until and user.locked_until > utcnow()),
            "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None}


def create_user(session: Session, *, username: str, password: str, role: str, scope: str = "",
                display_name: str = "", actor: str, remote_addr: str = "") -> User:
    username = username.strip()
    if not USERNAME.match(username):
        raise AccountError("用户名为 2–64 位字母、数字、._- / 2-64 letters, digits, . _ -", "username")
    if role not in ROLES:
        raise AccountError(f"未知角色 {role!r} / unknown role", "role")
    check_password_rules(password)
    scope = check_scope(scope)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError("用户名已存在 / username taken", "username")
    user = User(username=username, display_name=display_name.strip()[:100] or username,
                password_hash=hash_password(password), role=role, scope=scope, active=True, failed_logins=0)
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.create", "user", user.username, None, user_row(user), remote_addr)
    return user


def update_user(session: Session, user: User, *, actor: str, remote_addr: str = "", **changes: Any) -> User:
    """Change role, scope, display name or active (each change audited before → after)."""
    before = user_row(user)
    if "role" in changes:
        if changes["role"] not in ROLES:
            raise AccountError(f"未知角色 {changes['role']!r} / unknown role", "role")
        user.role = changes["role"]
    if "scope" in changes:
        user.scope = check_scope(str(changes["scope"]))
    if "display_name" in changes:
        user.display_name = str(changes["display_name"]).strip()[:100] or user.username
    if "active" in changes:
        user.active = bool(changes["active"])
        if user.active:
            user.failed_logins, user.locked_until = 0, None
    after = user_row(user)
    if after != before:
        audit.record(session, actor, "user.update", "user", user.username, before, after, remote_addr)
    return user


def set_password(session: Session, user: User, password: str, *, actor: str, remote_addr: str = "") -> None:
    check_password_rules(password)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    user.failed_logins, user.locked_until = 0, None
    audit.record(session, actor, "user.password", "user", user.username, None, {"changed": True}, remote_addr)


@dataclass(frozen=True)
class SignIn:
    user: User | None
    error: str = ""  # shown to the person; the same words whether the name or the password was wrong


def sign_in(session: Session, username: str, password: str, *, now: datetime | None = None,
            remote_addr: str = "") -> SignIn:
    """Check a username and password, counting failures and locking the account when needed."""
    now = now or utcnow()
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active:
        verify_password(password, _DUMMY)  # the same work as for a real account
        return SignIn(None, "用户名或密码错误 / wrong username or password")
    if user.locked_until is not None and user.locked_until > now:
        verify_password(password, _DUMMY)
        return SignIn(None, f"账号已锁定，请于 {LOCK_MINUTES} 分钟后再试 / account locked, try again later")
    if not verify_password(password, user.password_hash):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            user.failed_logins = 0
            audit.record(session, "hub", "user.locked", "user", user.username, None,
                         {"until": user.locked_until.isoformat(), "after_failures": MAX_FAILURES}, remote_addr)
            return SignIn(None, f"账号已锁定，请于 {LOCK_MINUTES} 分钟后再试 / account locked, try again later")
        return SignIn(None, "用户名或密码错误 / wrong username or password")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return SignIn(user)


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


__all__ = ["ROLES", "ROLE_LABELS", "AccountError", "SignIn", "check_scope", "create_user", "get_user",
           "hash_password", "list_users", "set_password", "sign_in", "update_user", "user_row", "verify_password"]
