"""Switchable faults shared by the four simulators.

Every simulator is a Flask app whose requests pass through ``FaultSwitches.before_request``
(installed by :func:`install`). Faults are set at run time through the simulator's own control
endpoint ``PUT /_sandbox/faults`` (JSON body, any subset of the fields of :class:`FaultSwitches`)
and read with ``GET /_sandbox/faults``. Control endpoints (``/_sandbox/...``) are never faulted.

Transport faults answer the way a gateway in front of a real system does: plain text or HTML,
never the system's business envelope (see shared/world/README.md).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from flask import Flask, Response, jsonify, request


@dataclass
class FaultSwitches:
    latency_ms: int = 0  # added to every faulted request
    error_5xx_rate: float = 0.0  # share of requests answered 502/503 by "the gateway"
    timeout_rate: float = 0.0  # share of requests that hang for timeout_s before answering 504
    timeout_s: float = 12.0
    rate_limit_per_s: float = 0.0  # 0 = off; beyond it: HTTP 429 with Retry-After
    retry_after_s: int = 1
    down: bool = False  # the whole system unreachable: every request 503 (gateway HTML)
    seed: int | None = None
    # simulator-specific switches (duplicate/out-of-order webhooks, maintenance, token revocation)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)
        self._window: list[float] = []

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        with self._lock:
            for key, value in data.items():
                if key == "extra" and isinstance(value, dict):
                    self.extra.update(value)
                elif key in names:
                    setattr(self, key, value)
                else:
                    self.extra[key] = value
            if "seed" in data:
                self._rng = random.Random(self.seed)

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if f.name == "extra":
                    self.extra.clear()
                else:
                    setattr(self, f.name, f.default)
            self._window.clear()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def _rate_limited(self) -> bool:
        if self.rate_limit_per_s <= 0:
            return False
        now = time.monotonic()
        with self._lock:
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.rate_limit_per_s:
                return True
            self._window.append(now)
            return False

    def before_request(self) -> Response | None:
        """Apply transport faults; return a response to short-circuit the request."""
        if request.path.startswith("/_sandbox"):
            return None
        if self.down:
            return Response("<html><body><h1>503 Service Unavailable</h1></body></html>", 503,
                            content_type="text/html")
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000.0)
        if self._rate_limited():
            return Response("Too Many Requests", 429, headers={"Retry-After": str(self.retry_after_s)},
                            content_type="text/plain")
        if self.chance(self.timeout_rate):
            time.sleep(self.timeout_s)
            return Response("Gateway Timeout", 504, content_type="text/plain")
        if self.chance(self.error_5xx_rate):
            return Response("<html><body>502 Bad Gateway</body></html>", 502, content_type="text/html")
        return None


def install(app: Flask, faults: FaultSwitches) -> None:
    """Wire the fault switches and their control endpoints into a simulator app."""
    app.before_request(faults.before_request)

    @app.get("/_sandbox/faults")
    def get_faults() -> Response:
        return jsonify(faults.as_dict())

    @app.put("/_sandbox/faults")
    def put_faults() -> Response:
        faults.update(request.get_json(force=True) or {})
        return jsonify(faults.as_dict())

    @app.delete("/_sandbox/faults")
    def reset_faults() -> Response:
        faults.reset()
        return jsonify(faults.as_dict())
