"""The 数字城管 connector against the 数字城管 simulator (served on 127.0.0.1), without the hub."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from werkzeug.serving import make_server

import plugins.city_management as plugin
from adapters.base import AuthError, TransientError
from hub.facade import ExternalRef, RawRecord, SystemConfig, TicketView
from plugins.city_management.connector import CURSOR, CityManagementConnector, int_setting, record_of
from sandbox.city_management import create_app

SHANGHAI = timezone(timedelta(hours=8))
X, Y = 3_448_000.0, 551_000.0
LOG = logging.getLogger("test")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


class FakeInbox:
    """InboundSink + CursorStore in memory: unique per event id, cursor moves with the records."""

    def __init__(self) -> None:
        self.records: dict[str, RawRecord] = {}
        self.cursors: dict[str, str] = {}
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
        return len(new)

    def reject(self, reason: str, raw: str, content_type: str = "application/json") -> None:
        self.rejected.append((reason, raw))

    def newest(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for r in self.records.values():
            assert r.version is not None
            found[r.external_id] = max(found.get(r.external_id, 0), r.version)
        return found


class Platform:
    """The simulator app on an ephemeral port, its state object and fake clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.app = create_app(clock=self.clock)
        self.sim = self.app.extensions["sandbox"]
        self.faults = self.app.extensions["faults"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def file(self, count: int, **fields: Any) -> list[str]:
        return [self.sim.file_case({"bigClass": "05", "smallClass": "0504", "description": f"店外经营{i}",
                                    "x": X, "y": Y, **fields})["caseId"] for i in range(count)]

    def newest(self) -> dict[str, int]:
        return {c["caseId"]: c["version"] for c in self.sim.state()["cases"]}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def platform() -> Iterator[Platform]:
    served = Platform()
    yield served
    served.stop()


def connector(platform: Platform, secret: str = "dcm-demo-secret", **settings: Any) -> CityManagementConnector:
    return CityManagementConnector(SystemConfig(
        key="city_management", plugin="city_management", name="数字城管", base_url=platform.url + "/",
        credentials={"client_id": "gridhub", "client_secret": secret}, settings=settings))


def on_page(conn: CityManagementConnector, hook: Any) -> list[dict[str, Any]]:
    """Call ``hook(params)`` after every list-page answer (the platform moves between pages)."""
    seen: list[dict[str, Any]] = []
    original = conn.transport.request

    def request(method: str, url: str, **kw: Any) -> Any:
        resp = original(method, url, **kw)
        if method == "GET" and url.endswith("/dcm/api/cases"):
            seen.append(dict(kw.get("params") or {}))
            hook(dict(kw.get("params") or {}))
        return resp

    conn.transport.request = request  # type: ignore[method-assign]
    return seen


def test_poll_reads_every_case_as_sorted_json_with_event_ids_and_moves_the_cursor(platform: Platform) -> None:
    platform.file(3)
    platform.clock.tick(2)
    ids = platform.file(1, source="03", externalNo="GD2026112300017") + platform.file(1)
    inbox = FakeInbox()
    report = connector(platform).poll(inbox, inbox, LOG)
    assert inbox.newest() == platform.newest()
    assert report.stored == 5 and not report.more
    record = next(r for r in inbox.records.values() if r.external_id == ids[0])
    assert record.event_id == f"{ids[0]}@1" and record.version == 1
    row = platform.sim.get_case(ids[0])
    assert record.raw == json.dumps(row, ensure_ascii=False, sort_keys=True)
    assert json.loads(record.raw)["description"] == "店外经营0"  # Chinese kept as text
    assert inbox.cursors[CURSOR] == row["updateTime"]
    again = connector(platform).poll(inbox, inbox, LOG)
    assert again.stored == 0


def test_first_request_has_no_updated_from_and_later_ones_restart_at_page_one(platform: Platform) -> None:
    platform.file(4)
    platform.clock.tick()
    platform.file(4)
    conn = connector(platform, page_size=3)
    params = on_page(conn, lambda p: None)
    inbox = FakeInbox()
    conn.poll(inbox, inbox, LOG)
    assert "updatedFrom" not in params[0]
    assert all(int(p["pageSize"]) == 3 for p in params)
    assert inbox.newest() == platform.newest()
    conn.poll(inbox, inbox, LOG)
    assert params[-1]["updatedFrom"] == inbox.cursors[CURSOR]


def test_cases_moving_while_paging_are_not_lost(platform: Platform) -> None:
    first = platform.file(9)  # one crowded second, pages of 3
    platform.clock.tick()
    second = platform.file(5)
    platform.clock.tick(5)
    order = sorted(first) + sorted(second)
    moves = iter([[order[0]], [order[4], order[10]], [], [order[1], order[12]], [order[7]]])

    def move(params: dict[str, Any]) -> None:
        platform.clock.tick()
        for case_id in next(moves, []):
            status = platform.sim.get_case(case_id)["status"]
            platform.sim.advance(case_id, {"01": "02", "02": "03", "03": "04"}[status])

    conn = connector(platform, page_size=3)
    on_page(conn, move)
    inbox = FakeInbox()
    while conn.poll(inbox, inbox, LOG).more:
        pass
    conn.poll(inbox, inbox, LOG)
    assert inbox.newest() == platform.newest()


def test_token_revoked_mid_poll_is_renewed_once_and_the_poll_goes_on(platform: Platform) -> None:
    platform.file(7)
    conn = connector(platform, page_size=2)
    on_page(conn, lambda p: platform.sim.revoke_tokens())
    inbox = FakeInbox()
    report = conn.poll(inbox, inbox, LOG)
    assert not report.more
    assert inbox.newest() == platform.newest()


def test_a_gateway_error_mid_poll_propagates_and_the_next_poll_resumes(platform: Platform) -> None:
    platform.file(3)
    platform.clock.tick()
    platform.file(3)
    platform.clock.tick()
    platform.file(3)
    conn = connector(platform, page_size=3)
    answered = iter(range(100))

    def fail_after_two(params: dict[str, Any]) -> None:
        if next(answered) == 1:
            platform.faults.update({"error_5xx_rate": 1.0})  # from the third request on

    on_page(conn, fail_after_two)
    inbox = FakeInbox()
    with pytest.raises(TransientError):
        conn.poll(inbox, inbox, LOG)
    stored_cursor = inbox.cursors[CURSOR]
    assert 3 <= len(inbox.records) < 9
    platform.faults.reset()
    conn.poll(inbox, inbox, LOG)
    assert inbox.newest() == platform.newest()
    assert inbox.cursors[CURSOR] >= stored_cursor


def test_rate_limit_is_transient_with_retry_after(platform: Platform) -> None:
    platform.file(1)
    platform.faults.update({"rate_limit_per_s": 1, "retry_after_s": 3})
    inbox = FakeInbox()
    with pytest.raises(TransientError) as caught:
        connector(platform).poll(inbox, inbox, LOG)  # token request + page request in one second
    assert caught.value.http_status == 429 and caught.value.retry_after == 3


def test_wrong_client_secret_is_an_auth_error(platform: Platform) -> None:
    inbox = FakeInbox()
    with pytest.raises(AuthError):
        connector(platform, secret="wrong").poll(inbox, inbox, LOG)
    report = connector(platform, secret="wrong").test_connection()
    assert not report.ok and "wrong" not in report.message


def test_test_connection_reads_one_row(platform: Platform) -> None:
    platform.file(2)
    report = connector(platform).test_connection()
    assert report.ok and report.detail["total"] == 2


def test_fetch_returns_the_snapshot_or_none(platform: Platform) -> None:
    (case_id,) = platform.file(1)
    conn = connector(platform)
    record = conn.fetch(case_id)
    assert record is not None and record.event_id == f"{case_id}@1"
    assert conn.fetch("c9999999-deadbeef") is None
    assert conn.fetch("no/such id") is None


def test_rows_that_cannot_be_identified_are_rejected() -> None:
    assert record_of({"caseId": "", "version": 1}) is None
    assert record_of({"caseId": "a", "version": "2"}) is None
    assert record_of({"caseId": "a", "version": True}) is None
    record = record_of({"caseId": "a", "version": 2, "updateTime": "2026-11-23T10:00:00"})
    assert record is not None and record.event_id == "a@2"


def test_settings_are_clamped() -> None:
    assert int_setting({"page_size": 500}, "page_size", 100, 1, 100) == 100
    assert int_setting({"page_size": "x"}, "page_size", 100, 1, 100) == 100
    assert int_setting({}, "max_pages_per_poll", 50, 1, None) == 50
    assert int_setting({"page_size": 0}, "page_size", 100, 1, 100) == 1


def view(payload: dict[str, Any], system_type: str = "city_management") -> TicketView:
    return TicketView(id=1, system_key="dcm", system_type=system_type, external_id="c1", case_id=None,
                      fields={}, payload=payload)


def test_hub_ticket_references() -> None:
    assert plugin.hub_ticket_references(view({"source": "03", "externalNo": "GD1"})) == [
        ExternalRef("hotline12345", "GD1", "transferred_from")]
    assert plugin.hub_ticket_references(view({"source": "07", "externalNo": "GH-1"})) == [
        ExternalRef("gridhub", "GH-1", "created_by_hub")]
    assert plugin.hub_ticket_references(view({"source": "03", "externalNo": ""})) == []
    assert plugin.hub_ticket_references(view({"source": "01", "externalNo": "X"})) == []
    assert plugin.hub_ticket_references(view({"source": "03", "externalNo": "GD1"}, "hotline12345")) is None


def test_system_type_registration() -> None:
    class Registry:
        def __init__(self) -> None:
            self.types: list[Any] = []

        def register(self, system_type: Any) -> None:
            self.types.append(system_type)

    registry = Registry()
    plugin.hub_register_system_types(registry)  # type: ignore[arg-type]
    (stype,) = registry.types
    assert stype.key == "city_management" and stype.pull and not stype.push
    assert stype.credential_fields == ("client_id", "client_secret")
    assert stype.status_labels["05"] == "处置完成待核查" and len(stype.status_labels) == 10
    assert stype.default_mapping.name == "city_management.yaml"
