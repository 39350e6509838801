from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from adapters.base import AuthError, PermanentError, TransientError
from adapters.http import HttpTransport

from .conftest import Serve


def _app() -> Flask:
    app = Flask(__name__)

    @app.get("/ok")
    def ok() -> Any:
        return {"auth": request.headers.get("Authorization", "")}

    @app.get("/slow")
    def slow() -> Any:
        time.sleep(1.0)
        return "late"

    @app.get("/bad-gateway")
    def bad_gateway() -> Any:
        return Response("<html><body>502 Bad Gateway</body></html>", 502, mimetype="text/html")

    @app.get("/forbidden")
    def forbidden() -> Any:
        return Response("nope", 403)

    return app


def test_returns_response_and_logs_no_credentials(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    base = serve(_app())
    caplog.set_level(logging.DEBUG, logger="adapters")
    resp = HttpTransport().request("GET", base + "/ok?x=1", headers={"Authorization": "Bearer tok-SECRET"})
    assert resp.json() == {"auth": "Bearer tok-SECRET"}
    assert "GET /ok -> 200" in caplog.text
    assert "tok-SECRET" not in caplog.text


def test_timeout_is_transient(serve: Serve) -> None:
    base = serve(_app())
    with pytest.raises(TransientError, match="timed out"):
        HttpTransport(timeout=0.2).request("GET", base + "/slow")


def test_connection_refused_is_transient(refused_url: str) -> None:
    with pytest.raises(TransientError, match="connection failed") as info:
        HttpTransport().request("GET", refused_url + "/x?token=abc")
    assert "token=abc" not in str(info.value)


def test_invalid_url_is_permanent() -> None:
    with pytest.raises(PermanentError):
        HttpTransport().request("GET", "http://")


def test_raise_for_transport(serve: Serve) -> None:
    base = serve(_app())
    transport = HttpTransport()
    transport.raise_for_transport(transport.request("GET", base + "/ok"))
    with pytest.raises(TransientError) as info:
        transport.raise_for_transport(transport.request("GET", base + "/bad-gateway"))
    assert info.value.http_status == 502 and "GET /bad-gateway" in str(info.value)
    with pytest.raises(AuthError):
        transport.raise_for_transport(transport.request("GET", base + "/forbidden"))


def test_send_keeps_the_url_byte_for_byte(serve: Serve) -> None:
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REQUEST_URI"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    base = serve(app)
    target = "/a/%7Eb/c?x=a+b&y=%2B08%3A00&z="
    HttpTransport().send(requests.Request("GET", base + target))
    assert seen == [target]
