"""The police plugin without the hub: webhook verification, records, reconciliation paging."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from werkzeug.serving import make_server

import plugins.police_patrol as plugin
from adapters.base import TransientError
from adapters.webhook import sign
from hub.facade import RawRecord, SystemConfig, SystemTypeRegistry, WebhookRequest
from plugins.police_patrol.connector import PoliceConnector, newest_gxsj, row_record
from sandbox.police_patrol import create_app

CST = timezone(timedelta(hours=8))
SECRET, TOKEN = "police-demo-secret", "police-demo-token"
LOG = logging.getLogger("test")
JQ = {"JJDBH": "310104202611230012", "JQLBDM": "LD03", "JQZTDM": "02", "GXSJ": "2026-11-23T09:15:01+08:00"}


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


class FakeInbox:
    """InboundSink + CursorStore in memory."""

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


def connector(base_url: str = "http://127.0.0.1:1", clock: Clock | None = None, *, token: str = TOKEN,
              **settings: Any) -> PoliceConnector:
    config = SystemConfig(key="police_patrol", plugin="police_patrol", name="police", base_url=base_url,
                          credentials={"webhook_secret": SECRET, "feedback_token": token},
                          settings=settings)
    return PoliceConnector(config, clock=clock.epoch) if clock else PoliceConnector(config)


def delivery(body: bytes, *, at: datetime, secret: str = SECRET, age_s: int = 0,
             header_case: str = "canonical") -> WebhookRequest:
    timestamp = str(int(at.timestamp()) - age_s)
    headers = {"X-Police-Timestamp": timestamp, "X-Police-Signature": sign(secret, timestamp, body),
               "Content-Type": "application/json; charset=utf-8"}
    if header_case == "lower":
        headers = {k.lower(): v for k, v in headers.items()}
    return WebhookRequest("POST", "/hooks/police_patrol", headers, body, at)


def event_body(**changes: Any) -> bytes:
    event = {"eventId": "5f0c-1", "eventType": "JQ_UPDATED", "seq": 2, "sentAt": "2026-11-23T09:15:02+08:00",
             "jq": JQ, **changes}
    return json.dumps(event, ensure_ascii=False).encode()


NOW = datetime(2026, 11, 23, 9, 15, 5, tzinfo=CST)


# ----- webhook -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header_case", ["canonical", "lower"])
def test_authentic_event_is_stored_verbatim(header_case: str) -> None:
    body = event_body(note="中文 ✓")
    inbox = FakeInbox()
    reply = connector().handle_webhook(delivery(body, at=NOW, header_case=header_case), inbox)
    assert (reply.status, reply.body) == (200, {"success": True})
    record = inbox.records["310104202611230012@2"]
    assert record.raw == body.decode("utf-8") and record.version == 2 and record.kind == "JQ_UPDATED"
    # a redelivery is a success and stores nothing new
    assert connector().handle_webhook(delivery(body, at=NOW), inbox).status == 200
    assert len(inbox.records) == 1


@pytest.mark.parametrize("secret, age_s, word", [("not-the-secret", 0, "signature"),
                                                 (SECRET, 301, "stale")])
def test_bad_signature_or_stale_timestamp_is_401_and_nothing_kept(secret: str, age_s: int, word: str) -> None:
    inbox = FakeInbox()
    reply = connector().handle_webhook(delivery(event_body(), at=NOW, secret=secret, age_s=age_s), inbox)
    assert reply.status == 401 and reply.body["success"] is False and word in reply.body["error"]
    assert not inbox.records and not inbox.rejected


def test_missing_signature_headers_is_401() -> None:
    inbox = FakeInbox()
    request = WebhookRequest("POST", "/hooks/police_patrol", {}, event_body(), NOW)
    assert connector().handle_webhook(request, inbox).status == 401


@pytest.mark.parametrize("body, field", [
    (b"{not json", "JSON"),
    (b"[1, 2]", "object"),
    (json.dumps({"eventType": "JQ_UPDATED", "seq": 2, "jq": JQ}).encode(), "eventId"),
    (event_body(seq=None), "seq"),
    (event_body(seq="2"), "seq"),
    (event_body(jq={"JQLBDM": "LD01"}), "JJDBH"),
    (event_body(jq=None), "jq"),
    ("\xff".encode("latin-1"), "UTF-8"),
])
def test_authentic_but_unidentifiable_is_rejected_with_400(body: bytes, field: str) -> None:
    inbox = FakeInbox()
    reply = connector().handle_webhook(delivery(body, at=NOW), inbox)
    assert reply.status == 400 and field in reply.body["error"]
    assert not inbox.records and len(inbox.rejected) == 1 and field in inbox.rejected[0][0]


def test_row_record_matches_the_webhook_event_id() -> None:
    record = row_record({"seq": 2, "jq": JQ})
    assert record.event_id == "310104202611230012@2" and record.version == 2
    assert json.loads(record.raw) == {"seq": 2, "jq": JQ}


def test_newest_gxsj_compares_instants_not_text() -> None:
    rows = [{"seq": 1, "jq": {"GXSJ": "2026-11-23T10:00:00+08:00"}},
            {"seq": 1, "jq": {"GXSJ": "2026-11-23T01:30:00Z"}},  # 09:30 +08:00: older
            {"seq": 1, "jq": {"GXSJ": None}}]
    assert newest_gxsj("2026-11-23T09:00:00+08:00", rows) == "2026-11-23T10:00:00+08:00"
    assert newest_gxsj("2026-11-23T11:00:00+08:00", rows) == "2026-11-23T11:00:00+08:00"


def test_registers_a_pushed_system_type_with_reconciliation() -> None:
    registry = SystemTypeRegistry()
    plugin.hub_register_system_types(registry)
    stype = registry.get("police_patrol")
    assert stype.push and stype.pull
    assert stype.credential_fields == ("webhook_secret", "feedback_token")
    assert set(stype.status_labels) == {"01", "02", "03", "04", "05", "06", "09", "99"}
    assert stype.default_mapping.is_file()


# ----- reconciliation against the simulator --------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def police(clock: Clock) -> Iterator[tuple[Any, str]]:
    app = create_app(clock=clock, dispatch_thread=False, reconcile_min_interval_s=0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def report_calls(app: Any, clock: Clock, n: int, step_s: float = 0) -> list[str]:
    sim = app.extensions["sandbox"]
    ids = []
    for _ in range(n):
        ids.append(sim.report({"JQLBDM": "LD01", "SFDD": "斜土路"})["jq"]["JJDBH"])
        clock.now += timedelta(seconds=step_s)
    return ids


@pytest.mark.parametrize("step_s", [0, 1])  # all in one second (paged by number), or spread (keyset)
def test_reconciliation_reads_every_page(police: tuple[Any, str], clock: Clock, step_s: float) -> None:
    app, url = police
    ids = report_calls(app, clock, 230, step_s)
    clock.now += timedelta(seconds=5)
    inbox = FakeInbox()
    report = connector(url, clock, reconcile_lookback_s=3600).poll(inbox, inbox, LOG)
    assert {r.external_id for r in inbox.records.values()} == set(ids)
    assert report.stored == 230 and report.pages >= 3
    newest = app.extensions["sandbox"].current(ids[-1])["jq"]["GXSJ"]
    assert inbox.cursors["gxsj"] == newest and "reconciled_at" in inbox.cursors


def test_reconciliation_runs_at_most_once_per_interval(police: tuple[Any, str], clock: Clock) -> None:
    app, url = police
    report_calls(app, clock, 1)
    inbox = FakeInbox()
    conn = connector(url, clock, reconcile_interval_s=600)
    assert conn.poll(inbox, inbox, LOG).stored == 1
    jjdbh = report_calls(app, clock, 1)[0]
    assert conn.poll(inbox, inbox, LOG).read == 0  # not due
    clock.now += timedelta(seconds=601)
    assert conn.poll(inbox, inbox, LOG).stored == 1
    assert f"{jjdbh}@1" in inbox.records


def test_reconciliation_starts_lookback_before_now(police: tuple[Any, str], clock: Clock) -> None:
    app, url = police
    report_calls(app, clock, 1)
    clock.now += timedelta(hours=2)
    inbox = FakeInbox()
    assert connector(url, clock, reconcile_lookback_s=3600).poll(inbox, inbox, LOG).read == 0
    inbox2 = FakeInbox()
    assert connector(url, clock, reconcile_lookback_s=3 * 3600).poll(inbox2, inbox2, LOG).read == 1


def test_rate_limit_is_a_transient_error(police: tuple[Any, str], clock: Clock) -> None:
    app, url = police
    app.extensions["sandbox"].reconcile_min_interval_s = 60
    inbox = FakeInbox()
    conn = connector(url, clock, reconcile_interval_s=0)
    conn.poll(inbox, inbox, LOG)
    with pytest.raises(TransientError) as caught:
        conn.poll(inbox, inbox, LOG)
    assert caught.value.http_status == 429


def test_fetch_and_test_connection(police: tuple[Any, str], clock: Clock) -> None:
    app, url = police
    (jjdbh,) = report_calls(app, clock, 1)
    record = connector(url, clock).fetch(jjdbh)
    assert record is not None and record.event_id == f"{jjdbh}@1"
    assert connector(url, clock).fetch("310104000000000000") is None
    assert connector(url, clock).test_connection().ok
    refused = connector(url, clock, token="wrong-token-value").test_connection()
    assert not refused.ok and "wrong-token-value" not in refused.message
