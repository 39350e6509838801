"""The inbox: connectors store raw records here before anything else happens.

Unique per (system, event id): a redelivered webhook or a replayed feed page is a no-op.
After the transaction commits the new rows are handed to the workers (kombu), or processed
right away in ``inline`` mode.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.facade import RawRecord
from hub.models import InboundEvent, InboundStatus, PollCursor, utcnow

log = logging.getLogger(__name__)

_INSERT_SQLITE = sqlite_insert(InboundEvent.__table__).on_conflict_do_nothing(  # type: ignore[arg-type]
    index_elements=["system_key", "event_id"]).returning(InboundEvent.__table__.c.id)
_INSERT_PG = pg_insert(InboundEvent.__table__).on_conflict_do_nothing(  # type: ignore[arg-type]
    index_elements=["system_key", "event_id"]).returning(InboundEvent.__table__.c.id)


class Inbox:
    """InboundSink + CursorStore for one system."""

    def __init__(self, ctx: HubContext, system_key: str) -> None:
        self.ctx = ctx
        self.system_key = system_key

    # -- CursorStore
    def get(self, name: str) -> str | None:
        with self.ctx.db.read_session() as s:
            return s.scalar(select(PollCursor.value).where(PollCursor.system_key == self.system_key,
                                                           PollCursor.name == name))

    # -- InboundSink
    def store(self, record: RawRecord) -> bool:
        return self.store_many([record]) == 1

    def store_many(self, records: Sequence[RawRecord], cursor: tuple[str, str] | None = None) -> int:
        with self.ctx.db.session() as s:
            new_ids = [i for i in (self._insert(s, r) for r in records) if i is not None]
            if cursor is not None:
                self._set_cursor(s, *cursor)
        self._dispatch(new_ids)
        return len(new_ids)

    def reject(self, reason: str, raw: str, content_type: str = "application/json") -> None:
        """Keep an authentic record we cannot even identify, quarantined with the reason."""
        digest = hashlib.sha256(raw.encode()).hexdigest()[:24]
        with self.ctx.db.session() as s:
            row_id = self._insert(s, RawRecord(event_id=f"rejected:{digest}", external_id="", raw=raw,
                                               content_type=content_type, kind="rejected"))
            if row_id is not None:
                ev = s.get(InboundEvent, row_id)
                assert ev is not None
                ev.status = InboundStatus.QUARANTINED
                ev.error_kind = "schema"
                ev.error_reason = reason
        log.warning("inbound record from %s quarantined: %s", self.system_key, reason)

    def _insert(self, s: Session, r: RawRecord) -> int | None:
        values = dict(system_key=self.system_key, event_id=r.event_id, external_id=r.external_id,
                      kind=r.kind, version=r.version, payload=r.raw, content_type=r.content_type,
                      status=InboundStatus.PENDING, received_at=utcnow(), error_kind="",
                      error_reason="", attempts=0)
        statement = _INSERT_SQLITE if self.ctx.db.is_sqlite else _INSERT_PG
        # one statement for every record, on the connection: a page of records costs one compile
        return s.connection().execute(statement, values).scalar_one_or_none()

    def _set_cursor(self, s: Session, name: str, value: str) -> None:
        row = s.scalar(select(PollCursor).where(PollCursor.system_key == self.system_key,
                                                PollCursor.name == name))
        if row is None:
            s.add(PollCursor(system_key=self.system_key, name=name, value=value))
        else:
            row.value = value

    def set_cursor(self, name: str, value: str) -> None:
        with self.ctx.db.session() as s:
            self._set_cursor(s, name, value)

    def _dispatch(self, ids: list[int]) -> None:
        if not ids:
            return
        if self.ctx.config.ingest_mode == "inline":
            from hub.services.ingest import process_batch

            process_batch(self.ctx, ids)
        else:
            self.ctx.bus.publish_ingest(ids)
