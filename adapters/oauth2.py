"""OAuth2 client-credentials grant with a cached, early-refreshed Bearer token.

The token is fetched once and reused by every thread until shortly before it
expires. A resource server may revoke a token early (a restart), so a 401 on
a resource leads to exactly one new token and one retry. The token and the
client secret never reach a log line or an error message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from adapters.base import AuthError, PermanentError, Transport
from adapters.http import raise_for_transport

log = logging.getLogger(__name__)

# Token-endpoint errors (RFC 6749 §5.2) that mean our client registration is wrong.
_CLIENT_REFUSED = frozenset({"invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope"})


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float

    def __repr__(self) -> str:  # keep the value out of any accidental repr
        return f"_Token(refresh_at={self.refresh_at})"


class ClientCredentials:
    """A token source and request helper for the client-credentials grant.

    ``clock`` returns seconds on any monotonic scale (``time.monotonic`` by
    default; tests pass a fake). The token is refreshed ``early_refresh_s``
    before it expires, but never later than half way through its life.
    ``basic_auth`` sends the client credentials as HTTP Basic instead of in the
    form. ``default_expires_in_s`` is used when the server omits ``expires_in``.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
        early_refresh_s: float = 60,
        *,
        basic_auth: bool = False,
        scope: str | None = None,
        default_expires_in_s: float = 300,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.transport = transport
        self.clock = clock
        self.early_refresh_s = early_refresh_s
        self.basic_auth = basic_auth
        self.scope = scope
        self.default_expires_in_s = default_expires_in_s
        self._token: _Token | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentials({self.token_url!r}, client_id={self.client_id!r})"

    def token(self) -> str:
        """The current access token, fetched when there is none or it is about to expire.

        Raises ``AuthError`` when the token endpoint refuses the client,
        ``TransientError`` for transport trouble, ``PermanentError`` otherwise.
        """
        with self._lock:
            current = self._token
            if current is None or self.clock() >= current.refresh_at:
                current = self._token = self._fetch()
            return current.value

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token; with ``token``, only if it is still the cached one.

        Threads that saw the same revoked token thus cause one fetch, not one each.
        """
        with self._lock:
            if self._token is not None and (token is None or self._token.value == token):
                self._token = None

    def authorized_request(self, method: str, url: str, **kw: Any) -> requests.Response:
        """Send ``method url`` with the Bearer token; on a 401, renew the token and retry once.

        ``kw`` are passed to the transport (``params``, ``json``, ``data``,
        ``headers``, ``timeout``); a body must be re-sendable (not a stream).
        The response is returned whatever its status: a second 401 is the
        caller's to classify (``raise_for_transport`` makes it an ``AuthError``).
        """
        extra_headers = dict(kw.pop("headers", None) or {})
        token = self.token()
        resp = self._send(method, url, token, extra_headers, kw)
        if resp.status_code != 401:
            return resp
        log.info("%s %s: 401 with a cached token, renewing it once", method, urlsplit(url).path)
        resp.close()
        self.invalidate(token)
        return self._send(method, url, self.token(), extra_headers, kw)

    def _send(
        self, method: str, url: str, token: str, headers: dict[str, str], kw: dict[str, Any]
    ) -> requests.Response:
        headers = {**headers, "Authorization": f"Bearer {token}"}
        return self.transport.request(method, url, headers=headers, **kw)

    def _fetch(self) -> _Token:
        form = {"grant_type": "client_credentials"}
        auth: tuple[str, str] | None = None
        if self.basic_auth:
            auth = (self.client_id, self._client_secret)
        else:
            form.update(client_id=self.client_id, client_secret=self._client_secret)
        if self.scope:
            form["scope"] = self.scope
        started = self.clock()
        resp = self.transport.request(
            "POST", self.token_url, data=form, auth=auth, headers={"Accept": "application/json"}
        )
        payload = _json_object(resp)
        error = payload.get("error")
        if resp.status_code in (400, 401) and error in _CLIENT_REFUSED:
            raise AuthError(
                f"POST token endpoint: client {self.client_id!r} refused ({error})",
                code=str(error),
                http_status=resp.status_code,
            )
        raise_for_transport(resp, secrets=[self._client_secret])
        value = payload.get("access_token")
        token_type = payload.get("token_type", "Bearer")
        if not isinstance(value, str) or not value or str(token_type).lower() != "bearer":
            raise PermanentError(
                "POST token endpoint: answer without a Bearer access_token",
                http_status=resp.status_code,
            )
        lifetime = _seconds(payload.get("expires_in"), self.default_expires_in_s)
        refresh_in = max(lifetime - self.early_refresh_s, lifetime / 2)
        log.debug("token for client %r obtained, lifetime %ss", self.client_id, lifetime)
        return _Token(value=value, refresh_at=started + refresh_in)


def _json_object(resp: requests.Response) -> dict[str, Any]:
    try:
        payload = resp.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _seconds(value: Any, default: float) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float) and value > 0:
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return default
        return parsed if parsed > 0 else default
    return default
