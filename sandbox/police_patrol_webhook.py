"""Webhook delivery of the police linkage system: signed, at least once, not ordered.

Every incident change becomes an event. Its body (with ``eventId`` and ``sentAt``) is frozen at
the first delivery attempt; timestamp and signature are made per attempt. Failed events are
retried at +1 min, +6 min, +36 min, +2 h 36 min, then every 2 h until 24 h after the first
attempt, then dropped; every delay is divided by ``time_scale``.

Fault extras read from the shared switches: ``duplicate_rate``, ``reorder`` (with
``reorder_hold_s``, default 2 s), ``drop_first_attempt_rate``; ``down`` stops all delivery.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests

from sandbox.faults import FaultSwitches

log = logging.getLogger(__name__)

RETRY_OFFSETS_S: tuple[int, ...] = (60, 360, 2160, 9360, *range(9360 + 7200, 24 * 3600 + 1, 7200))
DELIVERY_TIMEOUT_S = 5.0
POLL_S = 0.2


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    """``X-Police-Signature``: base64(HMAC-SHA256(secret, timestamp + "." + raw_body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Event:
    """One change of one 警情, waiting for (or done with) delivery."""

    number: int  # creation order, for (re)ordering batches
    event_id: str
    event_type: str
    seq: int
    jq: dict[str, Any]
    created_at: datetime
    due: datetime
    status: str = "pending"  # pending | delivered | dropped
    attempts: int = 0
    first_attempt_at: datetime | None = None
    body: bytes | None = None
    in_flight: bool = field(default=False, repr=False)

    def summary(self) -> dict[str, Any]:
        return {"eventId": self.event_id, "eventType": self.event_type, "seq": self.seq,
                "JJDBH": self.jq.get("JJDBH"), "status": self.status, "attempts": self.attempts,
                "due": self.due.isoformat(timespec="seconds") if self.status == "pending" else None}


class WebhookDispatcher:
    """Queues events and POSTs them to the hub; a daemon thread runs it once a URL is set."""

    def __init__(self, *, url: str | None, secret: str, clock: Callable[[], datetime],
                 faults: FaultSwitches, time_scale: float = 1.0, run_thread: bool = True) -> None:
        self.url = url
        self._secret = secret
        self.clock = clock
        self.faults = faults
        self.time_scale = time_scale if time_scale > 0 else 1.0
        self._run_thread = run_thread
        self._lock = threading.RLock()
        self._events: list[Event] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=5000)
        self._dropped: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def configure(self, url: str | None, secret: str | None = None) -> None:
        """Point the webhook at ``url`` (and change the shared secret)."""
        with self._lock:
            self.url = url or None
            if secret:
                self._secret = secret
        self._ensure_thread()
        self._wake.set()

    def enqueue(self, event_type: str, seq: int, jq: dict[str, Any]) -> Event:
        """Queue one change for delivery now."""
        now = self.clock()
        with self._lock:
            event = Event(len(self._events) + 1, str(uuid.uuid4()), event_type, seq, copy.deepcopy(jq),
                          now, now)
            self._events.append(event)
        self._ensure_thread()
        self._wake.set()
        return event

    def deliver_due(self, *, flush_held: bool = True) -> int:
        """Make every attempt that is due now; returns how many events were attempted.

        ``flush_held=False`` (the thread) keeps new events back while ``reorder`` gathers a batch.
        """
        now = self.clock()
        with self._lock:
            if not self.url or self.faults.down:
                return 0
            batch = [e for e in self._events if e.status == "pending" and not e.in_flight and e.due <= now]
            reorder = bool(self.faults.extra.get("reorder"))
            if reorder and not flush_held:
                hold = timedelta(seconds=float(self.faults.extra.get("reorder_hold_s", 2)))
                fresh = [e for e in batch if e.attempts == 0]
                if fresh and min(e.created_at for e in fresh) > now - hold:
                    batch = [e for e in batch if e.attempts > 0]
            batch.sort(key=lambda e: e.number, reverse=reorder)
            for event in batch:
                event.in_flight = True
            url, secret = self.url, self._secret
        for event in batch:
            self._attempt(event, url, secret)
        return len(batch)

    def _attempt(self, event: Event, url: str, secret: str) -> None:
        now = self.clock()
        with self._lock:
            if event.body is None:  # first attempt: freeze the body
                event.first_attempt_at = now
                payload = {"eventId": event.event_id, "eventType": event.event_type, "seq": event.seq,
                           "sentAt": now.isoformat(timespec="seconds"), "jq": event.jq}
                event.body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            event.attempts += 1
            first = event.attempts == 1
            lost = first and self.faults.chance(float(self.faults.extra.get("drop_first_attempt_rate", 0)))
            twice = first and self.faults.chance(float(self.faults.extra.get("duplicate_rate", 0)))
            body = event.body
        status: int | None
        error: str | None
        if lost:
            ok, status, error = False, None, "lost before reaching the hub (drop_first_attempt_rate)"
        else:
            ok, status, error = self._post(url, secret, event.event_id, body)
        with self._lock:
            self._note(event, "main", status, error, ok)
            event.in_flight = False
            self._settle(event, ok)
        if twice:  # an extra copy, as after a lost acknowledgement; never retried itself
            ok_copy, status, error = self._post(url, secret, event.event_id, body)
            with self._lock:
                self._note(event, "duplicate", status, error, ok_copy)

    def _settle(self, event: Event, ok: bool) -> None:
        if ok:
            event.status = "delivered"
            return
        assert event.first_attempt_at is not None
        if event.attempts - 1 < len(RETRY_OFFSETS_S):
            delay = RETRY_OFFSETS_S[event.attempts - 1] / self.time_scale
            event.due = event.first_attempt_at + timedelta(seconds=delay)
            return
        event.status = "dropped"
        self._dropped.append({**event.summary(), "droppedAt": self.clock().isoformat(timespec="seconds")})

    def _post(self, url: str, secret: str, event_id: str, body: bytes) -> tuple[bool, int | None, str | None]:
        timestamp = str(int(self.clock().timestamp()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Police-Timestamp": timestamp,
                   "X-Police-Event-Id": event_id, "X-Police-Signature": signature(secret, timestamp, body)}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=DELIVERY_TIMEOUT_S)
        except requests.RequestException as exc:
            return False, None, type(exc).__name__
        return 200 <= response.status_code < 300, response.status_code, None

    def _note(self, event: Event, copy_kind: str, status: int | None, error: str | None, ok: bool) -> None:
        self._log.append({"eventId": event.event_id, "eventType": event.event_type, "seq": event.seq,
                          "JJDBH": event.jq.get("JJDBH"), "attempt": event.attempts, "copy": copy_kind,
                          "at": self.clock().isoformat(timespec="seconds"), "httpStatus": status,
                          "error": error, "ok": ok})

    def state(self) -> dict[str, Any]:
        """Events, the delivery log and dropped events (no secret)."""
        with self._lock:
            return {"url": self.url, "timeScale": self.time_scale,
                    "events": [e.summary() for e in self._events],
                    "deliveries": list(self._log), "dropped": list(self._dropped)}

    # ----- the daemon thread ------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if not self._run_thread or not self.url or (self._thread and self._thread.is_alive()):
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="police-webhook", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(POLL_S)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.deliver_due(flush_held=False)
            except Exception:  # keep the dispatcher alive whatever one delivery does
                log.exception("police webhook dispatcher failed")

    def stop(self) -> None:
        """Stop the daemon thread (tests, shutdown)."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread and thread is not threading.current_thread():
            thread.join(timeout=DELIVERY_TIMEOUT_S + 1)
