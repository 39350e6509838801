"""The 综合执法 connector: GBK XML over HTTP, ``QueryCases`` with the inclusive one-second boundary.

The platform pages by (``Modified``, ``ClueNo``): ``More=1`` means "ask again with
``ModifiedSince=LastModified`` and ``AfterClueNo=LastClueNo``". ``Modified`` has one-second
precision, so a case changed again later in the same second keeps its place in that order.
If a poll started after ``LastClueNo`` of the previous one, a case of that second with a
smaller ``ClueNo`` changed after we passed it would never come again. So each poll's first
request asks for the whole cursor second (no ``AfterClueNo``); rows read twice are removed
by their event id, which includes a digest of the XML (two changes can share a second).

Outbound (``deliver``): ``create`` → ``TransferClue``, ``note`` → ``AddRemark``; see ``outbound``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from adapters.base import AdapterError, BusinessError, PermanentError
from adapters.http import HttpTransport
from adapters.xml_gbk import XmlGbkClient, XmlReply
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
from plugins.law_enforcement.outbound import ClueWriter

CURSOR = "modified"
ENDPOINT = "/zfba/ws/exchange"
TIMEOUT_S = 30.0
MAX_COUNT = 100  # the platform refuses more (1002)
CONTENT_TYPE = "application/xml"
NOT_FOUND = "2001"

_STAMP = re.compile(r"^\d{14}$")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def int_setting(settings: Mapping[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    """A positive integer setting, clamped to what the platform accepts."""
    try:
        number = int(settings.get(name, default))
    except (TypeError, ValueError):
        number = default
    number = max(low, number)
    return min(high, number) if high is not None else number


def exchange_url(base_url: str) -> str:
    """The exchange endpoint: ``{base}/zfba/ws/exchange`` (a base that already names it is kept)."""
    base = base_url.rstrip("/")
    return base if base.endswith(ENDPOINT) else base + ENDPOINT


def case_text(case: Any) -> str:
    """The ``<Case>`` element as XML text, exactly as answered (no tail, no declaration)."""
    text: str = etree.tostring(case, encoding="unicode", with_tail=False)
    return text


def record_of(case: Any) -> RawRecord | None:
    """The raw record of one ``<Case>`` element, or None when it cannot be identified."""
    clue_no = (case.findtext("ClueNo") or "").strip()
    modified = (case.findtext("Modified") or "").strip()
    if not clue_no or not _STAMP.match(modified):
        return None
    raw = case_text(case)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
    return RawRecord(event_id=f"{clue_no}@{modified}@{digest}", external_id=clue_no, version=int(modified),
                     raw=raw, content_type=CONTENT_TYPE)


def decode_case(raw: str) -> dict[str, Any]:
    """A stored ``<Case>`` as the flat dict the mapping document reads: element → text ("" if empty).

    Raises ``ValueError`` for text that is not a ``<Case>`` element.
    """
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != "Case":
        raise ValueError(f"expected <Case>, got <{root.tag}>")
    return {child.tag: child.text or "" for child in root if isinstance(child.tag, str)}


def _cases_of(reply: XmlReply) -> list[Any]:
    cases = reply.body.find("Cases") if reply.body is not None else None
    return [c for c in (cases if cases is not None else []) if c.tag == "Case"]


def parse_cursor(value: str | None) -> tuple[str, str] | None:
    """``LastModified|LastClueNo`` → (modified, clue_no); None when absent or unusable."""
    if not value:
        return None
    modified, _, clue_no = value.partition("|")
    return (modified, clue_no) if _STAMP.match(modified) else None


class LawEnforcementConnector:
    """Pulls 综合执法 cases and delivers clues and remarks; one instance per configured system.

    ``clock`` (unix time) stamps the request heads and tells how long maintenance has to go.
    """

    def __init__(self, config: SystemConfig, transport: HttpTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        settings = config.settings or {}
        self.max_count = int_setting(settings, "max_count", MAX_COUNT, 1, MAX_COUNT)
        self.max_calls = int_setting(settings, "max_calls_per_poll", 20, 1, None)
        self.transport = transport or HttpTransport(timeout=TIMEOUT_S)
        self.clock = clock
        self.client = self._client()
        self.writer = ClueWriter(self._client_with_request_id, clock)

    def _client(self) -> XmlGbkClient:
        return XmlGbkClient(
            exchange_url(self.config.base_url),
            {"User": str(self.config.credentials.get("user", "")),
             "Password": str(self.config.credentials.get("password", ""))},
            self.transport,
            timeout=TIMEOUT_S,
            clock=self.clock,
        )

    def _client_with_request_id(self, request_id: str) -> XmlGbkClient:
        """A new client whose calls carry head ``RequestId`` = ``request_id`` (one delivery; the
        shared ``self.client`` keeps its fresh id per call)."""
        client = self._client()
        client.request_id_factory = lambda: request_id
        return client

    def __repr__(self) -> str:
        return f"LawEnforcementConnector({self.config.key!r}, {self.client.url!r})"

    def query_cases(self, since: str | None, after_clue_no: str | None = None,
                    max_count: int | None = None) -> XmlReply:
        """One ``QueryCases`` call. Maintenance (3001) and rate limit (1003) raise ``TransientError``."""
        body: dict[str, Any] = {"ModifiedSince": since, "AfterClueNo": after_clue_no if since else None,
                                "MaxCount": max_count or self.max_count}
        return self.client.call("QueryCases", body)

    def poll(self, sink: InboundSink, cursors: CursorStore, log: logging.Logger) -> PollReport:
        """Read every case modified since the cursor second (inclusive), page by page.

        The re-read of the cursor second may use at most half of the call budget: a second
        too crowded for that is then continued after ``LastClueNo`` (noted in the report), so
        that polling never gets stuck on it.
        """
        report = PollReport()
        stored = parse_cursor(cursors.get(CURSOR))
        since: str | None = stored[0] if stored else None
        after: str | None = None  # the first request re-reads the whole cursor second
        rereading = stored is not None
        while True:
            if report.pages >= self.max_calls:
                report.more = True
                report.notes.append(f"call budget of {self.max_calls} spent at {since}|{after}")
                break
            reply = self.query_cases(since, after)
            report.pages += 1
            elements = _cases_of(reply)
            report.read += len(elements)
            last_modified, last_clue_no = self._boundary(reply, elements)
            self._store(sink, elements, last_modified, last_clue_no, report)
            if reply.find_text("More") != "1" or not elements:
                break
            if not last_modified:
                raise PermanentError("QueryCases: More=1 without LastModified")
            since, after = last_modified, last_clue_no
            if rereading and stored is not None:
                if (last_modified, last_clue_no) >= stored:
                    rereading = False
                elif report.pages >= max(1, self.max_calls // 2):
                    since, after, rereading = stored[0], stored[1], False
                    report.notes.append(f"second {stored[0]} too crowded to re-read in one poll; "
                                        f"continued after {stored[1]}")
                    log.warning("%s: %s", self.config.key, report.notes[-1])
        log.debug("%s: read %d cases in %d calls, %d new", self.config.key, report.read, report.pages,
                  report.stored)
        return report

    @staticmethod
    def _store(sink: InboundSink, elements: list[Any], last_modified: str, last_clue_no: str,
               report: PollReport) -> None:
        """Store one answer's cases and move the cursor to its boundary, in one transaction."""
        records: list[RawRecord] = []
        for element in elements:
            record = record_of(element)
            if record is None:
                sink.reject("综合执法 <Case> without ClueNo or yyyyMMddHHmmss Modified", case_text(element),
                            CONTENT_TYPE)
            else:
                records.append(record)
        cursor = (CURSOR, f"{last_modified}|{last_clue_no}") if elements and last_modified else None
        report.stored += sink.store_many(records, cursor=cursor)

    @staticmethod
    def _boundary(reply: XmlReply, elements: list[Any]) -> tuple[str, str]:
        """``LastModified``/``LastClueNo`` from the answer, else from its last case."""
        modified = (reply.find_text("LastModified") or "").strip()
        clue_no = (reply.find_text("LastClueNo") or "").strip()
        if (not _STAMP.match(modified) or not clue_no) and elements:
            modified = (elements[-1].findtext("Modified") or "").strip()
            clue_no = (elements[-1].findtext("ClueNo") or "").strip()
        return (modified if _STAMP.match(modified) else ""), clue_no

    def fetch(self, external_id: str) -> RawRecord | None:
        """``QueryCase`` by ClueNo (reconciliation); None when the platform answers 2001."""
        try:
            reply = self.client.call("QueryCase", {"ClueNo": external_id})
        except BusinessError as exc:
            if exc.code == NOT_FOUND:
                return None
            raise
        case = reply.body.find("Case") if reply.body is not None else None
        record = record_of(case) if case is not None else None
        if record is None:
            raise PermanentError("QueryCase: answer without a usable <Case>")
        return record

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """Apply one ``create`` (``TransferClue``) or ``note`` (``AddRemark``) effect
        (``hub.facade.Deliverer``); 2003 (already transferred) is a success. See ``outbound``."""
        return self.writer.deliver(effect)

    def test_connection(self) -> ConnectionReport:
        """One ``QueryCases`` with ``MaxCount`` 1 (checks address, encoding and credentials)."""
        try:
            reply = self.query_cases(None, max_count=1)
        except AdapterError as exc:
            return ConnectionReport(ok=False, message=str(exc), detail={"kind": exc.kind, "code": exc.code})
        return ConnectionReport(ok=True, message="接口连通，账号有效",
                                detail={"more": reply.find_text("More") == "1"})
