"""Answers that do not change while one write transaction runs, asked once per transaction.

Ingestion applies a whole poll page in one transaction; every new case asks which task item
covers its category, every link which systems take duplicate notices. Those answers live in
``session.info`` (a session is one transaction here: ``Database.session``). A service that
changes what is cached (the calendar, the task list) calls ``forget``; so does ingestion when a
savepoint rolls back, since the cache may hold rows the savepoint took back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

KEY = "gridhub_tx_cache"
T = TypeVar("T")


def cached(session: Session, kind: str, key: Any, compute: Callable[[], T]) -> T:
    store: dict[Any, Any] = session.info.setdefault(KEY, {}).setdefault(kind, {})
    if key not in store:
        store[key] = compute()
    return store[key]  # type: ignore[no-any-return]


def forget(session: Session) -> None:
    session.info.pop(KEY, None)
