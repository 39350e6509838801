from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from adapters.base import SignatureError, StaleRequestError
from adapters.webhook import sign, verify_signature

SECRET = "police-shared-secret"
BODY = json.dumps({"eventId": "5f0c", "jq": {"JYQK": "占道经营"}}, ensure_ascii=False).encode()
NOW = 1_763_860_502


def test_sign_matches_the_spec_formula() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, NOW, BODY) == base64.b64encode(expected).decode()


def test_good_signature_passes() -> None:
    verify_signature(SECRET, str(NOW), BODY, sign(SECRET, NOW, BODY), now=NOW + 10)
    verify_signature(SECRET.encode(), str(NOW), BODY, sign(SECRET, NOW, BODY), now=NOW - 299)


@pytest.mark.parametrize(
    ("timestamp", "body", "signature"),
    [
        (str(NOW), BODY + b" ", sign(SECRET, NOW, BODY)),  # body changed
        (str(NOW + 1), BODY, sign(SECRET, NOW, BODY)),  # timestamp changed
        (str(NOW), BODY, sign("other-secret", NOW, BODY)),  # wrong secret
        (str(NOW), BODY, "not base64 !!"),
        (str(NOW), BODY, ""),
        ("", BODY, sign(SECRET, NOW, BODY)),
        ("12.5", BODY, sign(SECRET, "12.5", BODY)),
        (None, BODY, sign(SECRET, NOW, BODY)),
    ],
)
def test_bad_signatures_are_refused(timestamp: str | None, body: bytes, signature: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify_signature(SECRET, timestamp, body, signature, now=NOW)
    assert not isinstance(info.value, StaleRequestError)
    assert SECRET not in str(info.value)


def test_stale_request_is_refused() -> None:
    with pytest.raises(StaleRequestError) as info:
        verify_signature(SECRET, str(NOW), BODY, sign(SECRET, NOW, BODY), now=NOW + 301)
    assert info.value.code == "stale"


def test_future_request_is_refused() -> None:
    with pytest.raises(StaleRequestError) as info:
        verify_signature(SECRET, str(NOW), BODY, sign(SECRET, NOW, BODY), now=NOW - 301)
    assert info.value.code == "future"


def test_windows_are_configurable() -> None:
    signature = sign(SECRET, NOW, BODY)
    verify_signature(SECRET, str(NOW), BODY, signature, now=NOW + 1000, max_age_s=1000)
    with pytest.raises(StaleRequestError):
        verify_signature(SECRET, str(NOW), BODY, signature, now=NOW - 5, max_future_s=1)


def test_stale_and_forged_is_a_plain_signature_error() -> None:
    with pytest.raises(SignatureError) as info:
        verify_signature(SECRET, str(NOW), BODY, sign("x", NOW, BODY), now=NOW + 10_000)
    assert not isinstance(info.value, StaleRequestError)
