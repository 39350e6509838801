"""The police simulator serves shared/world/police_patrol.md: webhooks, moves, feedback, reconciliation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from sandbox.police_patrol import create_app

CST = timezone(timedelta(hours=8))
SECRET, TOKEN = "police-demo-secret", "police-demo-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# the spec's schedule, counted from the first attempt
SPEC_RETRIES_S = [60, 6 * 60, 36 * 60, 156 * 60, *range(156 * 60 + 7200, 24 * 3600 + 1, 7200)]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


class Receiver:
    """A stand-in for the hub's webhook endpoint on a real socket."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; 200 once exhausted
        self.default_status = 200
        app = Flask("receiver")

        @app.post("/hooks/police_patrol")
        def hook() -> tuple[str, int]:
            self.received.append({"headers": dict(request.headers), "body": request.get_data()})
            return "", self.statuses.pop(0) if self.statuses else self.default_status

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/police_patrol"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent check of X-Police-Signature."""
    expected = hmac.new(secret.encode(), headers["X-Police-Timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(expected.digest()).decode(), headers["X-Police-Signature"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hub = Receiver()
    yield hub
    hub.server.shutdown()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 15, 2, tzinfo=CST))


@pytest.fixture
def app(receiver: Receiver, clock: Clock) -> Any:
    return create_app(webhook_url=receiver.url, clock=clock, dispatch_thread=False,
                      reconcile_min_interval_s=0)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def report(client: Any, **fields: Any) -> dict[str, Any]:
    body = {"JQLBDM": "LD03", "JYQK": "私家车堵住消防通道", "SFDD": "徐汇区斜土路1175号",
            "JD": 121.4532, "WD": 31.1921, **fields}
    response = client.post("/_sandbox/jq", json=body)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def move(client: Any, jjdbh: str, status: str, **fields: Any) -> Any:
    return client.post(f"/_sandbox/jq/{jjdbh}/status", json={"JQZTDM": status, **fields})


def to_transferred(client: Any) -> str:
    jjdbh = report(client)["jq"]["JJDBH"]
    for status in ("02", "03", "04"):
        assert move(client, jjdbh, status).status_code == 200
    assert move(client, jjdbh, "06", YJDW="城管", CLJG="移交城管处置").status_code == 200
    return str(jjdbh)


def feedback(client: Any, jjdbh: str, kind: str = "CZ", when: str = "2026-11-23T10:02:00+08:00",
             headers: dict[str, str] | None = None) -> Any:
    body = {"JJDBH": jjdbh, "FKLX": kind, "FKNR": "城管中队已到场劝离。", "FKSJ": when,
            "FKDW": "斜土街道网格化综合管理中心"}
    return client.post("/ldpt/api/feedback", json=body, headers=AUTH if headers is None else headers)


# ----- webhook delivery ----------------------------------------------------------------------------
def test_created_event_is_signed_and_verifiable(client: Any, receiver: Receiver, clock: Clock) -> None:
    created = report(client, BJRXM="王某", BJRDH="13812345678")
    assert client.post("/_sandbox/deliver").get_json() == {"attempted": 1}
    [delivery] = receiver.received
    headers = delivery["headers"]
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Police-Timestamp"] == str(int(clock.now.timestamp()))
    assert verify(SECRET, headers, delivery["body"])
    assert not verify("another-secret", headers, delivery["body"])
    event = json.loads(delivery["body"])
    assert event["eventType"] == "JQ_CREATED" and event["seq"] == 1
    assert headers["X-Police-Event-Id"] == event["eventId"]
    assert event["sentAt"] == "2026-11-23T09:15:02+08:00"
    jq = event["jq"]
    assert jq == created["jq"]
    assert jq["JJDBH"].startswith("31010420261123") and len(jq["JJDBH"]) == 18
    assert jq["JQLBMC"] == "机动车乱停放阻碍交通" and jq["CJDW"] == "" and jq["CLJG"] is None
    assert "BJRXM" not in jq and "13812345678" not in delivery["body"].decode()


def test_failed_delivery_is_retried_with_frozen_body(client: Any, receiver: Receiver, clock: Clock) -> None:
    report(client)
    receiver.statuses = [500]
    client.post("/_sandbox/deliver")
    clock.now += timedelta(seconds=59)
    assert client.post("/_sandbox/deliver").get_json() == {"attempted": 0}
    clock.now += timedelta(seconds=1)
    assert client.post("/_sandbox/deliver").get_json() == {"attempted": 1}
    first, second = receiver.received
    assert first["body"] == second["body"]  # eventId and sentAt frozen at the first attempt
    assert int(second["headers"]["X-Police-Timestamp"]) - int(first["headers"]["X-Police-Timestamp"]) == 60
    assert first["headers"]["X-Police-Signature"] != second["headers"]["X-Police-Signature"]
    assert verify(SECRET, second["headers"], second["body"])
    state = client.get("/_sandbox/state").get_json()
    assert [d["httpStatus"] for d in state["deliveries"]] == [500, 200]
    assert state["events"][0]["status"] == "delivered"


def test_retry_schedule_then_dropped(client: Any, receiver: Receiver, clock: Clock) -> None:
    report(client)
    receiver.default_status = 503
    start = clock.now
    client.post("/_sandbox/deliver")
    for offset in SPEC_RETRIES_S:
        clock.now = start + timedelta(seconds=offset - 1)
        assert client.post("/_sandbox/deliver").get_json()["attempted"] == 0
        clock.now = start + timedelta(seconds=offset)
        assert client.post("/_sandbox/deliver").get_json()["attempted"] == 1
    clock.now = start + timedelta(hours=30)
    assert client.post("/_sandbox/deliver").get_json()["attempted"] == 0
    assert len(receiver.received) == 1 + len(SPEC_RETRIES_S)
    state = client.get("/_sandbox/state").get_json()
    assert state["events"][0]["status"] == "dropped"
    assert [d["eventId"] for d in state["dropped"]] == [state["events"][0]["eventId"]]


def test_time_scale_divides_delays(receiver: Receiver, clock: Clock) -> None:
    app = create_app(webhook_url=receiver.url, clock=clock, time_scale=60, dispatch_thread=False)
    client = app.test_client()
    report(client)
    receiver.statuses = [500]
    client.post("/_sandbox/deliver")
    clock.now += timedelta(seconds=1)
    assert client.post("/_sandbox/deliver").get_json()["attempted"] == 1
    assert len(receiver.received) == 2


def test_dispatcher_thread_delivers_and_retries_by_itself(receiver: Receiver) -> None:
    app = create_app(time_scale=600)  # +1 min becomes 0.1 s
    client = app.test_client()
    receiver.statuses = [502]
    report(client)
    client.put("/_sandbox/webhook", json={"url": receiver.url, "secret": "rotated-secret"})
    deadline = time.monotonic() + 5
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    app.extensions["sandbox"].dispatcher.stop()
    assert len(receiver.received) == 2
    assert all(verify("rotated-secret", r["headers"], r["body"]) for r in receiver.received)


def test_duplicate_fault_delivers_each_event_twice(client: Any, receiver: Receiver) -> None:
    client.put("/_sandbox/faults", json={"duplicate_rate": 1.0})
    jjdbh = report(client)["jq"]["JJDBH"]
    move(client, jjdbh, "02", CJDW="巡逻二组")
    client.post("/_sandbox/deliver")
    ids = [r["headers"]["X-Police-Event-Id"] for r in receiver.received]
    assert len(ids) == 4 and len(set(ids)) == 2
    assert ids[0] == ids[1] and receiver.received[0]["body"] == receiver.received[1]["body"]


def test_reorder_fault_delivers_batch_newest_first(client: Any, receiver: Receiver) -> None:
    client.put("/_sandbox/faults", json={"reorder": True})
    jjdbh = report(client)["jq"]["JJDBH"]
    move(client, jjdbh, "02")
    move(client, jjdbh, "99", CLJG="重复报警")
    client.post("/_sandbox/deliver")
    assert [(e["eventType"], e["seq"]) for e in receiver.events()] == [
        ("JQ_CLOSED", 3), ("JQ_UPDATED", 2), ("JQ_CREATED", 1)]


def test_first_attempt_lost_fault(client: Any, receiver: Receiver, clock: Clock) -> None:
    client.put("/_sandbox/faults", json={"drop_first_attempt_rate": 1.0})
    report(client)
    client.post("/_sandbox/deliver")
    assert receiver.received == []
    clock.now += timedelta(minutes=1)
    client.post("/_sandbox/deliver")
    assert len(receiver.received) == 1
    assert receiver.events()[0]["sentAt"] == "2026-11-23T09:15:02+08:00"


def test_down_system_pushes_nothing(client: Any, receiver: Receiver) -> None:
    client.put("/_sandbox/faults", json={"down": True})
    report(client)
    assert client.post("/_sandbox/deliver").get_json()["attempted"] == 0
    client.delete("/_sandbox/faults")
    assert client.post("/_sandbox/deliver").get_json()["attempted"] == 1


# ----- state machine -------------------------------------------------------------------------------
def test_status_moves_and_events(client: Any, receiver: Receiver) -> None:
    jjdbh = report(client)["jq"]["JJDBH"]
    assert move(client, jjdbh, "03").status_code == 409
    dispatched = move(client, jjdbh, "02", CJDW="巡逻二组").get_json()
    assert dispatched["seq"] == 2 and dispatched["jq"]["CJDW"] == "巡逻二组"
    assert move(client, jjdbh, "03", CLJG="太早").status_code == 400
    move(client, jjdbh, "03")
    move(client, jjdbh, "04")
    assert move(client, jjdbh, "06").status_code == 400
    assert move(client, jjdbh, "06", YJDW="城管局").status_code == 400
    transferred = move(client, jjdbh, "06", YJDW="综合执法").get_json()
    assert transferred["jq"]["YJDW"] == "综合执法" and transferred["jq"]["CLJG"]
    assert move(client, jjdbh, "09").status_code == 409  # no BJ feedback yet
    assert feedback(client, jjdbh, "BJ").get_json() == {"success": True}
    closed = move(client, jjdbh, "09").get_json()
    assert closed["seq"] == 6 and closed["jq"]["YJDW"] == "综合执法"
    assert move(client, jjdbh, "99").status_code == 409  # final
    client.post("/_sandbox/deliver")
    assert [(e["eventType"], e["seq"]) for e in receiver.events()] == [
        ("JQ_CREATED", 1), ("JQ_UPDATED", 2), ("JQ_UPDATED", 3), ("JQ_UPDATED", 4), ("JQ_UPDATED", 5),
        ("JQ_CLOSED", 6)]


def test_solved_on_the_spot_and_invalid_call(client: Any) -> None:
    jjdbh = report(client, JQZTDM="02", CJDW="巡逻二组", JD=None, WD=None)["jq"]["JJDBH"]
    move(client, jjdbh, "03")
    move(client, jjdbh, "04")
    solved = move(client, jjdbh, "05", CLJG="已劝离").get_json()
    assert solved["jq"]["CLJG"] == "已劝离" and solved["jq"]["YJDW"] is None
    assert move(client, jjdbh, "09").get_json()["jq"]["JQZTDM"] == "09"
    other = report(client)["jq"]["JJDBH"]
    assert move(client, other, "99").get_json()["jq"]["CLJG"]
    assert client.post("/_sandbox/jq", json={"JQLBDM": "XX01"}).status_code == 400
    zoneless = {"JQLBDM": "LD01", "BJSJ": "2026-11-23 09:00:00"}
    assert client.post("/_sandbox/jq", json=zoneless).status_code == 400


# ----- feedback ------------------------------------------------------------------------------------
def test_feedback_authentication_and_parameters(client: Any) -> None:
    jjdbh = to_transferred(client)
    assert feedback(client, jjdbh, headers={}).status_code == 401
    wrong = feedback(client, jjdbh, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.get_json() == {"success": False, "errorCode": "UNAUTHORIZED"}
    naive = feedback(client, jjdbh, when="2026-11-23 10:02:00")
    assert naive.status_code == 400
    assert naive.get_json() == {"success": False, "errorCode": "INVALID_PARAM", "field": "FKSJ"}
    assert feedback(client, jjdbh, kind="XX").get_json()["field"] == "FKLX"
    garbage = client.post("/ldpt/api/feedback", data="not json", headers=AUTH)
    assert garbage.status_code == 400
    writes = client.get("/_sandbox/state").get_json()["writes"]
    assert len(writes) == 5 and TOKEN not in json.dumps(writes)


def test_feedback_business_answers(client: Any) -> None:
    early = report(client)["jq"]["JJDBH"]
    assert feedback(client, early).get_json() == {"success": False, "errorCode": "INVALID_STATE"}
    unknown = feedback(client, "310104209901010001").get_json()
    assert unknown == {"success": False, "errorCode": "JQ_NOT_FOUND"}
    jjdbh = to_transferred(client)
    seq_before = client.get(f"/ldpt/api/jq/{jjdbh}", headers=AUTH).get_json()["seq"]
    assert feedback(client, jjdbh, "JS").get_json() == {"success": True}
    # the same instant written in UTC is the same feedback
    again = feedback(client, jjdbh, "JS", when="2026-11-23T02:02:00Z")
    assert again.status_code == 200 and again.get_json()["errorCode"] == "DUPLICATE_FEEDBACK"
    assert feedback(client, jjdbh, "BJ").get_json() == {"success": True}
    second_bj = feedback(client, jjdbh, "BJ", when="2026-11-23T11:00:00+08:00").get_json()
    assert second_bj["errorCode"] == "INVALID_STATE"
    move(client, jjdbh, "09")
    # duplicate check before state check: a retry of an accepted feedback is still "done"
    assert feedback(client, jjdbh, "BJ").get_json()["errorCode"] == "DUPLICATE_FEEDBACK"
    after_close = feedback(client, jjdbh, "CZ", when="2026-11-23T12:00:00+08:00").get_json()
    assert after_close["errorCode"] == "INVALID_STATE"
    state = client.get("/_sandbox/state").get_json()
    assert [(f["FKLX"], f["JJDBH"]) for f in state["feedback"]] == [("JS", jjdbh), ("BJ", jjdbh)]
    assert client.get(f"/ldpt/api/jq/{jjdbh}", headers=AUTH).get_json()["seq"] == seq_before + 1  # only 09


# ----- reconciliation ------------------------------------------------------------------------------
def test_reconciliation_reads(client: Any, clock: Clock) -> None:
    assert client.get("/ldpt/api/jq/310104209901010001").status_code == 401
    missing = client.get("/ldpt/api/jq/310104209901010001", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["errorCode"] == "JQ_NOT_FOUND"
    first = report(client, JJDBH="310104202611230099")["jq"]["JJDBH"]
    second = report(client, JJDBH="310104202611230011")["jq"]["JJDBH"]  # same GXSJ: JJDBH decides
    clock.now += timedelta(minutes=5)
    move(client, first, "02")
    one = client.get(f"/ldpt/api/jq/{first}", headers=AUTH).get_json()
    assert one["seq"] == 2 and one["jq"]["JQZTDM"] == "02"

    listed = client.get("/ldpt/api/jq?gxsjFrom=2026-11-23T09:15:02%2B08:00", headers=AUTH).get_json()
    assert listed["total"] == 2 and [r["jq"]["JJDBH"] for r in listed["rows"]] == [second, first]
    page2 = client.get("/ldpt/api/jq?gxsjFrom=2026-11-23T01:15:02Z&pageNo=2&pageSize=1", headers=AUTH)
    assert [r["jq"]["JJDBH"] for r in page2.get_json()["rows"]] == [first]
    later = client.get("/ldpt/api/jq?gxsjFrom=2026-11-23T09:20:02%2B08:00", headers=AUTH).get_json()
    assert [r["jq"]["JJDBH"] for r in later["rows"]] == [first]  # inclusive
    unencoded = client.get("/ldpt/api/jq?gxsjFrom=2026-11-23T09:00:00+08:00", headers=AUTH)
    assert unencoded.status_code == 400 and unencoded.get_json()["field"] == "gxsjFrom"
    assert client.get("/ldpt/api/jq", headers=AUTH).get_json()["field"] == "gxsjFrom"

    clock.now += timedelta(days=7, minutes=1)
    old = client.get("/ldpt/api/jq?gxsjFrom=2026-11-01T00:00:00%2B08:00", headers=AUTH).get_json()
    assert old == {"total": 0, "rows": []}  # kept 7 days


def test_reconciliation_rate_limit(receiver: Receiver, clock: Clock) -> None:
    client = create_app(webhook_url=receiver.url, clock=clock, dispatch_thread=False).test_client()
    url = "/ldpt/api/jq?gxsjFrom=2026-11-23T09:00:00%2B08:00"
    assert client.get(url, headers=AUTH).status_code == 200
    clock.now += timedelta(seconds=30)
    limited = client.get(url, headers=AUTH)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    clock.now += timedelta(seconds=30)
    assert client.get(url, headers=AUTH).status_code == 200
