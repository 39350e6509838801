"""HMAC-signed REST/JSON with a business envelope (the 12345 open-API scheme).

Each request carries ``X-App-Key``, ``X-Timestamp`` (unix ms), ``X-Nonce`` and
``X-Sign`` = lower-hex HMAC-SHA256(app_secret, app_key, timestamp, nonce,
METHOD, path_and_query, hex(SHA256(body)) joined by newlines). The signed
``path_and_query`` is the request target exactly as sent, base path included,
so this client builds the URL itself and hands requests a prepared request
whose URL is never re-encoded; the JSON body is serialized once, and the same
bytes are hashed and sent.

Answers: transport trouble is an HTTP status (429, 5xx, from gateways as text
or HTML); business results are HTTP 200 with ``{"code", "message", "data"}``.
``request`` returns ``data`` of a ``code`` 0 envelope and raises otherwise,
classified by a code table given to the constructor.
"""

from __future__ import annotations

import hashlib
import hmac
import json as jsonlib
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from adapters.base import CodeKind, PermanentError, Transport, error_for_code, snippet
from adapters.http import raise_for_transport

# The hotline's code table: 4011 (nonce reused) succeeds with the fresh nonce
# the next attempt gets anyway; 4010 needs a clock or secret fix; 4009 and
# 4002 need a re-read and a decision, which is the caller's business.
HOTLINE_CODE_KINDS: Mapping[int, CodeKind] = {
    4001: "business",
    4002: "business",
    4004: "business",
    4009: "business",
    4010: "auth",
    4011: "transient",
    5000: "transient",
}

# Characters left as they are in a path; everything else is percent-encoded.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"

ParamsArg = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def sign(
    app_secret: str,
    app_key: str,
    timestamp_ms: int | str,
    nonce: str,
    method: str,
    path_and_query: str,
    body_bytes: bytes,
) -> str:
    """Return the lower-hex ``X-Sign`` value for one request."""
    body_hash = hashlib.sha256(body_bytes).hexdigest()
    string_to_sign = "\n".join([app_key, str(timestamp_ms), nonce, method.upper(), path_and_query, body_hash])
    return hmac.new(app_secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def default_nonce() -> str:
    """A random 32-character nonce (the hotline wants at least 16)."""
    return secrets.token_hex(16)


def build_target(base_path: str, path: str, params: ParamsArg = None) -> str:
    """The request target ``/base/path?query`` exactly as it goes on the wire.

    ``path`` is given unencoded (``/workorders/GD2026…``) and percent-encoded
    here; ``params`` keep their order, ``None`` values are left out, an empty
    string is sent as ``key=``.
    """
    if not path.startswith("/"):
        path = "/" + path
    target = quote(base_path.rstrip("/") + path, safe=_PATH_SAFE)
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params or ())
    query = urlencode([(key, _param_text(value)) for key, value in pairs if value is not None])
    return f"{target}?{query}" if query else target


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class SignedJsonClient:
    """Client of a signed REST/JSON API with a ``{"code", "message", "data"}`` envelope."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        transport: Transport,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = default_nonce,
        code_kinds: Mapping[int, CodeKind] = HOTLINE_CODE_KINDS,
    ) -> None:
        parts = urlsplit(base_url)
        if not parts.scheme or not parts.netloc:
            raise ValueError("base_url must be absolute, e.g. https://12345.example/openapi/v2")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self.transport = transport
        self.clock = clock
        self.nonce_factory = nonce_factory
        self.code_kinds = dict(code_kinds)

    def __repr__(self) -> str:
        return f"SignedJsonClient({self._origin}{self._base_path!s}, app_key={self.app_key!r})"

    def request(
        self,
        method: str,
        path: str,
        params: ParamsArg = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one signed request; return ``data`` of a ``code`` 0 envelope.

        ``path`` is relative to the base URL (``/workorders/changes``). Raises
        ``TransientError`` (connection, 429, 5xx, retryable codes),
        ``AuthError`` (401/403, code 4010), ``BusinessError`` (other codes),
        ``PermanentError`` (other 4xx, a malformed envelope).
        """
        method = method.upper()
        target = build_target(self._base_path, path, params)
        body = b"" if json is None else jsonlib.dumps(json, ensure_ascii=False).encode("utf-8")
        resp = self.transport.send(self._signed_request(method, target, body, headers))
        return self._unwrap(method, target, resp)

    def _signed_request(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str] | None
    ) -> requests.Request:
        timestamp = str(int(self.clock() * 1000))
        nonce = self.nonce_factory()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if body:
            all_headers["Content-Type"] = "application/json; charset=utf-8"
        all_headers.update(
            {
                "X-App-Key": self.app_key,
                "X-Timestamp": timestamp,
                "X-Nonce": nonce,
                "X-Sign": sign(self._app_secret, self.app_key, timestamp, nonce, method, target, body),
            }
        )
        return requests.Request(method, self._origin + target, headers=all_headers, data=body or None)

    def _unwrap(self, method: str, target: str, resp: requests.Response) -> Any:
        where = f"{method} {target.split('?', 1)[0]}"
        raise_for_transport(resp)
        try:
            envelope = jsonlib.loads(resp.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise PermanentError(
                f"{where}: answer is not a JSON envelope: {snippet(resp.content)}",
                http_status=resp.status_code,
            ) from exc
        code = envelope.get("code") if isinstance(envelope, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            raise PermanentError(
                f"{where}: envelope without an integer code: {snippet(resp.content)}",
                http_status=resp.status_code,
            )
        if code == 0:
            return envelope.get("data")
        message = envelope.get("message")
        raise error_for_code(
            self.code_kinds,
            code,
            f"{where}: {code} {message if isinstance(message, str) else ''}".rstrip(),
            http_status=resp.status_code,
            data=envelope.get("data"),
        )
