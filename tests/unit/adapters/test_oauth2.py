from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, request

from adapters.base import AuthError, TransientError
from adapters.http import HttpTransport
from adapters.oauth2 import ClientCredentials

from .conftest import Serve

CLIENT_ID = "gridhub"
CLIENT_SECRET = "client-secret-do-not-log"


@dataclass
class TokenServer:
    """A 数字城管-like authorization and resource server."""

    expires_in: int = 7200
    issued: list[str] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    resource_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def revoke_all(self) -> None:
        self.valid.clear()

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/oauth/token")
        def token() -> Any:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
            header = request.headers.get("Authorization", "")
            if header.startswith("Basic "):
                client_id, secret = base64.b64decode(header[6:]).decode().split(":", 1)
            if request.form.get("grant_type") != "client_credentials":
                return {"error": "unsupported_grant_type"}, 400
            if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
                return {"error": "invalid_client"}, 401
            with self.lock:
                value = f"tok-{len(self.issued) + 1}"
                self.issued.append(value)
                self.valid.add(value)
            return {"access_token": value, "token_type": "Bearer", "expires_in": self.expires_in}

        @app.route("/dcm/api/cases", methods=["GET", "POST"])
        def cases() -> Any:
            with self.lock:
                self.resource_calls += 1
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.valid:
                return {"error": "invalid_token"}, 401
            return {"token": token, "json": request.get_json(silent=True)}

        @app.get("/always-401")
        def always_401() -> Any:
            with self.lock:
                self.resource_calls += 1
            return {"error": "invalid_token"}, 401

        @app.post("/broken/oauth/token")
        def broken() -> Any:
            return "<html>502 Bad Gateway</html>", 502

        return app


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> TokenServer:
    return TokenServer()


@pytest.fixture
def base(serve: Serve, server: TokenServer) -> Iterator[str]:
    yield serve(server.app())


def _client(base: str, clock: FakeClock | None = None, **kw: Any) -> ClientCredentials:
    return ClientCredentials(
        base + "/oauth/token",
        CLIENT_ID,
        kw.pop("secret", CLIENT_SECRET),
        HttpTransport(timeout=5),
        clock=clock or FakeClock(),
        **kw,
    )


def test_token_is_cached(base: str, server: TokenServer) -> None:
    client = _client(base)
    for _ in range(3):
        assert client.authorized_request("GET", base + "/dcm/api/cases").json()["token"] == "tok-1"
    assert server.issued == ["tok-1"]


def test_token_is_refreshed_early_before_expiry(base: str, server: TokenServer) -> None:
    clock = FakeClock()
    client = _client(base, clock, early_refresh_s=60)
    assert client.token() == "tok-1"
    clock.now += 7200 - 61
    assert client.token() == "tok-1"
    clock.now += 2
    assert client.token() == "tok-2"


def test_short_lived_token_is_refreshed_half_way(base: str, server: TokenServer) -> None:
    server.expires_in = 30
    clock = FakeClock()
    client = _client(base, clock, early_refresh_s=60)
    client.token()
    clock.now += 14
    assert client.token() == "tok-1"
    clock.now += 2
    assert client.token() == "tok-2"


def test_revoked_token_is_renewed_once_and_request_retried(base: str, server: TokenServer) -> None:
    client = _client(base)
    client.token()
    server.revoke_all()
    resp = client.authorized_request("POST", base + "/dcm/api/cases", json={"op": "SUPPLEMENT"})
    assert resp.status_code == 200
    assert resp.json() == {"token": "tok-2", "json": {"op": "SUPPLEMENT"}}
    assert server.resource_calls == 2 and server.issued == ["tok-1", "tok-2"]


def test_persistent_401_is_retried_exactly_once(base: str, server: TokenServer) -> None:
    client = _client(base)
    resp = client.authorized_request("GET", base + "/always-401")
    assert resp.status_code == 401
    assert server.resource_calls == 2
    assert server.issued == ["tok-1", "tok-2"]


def test_basic_auth_variant(base: str, server: TokenServer) -> None:
    assert _client(base, basic_auth=True).token() == "tok-1"


def test_wrong_client_is_auth_error_without_secret(base: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        _client(base, secret="wrong-secret-value").token()
    assert info.value.code == "invalid_client" and info.value.http_status == 401
    assert "wrong-secret-value" not in str(info.value)
    assert "wrong-secret-value" not in caplog.text


def test_token_endpoint_outage_is_transient(base: str) -> None:
    client = ClientCredentials(base + "/broken/oauth/token", CLIENT_ID, CLIENT_SECRET, HttpTransport())
    with pytest.raises(TransientError):
        client.token()


def test_token_never_logged(base: str, server: TokenServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = _client(base)
    client.authorized_request("GET", base + "/dcm/api/cases")
    server.revoke_all()
    client.authorized_request("GET", base + "/dcm/api/cases")
    assert server.issued
    for value in server.issued:
        assert value not in caplog.text
    assert CLIENT_SECRET not in caplog.text and CLIENT_SECRET not in repr(client)


def test_concurrent_callers_share_one_token(base: str, server: TokenServer) -> None:
    client = _client(base)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def work() -> None:
        barrier.wait()
        results.append(client.authorized_request("GET", base + "/dcm/api/cases").json()["token"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == ["tok-1"] * 8
    assert server.issued == ["tok-1"]


def test_concurrent_401s_renew_the_token_once(base: str, server: TokenServer) -> None:
    client = _client(base)
    client.token()
    server.revoke_all()
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def work() -> None:
        barrier.wait()
        statuses.append(client.authorized_request("GET", base + "/dcm/api/cases").status_code)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 6
    assert server.issued == ["tok-1", "tok-2"]
