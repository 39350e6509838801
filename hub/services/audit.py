"""The audit log: every change an admin makes — who, when, what, before → after.

Entries are written in the transaction of the change they describe (a rolled-back change leaves
no entry; a committed one always has its entry) and are never edited. Values that are secrets
(credentials, passwords, tokens) are never written: callers pass what a person may read, and
``record`` masks keys that look like secrets as a second line of defence.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import AuditEntry, utcnow

MASK = "***"
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|credential|app_key|api_key)")


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if _SECRET_KEY.search(str(k)) and v not in (None, "", MASK) and not isinstance(v, bool)
                    else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def record(session: Session, actor: str, action: str, target_type: str, target_id: str,
           before: dict[str, Any] | None, after: dict[str, Any] | None, remote_addr: str = "") -> AuditEntry:
    entry = AuditEntry(at=utcnow(), actor=actor[:100], action=action[:64], target_type=target_type[:64],
                       target_id=str(target_id)[:100], before=_masked(before), after=_masked(after),
                       remote_addr=remote_addr[:64])
    session.add(entry)
    return entry


def list_entries(session: Session, *, target_type: str | None = None, target_id: str | None = None,
                 actor: str | None = None, page: int = 1, per_page: int = 50) -> tuple[int, list[AuditEntry]]:
    q = select(AuditEntry)
    if target_type:
        q = q.where(AuditEntry.target_type == target_type)
    if target_id:
        q = q.where(AuditEntry.target_id == target_id)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = list(session.scalars(q.order_by(AuditEntry.id.desc()).offset((page - 1) * per_page).limit(per_page)))
    return total, rows


def entry_row(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
            "target_type": e.target_type, "target_id": e.target_id, "before": e.before, "after": e.after,
            "remote_addr": e.remote_addr}


__all__ = ["entry_row", "list_entries", "record"]
