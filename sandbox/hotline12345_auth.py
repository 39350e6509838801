"""Request signing, replay protection and rate limiting of the 12345 open API v2."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

TIMESTAMP_SKEW_S = 300
NONCE_TTL = timedelta(minutes=10)
MIN_NONCE_LENGTH = 16


class HotlineError(Exception):
    """A business refusal, answered as HTTP 200 with ``{"code", "message", "data": null}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def string_to_sign(app_key: str, timestamp: str, nonce: str, method: str, path_and_query: str,
                   body: bytes) -> str:
    """The canonical string of the spec, lines joined by ``\\n``."""
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([app_key, timestamp, nonce, method.upper(), path_and_query, body_hash])


def sign(app_secret: str, app_key: str, timestamp: str, nonce: str, method: str, path_and_query: str,
         body: bytes = b"") -> str:
    """``X-Sign``: lower-case hex HMAC-SHA256 of :func:`string_to_sign` with the app secret."""
    message = string_to_sign(app_key, timestamp, nonce, method, path_and_query, body)
    return hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def raw_path_and_query(environ: Mapping[str, object]) -> str:
    """The request target exactly as sent on the wire.

    Servers hand it over as ``RAW_URI`` (werkzeug, gunicorn) or ``REQUEST_URI`` (waitress,
    uWSGI); only when neither is there is it rebuilt, which may differ in percent-encoding.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        if "://" in raw.split("?", 1)[0]:  # absolute-form request target
            parts = urlsplit(raw)
            raw = parts.path + ("?" + parts.query if parts.query else "")
    else:
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        query = str(environ.get("QUERY_STRING", ""))
        raw = quote(path.encode("latin-1"), safe="/%:@!$&'()*+,;=-._~") + ("?" + query if query else "")
    # WSGI strings are bytes decoded as latin-1; the wire itself is UTF-8.
    return raw.encode("latin-1").decode("utf-8", errors="replace")


class SignatureGuard:
    """Checks ``X-App-Key``/``X-Timestamp``/``X-Nonce``/``X-Sign`` of one request."""

    def __init__(self, app_key: str, app_secret: str, clock: Callable[[], datetime]) -> None:
        self._app_key = app_key
        self._app_secret = app_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._nonces: dict[tuple[str, str], datetime] = {}

    def check(self, headers: Any, method: str, path_and_query: str, body: bytes) -> str:
        """Return the app key, or raise :class:`HotlineError` 4010/4001/4011.

        ``headers`` is any mapping with ``get(name, default)`` (werkzeug ``Headers``).
        """
        app_key = str(headers.get("X-App-Key", ""))
        if not app_key or app_key != self._app_key:
            raise HotlineError(4010, "签名错误或时间戳过期: 未知的 X-App-Key")
        timestamp = headers.get("X-Timestamp", "")
        now = self._clock()
        try:
            sent_ms = int(timestamp)
        except ValueError:
            raise HotlineError(4010, "签名错误或时间戳过期: X-Timestamp") from None
        if abs(now.timestamp() - sent_ms / 1000.0) > TIMESTAMP_SKEW_S:
            raise HotlineError(4010, "签名错误或时间戳过期: 时间戳超出允许范围")
        nonce = headers.get("X-Nonce", "")
        if len(nonce) < MIN_NONCE_LENGTH:
            raise HotlineError(4001, "参数错误: X-Nonce")
        expected = sign(self._app_secret, app_key, timestamp, nonce, method, path_and_query, body)
        if not hmac.compare_digest(expected, headers.get("X-Sign", "")):
            raise HotlineError(4010, "签名错误或时间戳过期: X-Sign")
        self._remember_nonce(app_key, nonce, now)
        return app_key

    def _remember_nonce(self, app_key: str, nonce: str, now: datetime) -> None:
        with self._lock:
            self._nonces = {k: t for k, t in self._nonces.items() if now - t < NONCE_TTL}
            if (app_key, nonce) in self._nonces:
                raise HotlineError(4011, "nonce 重复")
            self._nonces[(app_key, nonce)] = now


class RateLimiter:
    """Sliding one-second window per app key (real time: it guards the real server)."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._lock = threading.Lock()
        self._calls: dict[str, list[float]] = {}

    def allow(self, app_key: str) -> bool:
        """Count one call; False when the key is over its budget for the last second."""
        if self.per_second <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._calls.get(app_key, []) if now - t < 1.0]
            allowed = len(recent) < self.per_second
            if allowed:
                recent.append(now)
            self._calls[app_key] = recent
            return allowed
