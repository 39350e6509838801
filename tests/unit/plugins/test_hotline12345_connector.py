"""The 12345 plugin without the hub: records, references, and the connector against the simulator."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from werkzeug.serving import make_server

import plugins.hotline12345 as plugin
from hub.facade import ExternalRef, RawRecord, SystemConfig, SystemTypeRegistry, TicketView
from plugins.hotline12345.connector import HotlineConnector, snapshot_record
from sandbox.hotline12345 import create_app

CST = timezone(timedelta(hours=8))
LOG = logging.getLogger("test")


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


class FakeInbox:
    """InboundSink + CursorStore in memory; keeps every batch to check cursor/page atomicity."""

    def __init__(self) -> None:
        self.records: dict[str, RawRecord] = {}
        self.cursors: dict[str, str] = {}
        self.batches: list[tuple[list[RawRecord], tuple[str, str] | None]] = []
        self.rejected: list[tuple[str, str]] = []

    def get(self, name: str) -> str | None:
        return self.cursors.get(name)

    def store(self, record: RawRecord) -> bool:
        return self.store_many([record]) == 1

    def store_many(self, records: Sequence[RawRecord], cursor: tuple[str, str] | None = None) -> int:
        new = [r for r in records if r.event_id not in self.records]
        self.records.update((r.event_id, r) for r in new)
        if cursor is not None:
            self.cursors[cursor[0]] = cursor[1]
        self.batches.append((list(records), cursor))
        return len(new)

    def reject(self, reason: str, raw: str, content_type: str = "application/json") -> None:
        self.rejected.append((reason, raw))


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(CST))


@pytest.fixture
def served(clock: Clock) -> Iterator[tuple[Any, str]]:
    app = create_app(clock=clock, rate_limit_per_s=0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}/openapi/v2"
    server.shutdown()
    server.server_close()


def connector(base_url: str, *, secret: str = "demo-secret-0001", **settings: Any) -> HotlineConnector:
    config = SystemConfig(key="hotline12345", plugin="hotline12345", name="12345", base_url=base_url,
                          credentials={"app_key": "demo-app", "app_secret": secret},
                          settings={"units": ["斜土路街道"], **settings})
    return HotlineConnector(config)


def ticket(payload: dict[str, Any], system_type: str = "hotline12345") -> TicketView:
    return TicketView(id=1, system_key="hotline12345", system_type=system_type,
                      external_id=str(payload.get("gdbh")), case_id=None, fields={}, payload=payload)


# ----- pure logic ---------------------------------------------------------------------------------


def test_snapshot_record_is_deterministic_and_identified_by_gdbh_and_version() -> None:
    item = {"version": 3, "gdbh": "GD1", "sqbt": "占道经营😀", "blgc": [{"czlx": "PD"}]}
    reordered = dict(reversed(list(item.items())))
    record = snapshot_record(item)
    assert record is not None
    assert (record.event_id, record.external_id, record.version) == ("GD1@3", "GD1", 3)
    assert record.raw == snapshot_record(reordered).raw  # type: ignore[union-attr]
    assert "占道经营😀" in record.raw and json.loads(record.raw) == item


@pytest.mark.parametrize("item", [{"version": 1}, {"gdbh": "", "version": 1}, {"gdbh": "GD1"},
                                  {"gdbh": "GD1", "version": "1"}, {"gdbh": "GD1", "version": True},
                                  ["GD1", 1]])
def test_unidentifiable_items_give_no_record(item: Any) -> None:
    assert snapshot_record(item) is None


def test_duplicate_work_order_references_its_master() -> None:
    refs = plugin.hub_ticket_references(ticket({"gdbh": "GD2", "zt": "80", "zgdbh": "GD1"}))
    assert refs == [ExternalRef(system_type="hotline12345", external_id="GD1", relation="duplicate_of")]


@pytest.mark.parametrize("payload, system_type", [
    ({"gdbh": "GD2", "zt": "30", "zgdbh": None}, "hotline12345"),
    ({"gdbh": "GD2", "zt": "80", "zgdbh": ""}, "hotline12345"),
    ({"gdbh": "GD2", "zt": "80", "zgdbh": "GD1"}, "city_management"),
])
def test_no_reference_otherwise(payload: dict[str, Any], system_type: str) -> None:
    assert not plugin.hub_ticket_references(ticket(payload, system_type))


def test_registers_a_pulled_system_type_with_the_spec_statuses() -> None:
    registry = SystemTypeRegistry()
    plugin.hub_register_system_types(registry)
    stype = registry.get("hotline12345")
    assert stype.pull and not stype.push
    assert stype.credential_fields == ("app_key", "app_secret")
    assert set(stype.status_labels) == {"10", "20", "30", "35", "40", "50", "60", "70", "80"}
    assert stype.default_mapping.is_file()
    assert isinstance(stype.connector_factory(SystemConfig("k", "hotline12345", "n", "http://x/openapi/v2",
                                                           {}, {})), HotlineConnector)


# ----- against the simulator ----------------------------------------------------------------------


def take_calls(app: Any, n: int) -> list[str]:
    sim = app.extensions["sandbox"]
    return [sim.take_call({"sqbt": f"第{i}件", "wtfl": "0301"})["gdbh"] for i in range(n)]


def test_poll_reads_every_page_and_moves_the_cursor_with_each(served: tuple[Any, str]) -> None:
    app, url = served
    gdbhs = take_calls(app, 7)
    inbox = FakeInbox()
    report = connector(url, page_limit=3).poll(inbox, inbox, LOG)
    assert (report.read, report.stored, report.pages, report.more) == (7, 7, 3, False)
    assert sorted(r.external_id for r in inbox.records.values()) == sorted(gdbhs)
    assert all(cursor is not None and cursor[0] == "feed" for _, cursor in inbox.batches)
    assert [len(records) for records, _ in inbox.batches] == [3, 3, 1]
    # nothing new: one empty page, same records
    again = connector(url, page_limit=3).poll(inbox, inbox, LOG)
    assert (again.read, again.stored, again.pages) == (0, 0, 1)


def test_poll_stops_after_max_pages_and_says_more(served: tuple[Any, str]) -> None:
    app, url = served
    take_calls(app, 5)
    inbox = FakeInbox()
    first = connector(url, page_limit=2, max_pages_per_poll=2).poll(inbox, inbox, LOG)
    assert (first.read, first.pages, first.more) == (4, 2, True)
    second = connector(url, page_limit=2, max_pages_per_poll=2).poll(inbox, inbox, LOG)
    assert (second.read, second.more) == (1, False)
    assert len(inbox.records) == 5


def test_replay_from_the_start_stores_nothing_new(served: tuple[Any, str]) -> None:
    app, url = served
    take_calls(app, 4)
    inbox = FakeInbox()
    connector(url).poll(inbox, inbox, LOG)
    inbox.cursors.clear()  # an old cursor: everything comes again
    report = connector(url).poll(inbox, inbox, LOG)
    assert (report.read, report.stored) == (4, 0)


def test_unidentifiable_item_is_rejected_and_the_page_still_stored() -> None:
    class Client:
        def request(self, method: str, path: str, params: Any = None, **_: Any) -> Any:
            return {"items": [{"gdbh": "GD1", "version": 1}, {"version": 2}], "nextCursor": "c1",
                    "hasMore": False}

    conn = connector("http://127.0.0.1:1/openapi/v2")
    conn.client = Client()  # type: ignore[assignment]
    inbox = FakeInbox()
    report = conn.poll(inbox, inbox, LOG)
    assert (report.read, report.stored) == (2, 1)
    assert inbox.cursors == {"feed": "c1"}
    assert len(inbox.rejected) == 1 and "gdbh" in inbox.rejected[0][0]


def test_fetch_returns_the_snapshot_or_none(served: tuple[Any, str]) -> None:
    app, url = served
    (gdbh,) = take_calls(app, 1)
    record = connector(url).fetch(gdbh)
    assert record is not None and record.event_id == f"{gdbh}@2"
    assert connector(url).fetch("GD_DOES_NOT_EXIST") is None


def test_test_connection_reports_what_it_saw_and_hides_the_secret(served: tuple[Any, str]) -> None:
    app, url = served
    (gdbh,) = take_calls(app, 1)
    good = connector(url).test_connection()
    assert good.ok and good.detail["first"] == gdbh and gdbh in good.message
    bad = connector(url, secret="wrong-secret-value").test_connection()
    assert not bad.ok and "4010" in bad.message
    assert "wrong-secret-value" not in bad.message + json.dumps(bad.detail)
