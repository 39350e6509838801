from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

import adapters
from adapters.base import (
    AdapterError,
    AuthError,
    BusinessError,
    PermanentError,
    TransientError,
    classify_http_status,
    error_for_code,
    parse_retry_after,
    snippet,
)


@pytest.mark.parametrize("status", [200, 201, 204, 301, 304])
def test_success_and_redirect_statuses_are_not_errors(status: int) -> None:
    assert classify_http_status(status, "whatever", None) is None


def test_429_is_transient_with_retry_after_seconds() -> None:
    err = classify_http_status(429, "Too Many Requests", "7")
    assert isinstance(err, TransientError)
    assert err.kind == "transient"
    assert err.retry_after == 7.0
    assert err.http_status == 429
    assert err.code == "429"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(status: int) -> None:
    err = classify_http_status(status, "<html><body><h1>Bad Gateway</h1></body></html>", None)
    assert isinstance(err, TransientError)
    assert err.retry_after is None
    assert "Bad Gateway" in str(err)
    assert "<h1>" not in str(err)


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_auth_errors(status: int) -> None:
    err = classify_http_status(status, "", None)
    assert isinstance(err, AuthError)
    assert err.kind == "permanent"


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_other_4xx_are_permanent(status: int) -> None:
    err = classify_http_status(status, '{"code": "INVALID_FIELD"}', None)
    assert type(err) is PermanentError


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 11, 23, 1, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(90)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now.timestamp()) == 0


@pytest.mark.parametrize("header", [None, "", "soon", "nan"])
def test_unusable_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_snippet_is_short_single_line_and_scrubbed() -> None:
    text = snippet("<p>token s3cret\n\n" + "x" * 1000 + "</p>", secrets=["s3cret"])
    assert "s3cret" not in text and "\n" not in text
    assert len(text) <= 201


def test_error_for_code_uses_the_table_and_defaults_to_business() -> None:
    kinds = {5000: "transient", 4010: "auth", 7: "permanent"}
    assert isinstance(error_for_code(kinds, 5000, "m"), TransientError)  # type: ignore[arg-type]
    assert isinstance(error_for_code(kinds, 4010, "m"), AuthError)  # type: ignore[arg-type]
    assert type(error_for_code(kinds, 7, "m")) is PermanentError  # type: ignore[arg-type]
    unknown = error_for_code(kinds, 4242, "m", data={"x": 1})  # type: ignore[arg-type]
    assert isinstance(unknown, BusinessError)
    assert unknown.code == "4242" and unknown.data == {"x": 1}


def test_errors_survive_pickling() -> None:
    err = BusinessError("POST /x: 4009 版本冲突", code="4009", http_status=200, data={"v": 3})
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is BusinessError
    assert (copy.code, copy.http_status, copy.data, str(copy)) == ("4009", 200, {"v": 3}, str(err))


def test_str_is_readable() -> None:
    err = TransientError("GET /a: HTTP 429", code="429", http_status=429, retry_after=2)
    assert str(err) == "GET /a: HTTP 429 (kind=transient, code=429, http_status=429, retry_after=2s)"


def test_package_reexports_the_hierarchy() -> None:
    assert issubclass(adapters.AuthError, adapters.PermanentError)
    assert issubclass(adapters.StaleRequestError, adapters.SignatureError)
    assert issubclass(adapters.SignatureError, adapters.PermanentError)
    assert issubclass(adapters.TransientError, AdapterError)
