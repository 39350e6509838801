from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

import pytest
from flask import Flask, Response, request

from adapters.base import AuthError, BusinessError, PermanentError, TransientError
from adapters.http import HttpTransport
from adapters.signed_rest import SignedJsonClient, build_target, sign

from .conftest import Serve

APP_KEY = "demo-app"
SECRET = "demo-secret-0001"


def test_worked_example_from_the_spec() -> None:
    target = build_target("/openapi/v2", "/workorders/changes", {"cursor": "", "limit": 100})
    assert target == "/openapi/v2/workorders/changes?cursor=&limit=100"
    signature = sign(SECRET, APP_KEY, 1763860502000, "n0nce-5f3a9c1e2b7d", "GET", target, b"")
    assert signature == "c857dfa2399337677c92f4f59426e48f07f7d8512e574ee5d0075fa6d663e2cf"


def test_signature_depends_on_every_part() -> None:
    base = sign(SECRET, APP_KEY, 1, "n" * 16, "GET", "/a", b"")
    variants = [
        sign("other", APP_KEY, 1, "n" * 16, "GET", "/a", b""),
        sign(SECRET, "other", 1, "n" * 16, "GET", "/a", b""),
        sign(SECRET, APP_KEY, 2, "n" * 16, "GET", "/a", b""),
        sign(SECRET, APP_KEY, 1, "m" * 16, "GET", "/a", b""),
        sign(SECRET, APP_KEY, 1, "n" * 16, "POST", "/a", b""),
        sign(SECRET, APP_KEY, 1, "n" * 16, "GET", "/a?x=1", b""),
        sign(SECRET, APP_KEY, 1, "n" * 16, "GET", "/a", b"{}"),
    ]
    assert base not in variants and len(set(variants)) == len(variants)


def _independent_sign(environ: dict[str, Any], body: bytes) -> str:
    """What the hotline computes: from the raw request target and raw body."""
    parts = [
        environ["HTTP_X_APP_KEY"],
        environ["HTTP_X_TIMESTAMP"],
        environ["HTTP_X_NONCE"],
        environ["REQUEST_METHOD"],
        environ["REQUEST_URI"],
        hashlib.sha256(body).hexdigest(),
    ]
    return hmac.new(SECRET.encode(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def _hotline() -> Flask:
    app = Flask(__name__)

    @app.before_request
    def check_signature() -> Any:
        if request.environ.get("HTTP_X_SIGN") != _independent_sign(request.environ, request.get_data()):
            return {"code": 4010, "message": "签名错误或时间戳过期", "data": None}
        return None

    @app.route("/openapi/v2/<path:rest>", methods=["GET", "POST"])
    def echo(rest: str) -> Any:
        body = request.get_data()
        return {
            "code": 0,
            "message": "成功",
            "data": {
                "target": request.environ["REQUEST_URI"],
                "json": json.loads(body) if body else None,
                "raw": body.decode("utf-8"),
                "requestId": request.headers.get("X-Request-Id"),
                "timestamp": request.headers["X-Timestamp"],
                "nonce": request.headers["X-Nonce"],
            },
        }

    @app.post("/openapi/v2/workorders/<gdbh>/actions")
    def action(gdbh: str) -> Any:
        if request.get_json()["expectedVersion"] != 7:
            return {"code": 4009, "message": "版本冲突", "data": {"version": 8}}
        return {"code": 0, "message": "成功", "data": {"gdbh": gdbh, "version": 8}}

    @app.get("/openapi/v2/code/<int:code>")
    def code(code: int) -> Any:
        return {"code": code, "message": f"错误{code}", "data": None}

    @app.get("/openapi/v2/limited")
    def limited() -> Any:
        return Response("Too Many Requests", 429, {"Retry-After": "2"})

    @app.get("/openapi/v2/gateway")
    def gateway() -> Any:
        return Response("<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", 502, mimetype="text/html")

    @app.get("/openapi/v2/not-json")
    def not_json() -> Any:
        return Response("<html>login</html>", 200, mimetype="text/html")

    return app


def _client(base: str, **kw: Any) -> SignedJsonClient:
    return SignedJsonClient(base + "/openapi/v2", APP_KEY, SECRET, HttpTransport(timeout=5), **kw)


def test_get_with_params_is_signed_as_sent(serve: Serve) -> None:
    client = _client(serve(_hotline()), clock=lambda: 1763860502.0)
    data = client.request(
        "GET", "/workorders/changes", params=[("cursor", "a b+c/=="), ("limit", 100), ("skip", None)]
    )
    assert data["target"] == "/openapi/v2/workorders/changes?cursor=a+b%2Bc%2F%3D%3D&limit=100"
    assert data["timestamp"] == "1763860502000"
    assert len(data["nonce"]) >= 16


def test_post_json_bytes_are_hashed_as_sent(serve: Serve) -> None:
    client = _client(serve(_hotline()))
    body = {"action": "BC", "nr": "已现场拆除地锁3处，恢复通行。😀", "czr": "张三"}
    data = client.request("POST", "/echo", json=body, headers={"X-Request-Id": "req-1"})
    assert data["json"] == body
    assert "已现场" in data["raw"]  # ensure_ascii=False: UTF-8 on the wire, not \\u escapes
    assert data["requestId"] == "req-1"


def test_each_request_has_a_fresh_nonce(serve: Serve) -> None:
    nonces = (f"nonce-{i:016d}" for i in itertools.count())
    client = _client(serve(_hotline()), nonce_factory=lambda: next(nonces))
    first = client.request("GET", "/a")["nonce"]
    second = client.request("GET", "/a")["nonce"]
    assert first != second


def test_business_error_in_http_200(serve: Serve) -> None:
    client = _client(serve(_hotline()))
    with pytest.raises(BusinessError) as info:
        client.request("POST", "/workorders/GD20261123000123/actions", json={"expectedVersion": 6})
    err = info.value
    assert err.code == "4009" and err.http_status == 200 and err.kind == "permanent"
    assert err.data == {"version": 8}
    assert "版本冲突" in str(err)
    ok = client.request("POST", "/workorders/GD20261123000123/actions", json={"expectedVersion": 7})
    assert ok == {"gdbh": "GD20261123000123", "version": 8}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (4011, TransientError),
        (5000, TransientError),
        (4010, AuthError),
        (4001, BusinessError),
        (4002, BusinessError),
        (4004, BusinessError),
        (6001, BusinessError),
    ],
)
def test_code_table(serve: Serve, code: int, error: type[Exception]) -> None:
    client = _client(serve(_hotline()))
    with pytest.raises(error) as info:
        client.request("GET", f"/code/{code}")
    assert info.value.code == str(code)  # type: ignore[attr-defined]


def test_code_table_is_configurable(serve: Serve) -> None:
    client = _client(serve(_hotline()), code_kinds={4002: "transient"})
    with pytest.raises(TransientError):
        client.request("GET", "/code/4002")


def test_wrong_secret_is_auth_error_and_secret_not_in_message(serve: Serve) -> None:
    base = serve(_hotline())
    client = SignedJsonClient(base + "/openapi/v2", APP_KEY, "wrong-secret-xyz", HttpTransport())
    with pytest.raises(AuthError) as info:
        client.request("GET", "/workorders/changes")
    assert "wrong-secret-xyz" not in str(info.value) and "wrong-secret-xyz" not in repr(client)


def test_429_carries_retry_after(serve: Serve) -> None:
    with pytest.raises(TransientError) as info:
        _client(serve(_hotline())).request("GET", "/limited")
    assert info.value.retry_after == 2.0 and info.value.http_status == 429


def test_502_html_is_transient(serve: Serve) -> None:
    with pytest.raises(TransientError) as info:
        _client(serve(_hotline())).request("GET", "/gateway")
    assert info.value.http_status == 502
    assert "<html>" not in str(info.value)


def test_connection_refused_is_transient(refused_url: str) -> None:
    with pytest.raises(TransientError):
        _client(refused_url).request("GET", "/workorders/changes")


def test_non_envelope_200_is_permanent(serve: Serve) -> None:
    with pytest.raises(PermanentError):
        _client(serve(_hotline())).request("GET", "/not-json")


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError):
        SignedJsonClient("/openapi/v2", APP_KEY, SECRET, HttpTransport())
