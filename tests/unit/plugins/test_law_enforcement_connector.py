"""The 综合执法 connector against the 综合执法 simulator (served on 127.0.0.1), without the hub."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from lxml import etree
from werkzeug.serving import make_server

import plugins.law_enforcement as plugin
from adapters.base import AuthError, TransientError
from hub.facade import ExternalRef, RawRecord, SystemConfig, TicketView
from plugins.law_enforcement.connector import (
    CURSOR,
    LawEnforcementConnector,
    decode_case,
    exchange_url,
    parse_cursor,
    record_of,
)
from sandbox.law_enforcement import create_app

SHANGHAI = timezone(timedelta(hours=8))
LOG = logging.getLogger("test")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


class FakeInbox:
    def __init__(self) -> None:
        self.records: dict[str, RawRecord] = {}
        self.order: list[str] = []
        self.cursors: dict[str, str] = {}
        self.rejected: list[tuple[str, str]] = []

    def get(self, name: str) -> str | None:
        return self.cursors.get(name)

    def store(self, record: RawRecord) -> bool:
        return self.store_many([record]) == 1

    def store_many(self, records: Sequence[RawRecord], cursor: tuple[str, str] | None = None) -> int:
        new = [r for r in records if r.event_id not in self.records]
        for r in new:
            self.records[r.event_id] = r
            self.order.append(r.event_id)
        if cursor is not None:
            self.cursors[cursor[0]] = cursor[1]
        return len(new)

    def reject(self, reason: str, raw: str, content_type: str = "application/json") -> None:
        self.rejected.append((reason, raw))

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last stored snapshot of every case, decoded (what the hub would apply last)."""
        found: dict[str, dict[str, Any]] = {}
        for event_id in self.order:
            record = self.records[event_id]
            found[record.external_id] = decode_case(record.raw)
        return found


class Platform:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.app = create_app(clock=self.clock, latency_s=0, rate_limit_per_s=0)
        self.sim = self.app.extensions["sandbox"]
        self.faults = self.app.extensions["faults"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def file(self, count: int, **fields: Any) -> list[str]:
        return [self.sim.file_case({"Content": f"占道经营{i}", "Address": "斜土路1200号", **fields})["ClueNo"]
                for i in range(count)]

    def cases(self) -> dict[str, dict[str, Any]]:
        return {c["ClueNo"]: {k: v for k, v in c.items() if not k.startswith("_")}
                for c in self.sim.state()["cases"]}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform() -> Iterator[Platform]:
    served = Platform()
    yield served
    served.stop()


def connector(platform: Platform, password: str = "zf-demo-pass", **settings: Any) -> LawEnforcementConnector:
    return LawEnforcementConnector(SystemConfig(
        key="law_enforcement", plugin="law_enforcement", name="综合执法", base_url=platform.url,
        credentials={"user": "wgzx", "password": password}, settings=settings))


def requests_of(conn: LawEnforcementConnector, hook: Any = None) -> list[bytes]:
    """Record every request body (GBK bytes); ``hook()`` runs after each answer."""
    bodies: list[bytes] = []
    original = conn.transport.request

    def request(method: str, url: str, **kw: Any) -> Any:
        resp = original(method, url, **kw)
        bodies.append(kw["data"])
        if hook is not None:
            hook()
        return resp

    conn.transport.request = request  # type: ignore[method-assign]
    return bodies


def body_of(request: bytes) -> dict[str, str]:
    root = etree.fromstring(request.decode("gbk").split("?>", 1)[1])
    return {child.tag: child.text or "" for child in root.find("Body")}


def test_poll_stores_each_case_as_its_xml_with_digest_event_ids(platform: Platform) -> None:
    (clue_no,) = platform.file(1, Category="CG-0101")
    inbox = FakeInbox()
    report = connector(platform).poll(inbox, inbox, LOG)
    assert report.stored == 1 and not report.more
    (record,) = inbox.records.values()
    case = platform.cases()[clue_no]
    assert record.external_id == clue_no and record.version == int(case["Modified"])
    assert record.content_type == "application/xml"
    assert record.raw.startswith("<Case><ClueNo>") and record.raw.endswith("</Case>")
    digest = hashlib.sha256(record.raw.encode()).hexdigest()[:16]
    assert record.event_id == f"{clue_no}@{case['Modified']}@{digest}"
    assert decode_case(record.raw) == case
    assert inbox.cursors[CURSOR] == f"{case['Modified']}|{clue_no}"


def test_every_poll_starts_with_the_whole_cursor_second_and_pages_with_after_clue_no(platform: Platform) -> None:
    platform.file(5)
    conn = connector(platform, max_count=2)
    sent = requests_of(conn)
    inbox = FakeInbox()
    conn.poll(inbox, inbox, LOG)
    bodies = [body_of(b) for b in sent]
    assert "ModifiedSince" not in bodies[0] and bodies[0]["MaxCount"] == "2"
    assert all(b["AfterClueNo"] for b in bodies[1:]) and len(bodies) == 3
    sent.clear()
    assert conn.poll(inbox, inbox, LOG).stored == 0  # the cursor second again: nothing new
    first = body_of(sent[0])
    assert first["ModifiedSince"] == inbox.cursors[CURSOR].split("|")[0] and "AfterClueNo" not in first


def test_a_case_changed_in_the_same_second_behind_the_cursor_is_not_missed(platform: Platform) -> None:
    clues = platform.file(3)
    inbox = FakeInbox()
    conn = connector(platform)
    conn.poll(inbox, inbox, LOG)
    assert inbox.cursors[CURSOR].endswith(clues[-1])
    platform.sim.advance(clues[0], "HC")  # same second, smaller ClueNo than the cursor's
    assert conn.poll(inbox, inbox, LOG).stored == 1
    assert inbox.latest()[clues[0]]["Status"] == "HC"


def test_cases_moving_while_paging_are_not_lost(platform: Platform) -> None:
    clues = platform.file(6)
    platform.clock.tick()
    clues += platform.file(6)
    moves = iter([[clues[0]], [clues[7], clues[1]], [], [clues[11]], [clues[2]]])

    def move() -> None:
        platform.clock.tick()
        for clue_no in next(moves, []):
            status = platform.cases()[clue_no]["Status"]
            platform.sim.advance(clue_no, {"XSDJ": "HC", "HC": "LA"}[status])

    conn = connector(platform, max_count=3)
    requests_of(conn, move)
    inbox = FakeInbox()
    while conn.poll(inbox, inbox, LOG).more:
        pass
    conn.poll(inbox, inbox, LOG)
    assert inbox.latest() == platform.cases()


def test_call_budget_leaves_more_and_the_next_poll_continues(platform: Platform) -> None:
    platform.file(7)
    conn = connector(platform, max_count=2, max_calls_per_poll=2)
    inbox = FakeInbox()
    first = conn.poll(inbox, inbox, LOG)
    assert first.more and first.pages == 2
    for _ in range(5):  # the crowded second is re-read with half the budget, then continued
        if not conn.poll(inbox, inbox, LOG).more:
            break
    assert set(inbox.latest()) == set(platform.cases())


def test_maintenance_and_rate_limit_are_transient_and_nothing_is_lost(platform: Platform) -> None:
    platform.file(4)
    inbox = FakeInbox()
    conn = connector(platform, max_count=2)
    platform.faults.update({"maintenance": True})
    with pytest.raises(TransientError) as caught:
        conn.poll(inbox, inbox, LOG)
    assert caught.value.code == "3001"
    platform.faults.reset()
    platform.sim.rate_limit_per_s = 1  # the second call of the poll is one too many
    with pytest.raises(TransientError) as caught:
        conn.poll(inbox, inbox, LOG)
    assert caught.value.code == "1003"
    assert len(inbox.records) == 2  # the first page was stored with its cursor
    platform.sim.rate_limit_per_s = 0
    conn.poll(inbox, inbox, LOG)
    assert inbox.latest() == platform.cases()


def test_gateway_errors_are_transient(platform: Platform) -> None:
    platform.faults.update({"error_5xx_rate": 1.0})
    inbox = FakeInbox()
    with pytest.raises(TransientError):
        connector(platform).poll(inbox, inbox, LOG)


def test_chinese_and_a_replaced_emoji_arrive_intact(platform: Platform) -> None:
    (clue_no,) = platform.file(1, Content="店外占道经营，油烟很大😡请处理", Address="徐汇区斜土路１２００号")
    inbox = FakeInbox()
    connector(platform).poll(inbox, inbox, LOG)
    case = inbox.latest()[clue_no]
    assert case["Content"] == "店外占道经营，油烟很大?请处理"
    assert case["Address"] == "徐汇区斜土路１２００号"


def test_wrong_password_is_an_auth_error(platform: Platform) -> None:
    inbox = FakeInbox()
    with pytest.raises(AuthError):
        connector(platform, password="wrong").poll(inbox, inbox, LOG)
    report = connector(platform, password="wrong").test_connection()
    assert not report.ok and report.detail["code"] == "1001" and "wrong" not in report.message


def test_test_connection_and_fetch(platform: Platform) -> None:
    (clue_no,) = platform.file(1)
    conn = connector(platform)
    sent = requests_of(conn)
    assert conn.test_connection().ok
    assert body_of(sent[0])["MaxCount"] == "1"
    record = conn.fetch(clue_no)
    assert record is not None and record.external_id == clue_no
    assert conn.fetch("ZF-2026-999999") is None


def test_decode_and_identify() -> None:
    assert decode_case("<Case><ClueNo>ZF-1</ClueNo><CaseNo/><Content>噪声</Content></Case>") == {
        "ClueNo": "ZF-1", "CaseNo": "", "Content": "噪声"}
    with pytest.raises(ValueError):
        decode_case("<Case><ClueNo>")
    with pytest.raises(ValueError):
        decode_case("<Clue/>")
    # an external entity is never resolved
    assert decode_case('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Case><A>&e;</A></Case>') == {
        "A": ""}
    bad = etree.fromstring("<Case><ClueNo>ZF-1</ClueNo><Modified>2026</Modified></Case>")
    assert record_of(bad) is None
    assert parse_cursor("20261123100000|ZF-2026-004501") == ("20261123100000", "ZF-2026-004501")
    assert parse_cursor("garbage") is None and parse_cursor(None) is None
    assert exchange_url("http://h:1/") == "http://h:1/zfba/ws/exchange"
    assert exchange_url("http://h:1/zfba/ws/exchange") == "http://h:1/zfba/ws/exchange"


def view(payload: dict[str, Any], system_type: str = "law_enforcement") -> TicketView:
    return TicketView(id=1, system_key="zf", system_type=system_type, external_id="ZF-1", case_id=None,
                      fields={}, payload=payload)


def test_hub_ticket_references() -> None:
    assert plugin.hub_ticket_references(view({"Source": "12345", "ExternalNo": "GD1"})) == [
        ExternalRef("hotline12345", "GD1", "transferred_from")]
    assert plugin.hub_ticket_references(view({"Source": "网格", "ExternalNo": "GH-9"})) == [
        ExternalRef("gridhub", "GH-9", "created_by_hub")]
    assert plugin.hub_ticket_references(view({"Source": "巡查", "ExternalNo": ""})) == []
    assert plugin.hub_ticket_references(view({"Source": "12345", "ExternalNo": "GD1"}, "city_management")) is None


def test_system_type_registration() -> None:
    class Registry:
        def __init__(self) -> None:
            self.types: list[Any] = []

        def register(self, system_type: Any) -> None:
            self.types.append(system_type)

    registry = Registry()
    plugin.hub_register_system_types(registry)  # type: ignore[arg-type]
    (stype,) = registry.types
    assert stype.key == "law_enforcement" and stype.decode is decode_case
    assert stype.credential_fields == ("user", "password")
    assert set(stype.status_labels) == {"XSDJ", "HC", "LA", "DCQZ", "SC", "CFJD", "ZX", "JA", "BYLA", "YS"}
