"""kombu messaging: the embedded default needs no server (filesystem transport under var/),
the scaled shape points GRIDHUB_BROKER_URL at RabbitMQ or Redis. Messages only *nudge*
workers: the inbox row in the database is the truth, and a sweep re-finds anything whose
message was lost."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

log = logging.getLogger(__name__)

INGEST_ROUTING_KEY = "ingest"
OUTBOUND_ROUTING_KEY = "outbound"


class Bus:
    def __init__(self, url: str, var_path: Path) -> None:
        self.url = url
        self.transport_options: dict[str, Any] = {}
        if url.startswith("filesystem"):
            folder = (var_path / "broker").resolve()
            for sub in ("queue", "processed", "control"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            self.transport_options = {
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"),
                "control_folder": str(folder / "control"),
                "store_processed": False,
            }
        self.exchange = Exchange("gridhub", type="direct", durable=True)
        self.ingest_queue = Queue("gridhub.ingest", self.exchange, routing_key=INGEST_ROUTING_KEY,
                                  durable=True)
        # outbound nudges: "the outbox has due rows"; the body says nothing the outbox does not.
        # Its own exchange: kombu's filesystem transport creates an exchange's binding table with
        # an unlocked truncate-then-write, so two processes binding *different* queues to one new
        # exchange at once can leave a corrupt table (seen: JSONDecodeError "Extra data"); with one
        # queue per exchange every writer writes the same bytes.
        self.outbound_exchange = Exchange("gridhub.outbound", type="direct", durable=True)
        self.outbound_queue = Queue("gridhub.outbound", self.outbound_exchange, routing_key=OUTBOUND_ROUTING_KEY,
                                    durable=True)
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    def __repr__(self) -> str:
        return f"Bus({self.safe_url})"

    @property
    def safe_url(self) -> str:
        """The broker URL without its password (for logs and the health page)."""
        conn = Connection(self.url)
        return str(conn.as_uri(include_password=False))

    def connection(self) -> Connection:
        return Connection(self.url, transport_options=self.transport_options)

    def publish_ingest(self, inbound_ids: list[int]) -> bool:
        """Ask a worker to process these inbox rows. False when the broker is unreachable:
        the rows stay pending and the workers' sweep picks them up."""
        if not inbound_ids:
            return True
        if self._publish({"ids": inbound_ids}, self.exchange, INGEST_ROUTING_KEY, self.ingest_queue):
            return True
        log.warning("%d inbound events left for the sweep", len(inbound_ids))
        return False

    def publish_outbound(self, count: int = 1) -> bool:
        """Nudge a delivery worker: the outbox has (``count``) new rows. Best effort: False when
        the broker is unreachable, and the delivery worker's periodic sweep finds the rows anyway."""
        if self._publish({"count": count}, self.outbound_exchange, OUTBOUND_ROUTING_KEY, self.outbound_queue):
            return True
        log.warning("%d outbound effects left for the delivery sweep", count)
        return False

    def _publish(self, body: dict[str, Any], exchange: Exchange, routing_key: str, queue: Queue) -> bool:
        try:
            with self._lock:
                if self._conn is None:
                    self._conn = self.connection()
                producer = self._conn.Producer(serializer="json")
                producer.publish(body, exchange=exchange, routing_key=routing_key, declare=[queue],
                                 retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2,
                                                           "interval_step": 0.5, "interval_max": 1})
            return True
        except Exception as exc:  # kombu raises many transport-specific types
            log.warning("broker unreachable (%s) publishing to %s", type(exc).__name__, routing_key)
            self._reset()
            return False

    def _reset(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.release()
                except Exception:  # closing a broken connection may fail again; nothing to do
                    log.debug("ignoring error while releasing a broken connection")
                self._conn = None

    def close(self) -> None:
        self._reset()
