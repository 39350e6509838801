"""Inbound webhook verification (the police push scheme).

The sender signs every delivery attempt with
``base64(HMAC-SHA256(secret, timestamp + "." + raw_body))`` where
``timestamp`` is the header value in unix seconds, exactly as sent. The
receiver checks the signature in constant time, then the timestamp window;
both failures are answered 401 by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time

from adapters.base import SignatureError, StaleRequestError

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def _digest(secret: str | bytes, timestamp: str, raw_body: bytes) -> bytes:
    message = timestamp.encode("ascii") + b"." + raw_body
    return hmac.new(_key(secret), message, hashlib.sha256).digest()


def sign(secret: str | bytes, timestamp: int | str, raw_body: bytes) -> str:
    """The signature header value for ``raw_body`` sent at ``timestamp`` (unix seconds)."""
    return base64.b64encode(_digest(secret, str(timestamp), raw_body)).decode("ascii")


def verify_signature(
    secret: str | bytes,
    timestamp_header: str | None,
    raw_body: bytes,
    signature_header: str | None,
    now: float | None = None,
    max_age_s: float = 300,
    max_future_s: float = 300,
) -> None:
    """Return if the delivery is authentic and fresh; raise otherwise.

    ``SignatureError``: header missing or malformed, or signature wrong.
    ``StaleRequestError``: authentic, but the timestamp is more than
    ``max_age_s`` old or ``max_future_s`` ahead of ``now`` (default: the clock).
    The signature is checked first, so a stale answer is only given to a
    sender who knows the secret.
    """
    if not timestamp_header or not signature_header:
        raise SignatureError("webhook: timestamp or signature header missing", code="missing_header")
    timestamp = timestamp_header.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("webhook: timestamp is not unix seconds", code="bad_timestamp")
    try:
        given = base64.b64decode(signature_header.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("webhook: signature is not base64", code="bad_signature") from exc
    if not hmac.compare_digest(given, _digest(secret, timestamp, raw_body)):
        raise SignatureError("webhook: signature mismatch", code="bad_signature")
    age = (time.time() if now is None else now) - int(timestamp)
    if age > max_age_s:
        raise StaleRequestError(f"webhook: timestamp {age:.0f}s old", code="stale")
    if -age > max_future_s:
        raise StaleRequestError(f"webhook: timestamp {-age:.0f}s in the future", code="future")
