"""The error hierarchy every adapter raises and every caller acts on.

Callers decide with one question, ``err.kind``: ``"transient"`` means the same
request may succeed later (retry with backoff, honour ``retry_after``);
``"permanent"`` means it will fail again as is (dead-letter it, show it to a
person). Subclasses say *why* it is permanent, so a plugin can react to a
business refusal (``BusinessError.code``) differently from refused credentials.

``str(err)`` is meant for logs and the admin console: it never carries
credentials, tokens or signatures. Code that builds these errors only puts
method, URL path, codes and short, scrubbed server messages into them.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

import requests

ErrorKind = Literal["transient", "permanent"]
# How a system's own result code is to be treated; see ``error_for_code``.
CodeKind = Literal["transient", "auth", "business", "permanent"]

_SNIPPET_LIMIT = 200
_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


class AdapterError(Exception):
    """Base of every error an adapter raises.

    ``code`` is the system's business code or the HTTP status as a string,
    ``http_status`` the HTTP status of the answer (``None`` when there was none),
    ``retry_after`` seconds the server asked us to wait, if it said so.
    """

    kind: ErrorKind = "permanent"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        details = [f"kind={self.kind}"]
        if self.code is not None:
            details.append(f"code={self.code}")
        if self.http_status is not None:
            details.append(f"http_status={self.http_status}")
        if self.retry_after is not None:
            details.append(f"retry_after={self.retry_after:g}s")
        return f"{self.message} ({', '.join(details)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default Exception
        # pickling; errors may travel between worker processes.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[AdapterError], message: str, state: dict[str, Any]) -> AdapterError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class TransientError(AdapterError):
    """Retry later: connection trouble, timeouts, 429, 5xx, codes declared retryable."""

    kind: ErrorKind = "transient"


class PermanentError(AdapterError):
    """The same request will fail again as is."""

    kind: ErrorKind = "permanent"


class AuthError(PermanentError):
    """The system refused our credentials (fix configuration, then replay)."""


class BusinessError(PermanentError):
    """A system's business refusal: ``code`` and ``message`` are the system's own.

    ``data`` is whatever the system sent alongside (an envelope's ``data``, an
    XML ``Body`` element), for callers that need it to decide.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.data = data


class SignatureError(PermanentError):
    """An inbound request's signature is missing, malformed or wrong."""


class StaleRequestError(SignatureError):
    """An inbound request is authentic but its timestamp is outside the window."""


class Transport(Protocol):
    """What the protocol clients need from HTTP (``adapters.http.HttpTransport``)."""

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send a request; raise ``TransientError`` for connection trouble."""
        ...

    def send(self, request: requests.Request, *, timeout: float | None = None) -> requests.Response:
        """Send a request with its URL exactly as given (never re-encoded)."""
        ...


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def snippet(body: str | bytes | None, secrets: Iterable[str] = ()) -> str:
    """A short, single-line, tag-free excerpt of a response body for messages."""
    if body is None:
        return ""
    if isinstance(body, bytes):
        body = body[: _SNIPPET_LIMIT * 8].decode("utf-8", errors="replace")
    text = _SPACE.sub(" ", _TAG.sub(" ", body)).strip()
    text = scrub(text, secrets)
    if len(text) > _SNIPPET_LIMIT:
        text = text[:_SNIPPET_LIMIT] + "…"
    return text


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def classify_http_status(
    status: int,
    body_snippet: str | bytes | None = None,
    retry_after_header: str | None = None,
) -> AdapterError | None:
    """Turn an HTTP status into the error a caller acts on, or ``None`` for 1xx–3xx.

    429 and 5xx are transient (``retry_after`` from the header when given),
    401/403 are ``AuthError``, other 4xx permanent. Gateways answer with plain
    text or HTML, so the status decides, never the body; the body only goes,
    shortened, into the message.
    """
    if status < 400:
        return None
    excerpt = snippet(body_snippet)
    message = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    code = str(status)
    if status == 429 or status >= 500:
        return TransientError(
            message, code=code, http_status=status, retry_after=parse_retry_after(retry_after_header)
        )
    if status in (401, 403):
        return AuthError(message, code=code, http_status=status)
    return PermanentError(message, code=code, http_status=status)


def error_for_code(
    kinds: Mapping[int, CodeKind],
    code: int,
    message: str,
    *,
    http_status: int | None = None,
    data: Any = None,
    retry_after: float | None = None,
) -> AdapterError:
    """Build the error for a system's non-success result ``code``.

    ``kinds`` is the system's table (``"transient"``, ``"auth"``, ``"business"``,
    ``"permanent"``); a code missing from it is a ``BusinessError``: an unknown
    refusal must not be retried forever.
    """
    kind = kinds.get(code, "business")
    text = str(code)
    if kind == "transient":
        return TransientError(message, code=text, http_status=http_status, retry_after=retry_after)
    if kind == "auth":
        return AuthError(message, code=text, http_status=http_status)
    if kind == "permanent":
        return PermanentError(message, code=text, http_status=http_status)
    return BusinessError(message, code=text, http_status=http_status, data=data)
