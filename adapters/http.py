"""``HttpTransport``: a ``requests.Session`` with a default timeout and classified errors.

Every protocol client sends through one of these, so connection trouble is a
``TransientError`` everywhere and nothing logs a header. Responses come back
as they are, whatever their status: the protocol client knows whether a 401
or a 503 carries a meaning of its own (``raise_for_transport`` applies the
plain HTTP-status rules for those that do not).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from adapters.base import PermanentError, TransientError, classify_http_status

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0


def _path_of(url: str) -> str:
    # Only the path goes into logs and messages: no host credentials, no query.
    return urlsplit(url).path or "/"


def raise_for_transport(resp: requests.Response, secrets: Iterable[str] = ()) -> None:
    """Raise the classified error for a 4xx/5xx ``resp``; do nothing otherwise.

    ``secrets`` are scrubbed from the body excerpt put into the message.
    """
    body = resp.content[:2000] if resp.content else b""
    err = classify_http_status(resp.status_code, body, resp.headers.get("Retry-After"))
    if err is None:
        return
    method = resp.request.method if resp.request is not None else "?"
    url = resp.request.url if resp.request is not None and resp.request.url else resp.url
    for secret in secrets:
        if secret:
            err.message = err.message.replace(secret, "***")
    err.message = f"{method} {_path_of(url)}: {err.message}"
    raise err


class HttpTransport:
    """Thin wrapper over ``requests.Session``: default timeout, errors as ``AdapterError``."""

    def __init__(self, session: requests.Session | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """``session.request`` with the default timeout; connection trouble → ``TransientError``."""
        kwargs.setdefault("timeout", self.timeout)
        with _classified(method, url):
            resp = self.session.request(method, url, **kwargs)
        log.debug("%s %s -> %s", method, _path_of(url), resp.status_code)
        return resp

    def send(self, request: requests.Request, *, timeout: float | None = None) -> requests.Response:
        """Send ``request`` with its URL exactly as given, never re-encoded (signed requests).

        Session headers, cookies and environment settings (proxies, CA bundle)
        are merged the way ``session.request`` would.
        """
        method = (request.method or "GET").upper()
        url = request.url
        prepared = self.session.prepare_request(request)
        # requests normalizes URLs while preparing; what goes out must be what was signed.
        prepared.url = url
        settings = self.session.merge_environment_settings(url, {}, None, None, None)
        with _classified(method, url):
            resp = self.session.send(
                prepared, timeout=self.timeout if timeout is None else timeout, **settings
            )
        log.debug("%s %s -> %s", method, _path_of(url), resp.status_code)
        return resp

    def raise_for_transport(self, resp: requests.Response) -> None:
        """Raise the classified error for a 4xx/5xx ``resp`` (see ``classify_http_status``)."""
        raise_for_transport(resp)

    def close(self) -> None:
        """Close the underlying session's connections."""
        self.session.close()


@contextmanager
def _classified(method: str, url: str) -> Iterator[None]:
    """Map ``requests`` exceptions onto the adapter hierarchy (messages carry no URL query)."""
    where = f"{method} {_path_of(url)}"
    try:
        yield
    except requests.exceptions.SSLError as exc:
        # A refused certificate fails again until someone fixes configuration.
        raise PermanentError(f"{where}: TLS failure ({type(exc).__name__})") from exc
    except requests.Timeout as exc:
        raise TransientError(f"{where}: timed out ({type(exc).__name__})") from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientError(f"{where}: connection failed ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise PermanentError(f"{where}: request failed ({type(exc).__name__})") from exc
