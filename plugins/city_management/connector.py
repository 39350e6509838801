"""The 数字城管 connector: OAuth2 client credentials, keyset walk over an offset-paged moving set.

Reads ``GET /dcm/api/cases`` (see ``paging.py`` for why the walk restarts after every page)
and ``GET /dcm/api/cases/{caseId}``. Every row is stored verbatim as sorted-key JSON with the
event id ``caseId@version``; the cursor ``updated_from`` moves with each stored page.
Delivers outbound effects (``deliver``; the decisions are in ``outbound``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from adapters.base import AdapterError, PermanentError
from adapters.http import HttpTransport, raise_for_transport
from adapters.oauth2 import ClientCredentials
from hub.facade import (
    ConnectionReport,
    CursorStore,
    DeliveryResult,
    InboundSink,
    OutboundEffect,
    PollReport,
    RawRecord,
    SystemConfig,
)
from plugins.city_management.outbound import Answer, CaseWriter
from plugins.city_management.paging import MovingSetWalk, Row, UnkeyedPage, update_time

CURSOR = "updated_from"
TIMEOUT_S = 10.0
MAX_PAGE_SIZE = 100  # the platform refuses more (422)
CASES_PATH = "/dcm/api/cases"


def int_setting(settings: Mapping[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    """A positive integer setting, clamped to what the platform accepts."""
    value = settings.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = default
    number = max(low, number)
    return min(high, number) if high is not None else number


def record_of(row: Mapping[str, Any]) -> RawRecord | None:
    """The raw record of one case row, or None when the row cannot be identified."""
    case_id, version = row.get("caseId"), row.get("version")
    if not isinstance(case_id, str) or not case_id or isinstance(version, bool) or not isinstance(version, int):
        return None
    raw = json.dumps(row, ensure_ascii=False, sort_keys=True)
    return RawRecord(event_id=f"{case_id}@{version}", external_id=case_id, version=version, raw=raw)


def platform_answer(resp: requests.Response) -> Answer | None:
    """The answer when the platform itself gave it: a JSON object on a 2xx, or a 4xx JSON object
    with the spec's ``code`` (403 ``NOT_CREATOR`` is a refusal, not bad credentials). None for
    what only the HTTP status can classify: 401 after a renewal, 429, 5xx, gateway pages."""
    if resp.status_code in (401, 429) or resp.status_code >= 500:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if resp.status_code < 300 or (400 <= resp.status_code < 500 and isinstance(body.get("code"), str)):
        return Answer(resp.status_code, body)
    return None


class CityManagementConnector:
    """Pulls 数字城管 cases; one instance per configured system (it caches the token)."""

    def __init__(self, config: SystemConfig, transport: HttpTransport | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        settings = config.settings or {}
        self.page_size = int_setting(settings, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        self.max_pages = int_setting(settings, "max_pages_per_poll", 50, 1, None)
        self.transport = transport or HttpTransport(timeout=TIMEOUT_S)
        self.oauth = ClientCredentials(
            f"{self.base_url}/oauth/token",
            str(config.credentials.get("client_id", "")),
            str(config.credentials.get("client_secret", "")),
            self.transport,
        )
        self.writer = CaseWriter(self)

    def __repr__(self) -> str:
        return f"CityManagementConnector({self.config.key!r}, {self.base_url!r})"

    # ---- reading -------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> requests.Response:
        """An authorized GET (one token renewal on a 401); the answer whatever its status."""
        return self.oauth.authorized_request("GET", f"{self.base_url}{path}", params=dict(params or {}),
                                             headers={"Accept": "application/json"})

    def _json(self, resp: requests.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; 4xx/5xx raise the classified error (401 → AuthError)."""
        raise_for_transport(resp)
        try:
            body = resp.json()
        except ValueError:
            raise PermanentError(f"GET {CASES_PATH}: answer is not JSON", http_status=resp.status_code) from None
        if not isinstance(body, dict):
            raise PermanentError(f"GET {CASES_PATH}: answer is not a JSON object",
                                 http_status=resp.status_code)
        return body

    def fetch_page(self, updated_from: str | None, page_no: int, page_size: int | None = None) -> list[Row]:
        """One page of ``GET /dcm/api/cases``; ``updated_from`` None reads from the beginning."""
        params: dict[str, Any] = {"pageNo": page_no, "pageSize": page_size or self.page_size}
        if updated_from is not None:
            params["updatedFrom"] = updated_from
        body = self._json(self._get(CASES_PATH, params))
        rows = body.get("rows")
        if not isinstance(rows, list):
            raise PermanentError(f"GET {CASES_PATH}: answer without a rows list")
        return [row if isinstance(row, dict) else {"_invalid": row} for row in rows]

    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        """Read every case changed since the stored cursor (up to ``max_pages_per_poll`` pages)."""
        report = PollReport()

        def store_page(rows: Sequence[Row], cursor: str | None) -> None:
            records: list[RawRecord] = []
            for row in rows:
                record = record_of(row)
                if record is None or update_time(row) is None:
                    sink.reject("数字城管 case without caseId, integer version or updateTime",
                                json.dumps(row, ensure_ascii=False, sort_keys=True, default=str))
                    continue
                records.append(record)
            report.stored += sink.store_many(records, cursor=(CURSOR, cursor) if cursor else None)

        walk = MovingSetWalk(self.fetch_page, store_page, self.page_size, self.max_pages)
        try:
            done = walk.run(cursors.get(CURSOR) or None)
        except UnkeyedPage as exc:
            raise PermanentError(f"GET {CASES_PATH}: {exc}") from None
        report.read, report.pages, report.more = done.read, done.pages, done.more
        if done.more:
            report.notes.append(f"page budget of {self.max_pages} spent; cursor {done.cursor}")
        log.debug("%s: read %d rows in %d pages, %d new, cursor %s", self.config.key, report.read,
                  report.pages, report.stored, done.cursor)
        return report

    def fetch(self, external_id: str) -> RawRecord | None:
        """The case's current snapshot (reconciliation); None when the platform does not know it."""
        resp = self._get(f"{CASES_PATH}/{quote(external_id, safe='')}")
        if resp.status_code == 404:
            return None
        record = record_of(self._json(resp))
        if record is None:
            raise PermanentError(f"GET {CASES_PATH}/…: answer is not a case")
        return record

    # ---- writing -------------------------------------------------------------------------
    def exchange(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Answer:
        """One authorized call (``outbound.CaseApi``): a 401 renews the token once and retries,
        which is safe for a write, since the platform refuses the token before doing anything.
        The platform's own answers come back; everything else raises the classified error."""
        extra: dict[str, Any] = {} if body is None else {"json": dict(body)}
        resp = self.oauth.authorized_request(method, f"{self.base_url}{path}",
                                             headers={"Accept": "application/json"}, **extra)
        answer = platform_answer(resp)
        if answer is not None:
            return answer
        raise_for_transport(resp)
        raise PermanentError(f"{method} {path}: answer is not a JSON object", http_status=resp.status_code)

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """Apply one outbound effect (``hub.facade.Deliverer``): create a case, or read the case
        and send the operation its status allows (see ``outbound``)."""
        return self.writer.deliver(effect)

    # ---- checking ------------------------------------------------------------------------
    def test_connection(self) -> ConnectionReport:
        """Obtain a token and read one row."""
        try:
            self.oauth.token()
            body = self._json(self._get(CASES_PATH, {"pageNo": 1, "pageSize": 1}))
        except AdapterError as exc:
            return ConnectionReport(ok=False, message=str(exc), detail={"kind": exc.kind})
        return ConnectionReport(ok=True, message="令牌获取成功，案卷查询正常",
                                detail={"total": body.get("total")})
