"""The file-drop connector: one JSON file per record in a folder, read in file-name order.

The legacy system writes ``<something that sorts by time>.json`` (write to a temporary
name first, then rename: a rename is atomic, a half-written ``.json`` is not). The cursor
``last_file`` is the name of the last file handed to the hub; files are never moved or
deleted, so the folder stays the legacy system's own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.base import PermanentError, TransientError
from hub.facade import ConnectionReport, CursorStore, InboundSink, PollReport, RawRecord, SystemConfig

CURSOR = "last_file"
SUFFIX = ".json"


def int_setting(settings: Mapping[str, Any], name: str, default: int) -> int:
    """A positive integer setting (the default when missing or unusable)."""
    try:
        return max(1, int(settings.get(name, default)))
    except (TypeError, ValueError):
        return default


def record_of(text: str) -> RawRecord | None:
    """The raw record of one file's text, or None when it is not a record we can identify."""
    try:
        item = json.loads(text)
    except ValueError:
        return None
    if not isinstance(item, dict):
        return None
    record_id, version = item.get("id"), item.get("version")
    if not isinstance(record_id, str) or not record_id.strip():
        return None
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    # Re-serialized with sorted keys: the same record read twice gives the same text.
    raw = json.dumps(item, ensure_ascii=False, sort_keys=True)
    return RawRecord(event_id=f"{record_id}@{version}", external_id=record_id, version=version, raw=raw)


class FileDropConnector:
    """Reads new files from ``settings.inbox_dir``; one instance per configured system."""

    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.inbox_dir = Path(str(config.settings.get("inbox_dir", "")))
        self.batch_size = int_setting(config.settings, "batch_size", 100)
        self.max_files = int_setting(config.settings, "max_files_per_poll", 1000)

    def __repr__(self) -> str:
        return f"FileDropConnector({self.config.key!r}, {str(self.inbox_dir)!r})"

    def _names(self, after: str = "") -> list[str]:
        """Names of the record files after ``after``, in order."""
        if not str(self.config.settings.get("inbox_dir", "")):
            raise PermanentError("setting inbox_dir is missing")
        try:
            return sorted(p.name for p in self.inbox_dir.iterdir()
                          if p.suffix == SUFFIX and p.name > after and p.is_file())
        except OSError as exc:  # a network share that is away comes back by itself
            raise TransientError(f"inbox folder unreadable: {type(exc).__name__}") from exc

    def _read(self, name: str) -> tuple[str, bool]:
        """The file's text and whether it was valid UTF-8 (else with U+FFFD for the bad bytes)."""
        try:
            data = (self.inbox_dir / name).read_bytes()
        except OSError as exc:
            raise TransientError(f"file {name} unreadable: {type(exc).__name__}") from exc
        try:
            return data.decode("utf-8"), True
        except UnicodeDecodeError:
            return data.decode("utf-8", errors="replace"), False

    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        """Hand every file after the cursor to the hub, ``batch_size`` files per transaction."""
        report = PollReport()
        names = self._names(cursors.get(CURSOR) or "")
        todo, report.more = names[:self.max_files], len(names) > self.max_files
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            records = []
            for name in batch:
                text, utf8 = self._read(name)
                record = record_of(text) if utf8 else None
                if record is None:
                    # authentic but unidentifiable: kept in quarantine, never silently dropped
                    why = "JSON object with id (text) and version (integer)" if utf8 else "UTF-8"
                    sink.reject(f"file {name}: not a {why}", text)
                else:
                    records.append(record)
            report.read += len(batch)
            report.pages += 1
            # the cursor moves together with the records of this batch, or not at all
            report.stored += sink.store_many(records, cursor=(CURSOR, batch[-1]))
        log.debug("%s: %d files read, %d new", self.config.key, report.read, report.stored)
        return report

    def fetch(self, external_id: str) -> RawRecord | None:
        """The newest version of one record among all files (reconciliation)."""
        newest: RawRecord | None = None
        for name in self._names():
            text, utf8 = self._read(name)
            record = record_of(text) if utf8 else None
            if record is not None and record.external_id == external_id and (
                    newest is None or (record.version or 0) > (newest.version or 0)):
                newest = record
        return newest

    def test_connection(self) -> ConnectionReport:
        """The folder exists and can be listed."""
        try:
            count = len(self._names())
        except (PermanentError, TransientError) as exc:
            return ConnectionReport(ok=False, message=str(exc), detail={"kind": exc.kind})
        return ConnectionReport(ok=True, message=f"文件夹可读，现有 {count} 个记录文件", detail={"files": count})
