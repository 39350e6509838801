"""The 12345 simulator serves shared/world/hotline12345.md: signing, refusals, feed, actions."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from sandbox.hotline12345 import create_app

CST = timezone(timedelta(hours=8))
KEY, SECRET = "demo-app", "demo-secret-0001"
UNIT, OTHER_UNIT = "斜土路街道", "徐汇区城管执法局"
_nonces = itertools.count(1)


class Clock:
    """A movable clock for the simulator."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


def spec_sign(secret: str, key: str, ts: str, nonce: str, method: str, target: str, body: bytes) -> str:
    """The spec's formula, written here independently of the simulator."""
    text = f"{key}\n{ts}\n{nonce}\n{method}\n{target}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, 0, tzinfo=CST))


@pytest.fixture
def app(clock: Clock) -> Any:
    return create_app(clock=clock, rate_limit_per_s=0)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def call(client: Any, clock: Clock, method: str, target: str, body: Any = None, *, nonce: str | None = None,
         request_id: str | None = None, secret: str = SECRET, key: str = KEY,
         ts: int | None = None) -> Any:
    raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
    ts_text = str(ts if ts is not None else int(clock.now.timestamp() * 1000))
    nonce = nonce or f"nonce-{next(_nonces):012d}"
    headers = {"X-App-Key": key, "X-Timestamp": ts_text, "X-Nonce": nonce,
               "X-Sign": spec_sign(secret, key, ts_text, nonce, method, target, raw)}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    if raw:
        headers["Content-Type"] = "application/json"
    return client.open(target, method=method, data=raw, headers=headers)


def new_order(client: Any, **fields: Any) -> dict[str, Any]:
    response = client.post("/_sandbox/workorders", json={"sqbt": "私设地锁", "wtfl": "0403", **fields})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def act(client: Any, clock: Clock, order: dict[str, Any], action: str, *, request_id: str | None = None,
        **fields: Any) -> dict[str, Any]:
    body = {"action": action, "expectedVersion": order["version"], "cbdw": order["cbdw"], "czr": "张三",
            "czsj": "2026-11-23 10:00:00", **fields}
    rid = request_id or f"req-{next(_nonces)}"
    response = call(client, clock, "POST", f"/openapi/v2/workorders/{order['gdbh']}/actions", body,
                    request_id=rid)
    assert response.status_code == 200
    return dict(response.get_json())


def feed(client: Any, clock: Clock, cursor: str = "", limit: int = 100) -> dict[str, Any]:
    response = call(client, clock, "GET", f"/openapi/v2/workorders/changes?cursor={cursor}&limit={limit}")
    envelope = response.get_json()
    assert envelope["code"] == 0, envelope
    return dict(envelope["data"])


# ----- transport and security -------------------------------------------------------------------
def test_worked_signature_example_verifies() -> None:
    clock = Clock(datetime.fromtimestamp(1763860502, CST) + timedelta(seconds=30))
    client = create_app(clock=clock, rate_limit_per_s=0).test_client()
    headers = {"X-App-Key": "demo-app", "X-Timestamp": "1763860502000", "X-Nonce": "n0nce-5f3a9c1e2b7d",
               "X-Sign": "c857dfa2399337677c92f4f59426e48f07f7d8512e574ee5d0075fa6d663e2cf"}
    response = client.get("/openapi/v2/workorders/changes?cursor=&limit=100", headers=headers)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["code"] == 0 and answer["message"] == "成功"
    assert answer["data"]["items"] == [] and answer["data"]["hasMore"] is False
    assert isinstance(answer["data"]["nextCursor"], str)
    # the same signature over a re-ordered query string is another request target
    headers["X-Nonce"] = "n0nce-5f3a9c1e2b7e"
    reordered = client.get("/openapi/v2/workorders/changes?limit=100&cursor=", headers=headers)
    assert reordered.get_json()["code"] == 4010


def test_signature_covers_percent_encoding_as_sent(client: Any, clock: Clock) -> None:
    order = new_order(client)
    encoded = f"/openapi/v2/workorders/%47%44{order['gdbh'][2:]}"
    response = call(client, clock, "GET", encoded)
    assert response.get_json()["code"] == 0
    assert response.get_json()["data"]["gdbh"] == order["gdbh"]


@pytest.mark.parametrize("tamper, code", [
    ({"secret": "wrong-secret"}, 4010),
    ({"key": "other-app"}, 4010),
    ({"ts_shift_s": 301}, 4010),
    ({"ts_shift_s": -301}, 4010),
    ({"nonce": "short-nonce"}, 4001),
])
def test_authentication_refusals(client: Any, clock: Clock, tamper: dict[str, Any], code: int) -> None:
    shift = tamper.pop("ts_shift_s", 0)
    ts = int((clock.now.timestamp() + shift) * 1000)
    response = call(client, clock, "GET", "/openapi/v2/workorders/changes", ts=ts, **tamper)
    assert response.status_code == 200
    assert response.get_json()["code"] == code
    assert response.get_json()["data"] is None


def test_timestamp_within_skew_is_accepted(client: Any, clock: Clock) -> None:
    ts = int((clock.now.timestamp() - 299) * 1000)
    assert call(client, clock, "GET", "/openapi/v2/workorders/changes", ts=ts).get_json()["code"] == 0


def test_nonce_reuse_within_ten_minutes(client: Any, clock: Clock) -> None:
    def code() -> int:
        target = "/openapi/v2/workorders/changes"
        return int(call(client, clock, "GET", target, nonce="nonce-reused-0000001").get_json()["code"])

    assert code() == 0
    clock.now += timedelta(minutes=9)
    assert code() == 4011
    clock.now += timedelta(minutes=11)
    assert code() == 0


def test_rate_limit_answers_plain_429(clock: Clock) -> None:
    client = create_app(clock=clock, rate_limit_per_s=3).test_client()
    answers = [call(client, clock, "GET", "/openapi/v2/workorders/changes") for _ in range(5)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert answers[4].status_code == 429
    assert answers[4].headers["Retry-After"] == "1"
    assert answers[4].mimetype == "text/plain"


def test_gateway_faults_are_not_envelopes(client: Any, clock: Clock) -> None:
    client.put("/_sandbox/faults", json={"down": True})
    response = call(client, clock, "GET", "/openapi/v2/workorders/changes")
    assert response.status_code == 503 and response.mimetype == "text/html"
    client.delete("/_sandbox/faults")
    assert call(client, clock, "GET", "/openapi/v2/workorders/changes").status_code == 200


# ----- change feed -------------------------------------------------------------------------------
def test_feed_shows_visible_orders_only_and_replays(client: Any, clock: Clock) -> None:
    first = new_order(client)
    new_order(client, dispatch=False)  # stays in 10
    new_order(client, cbdw="外区街道")  # dispatched to a unit the gateway does not represent
    page = feed(client, clock)
    assert [(i["gdbh"], i["version"], i["zt"]) for i in page["items"]] == [(first["gdbh"], 2, "20")]
    old_cursor = page["nextCursor"]

    signed = act(client, clock, first, "QS")
    assert signed["code"] == 0 and signed["data"]["version"] == 3
    act(client, clock, signed["data"], "BC", nr="已联系物业核实")
    newer = feed(client, clock, old_cursor)
    assert [i["version"] for i in newer["items"]] == [3, 4]
    assert feed(client, clock, newer["nextCursor"])["items"] == []
    # replaying from the old cursor gives the same items again, older versions included
    assert feed(client, clock, old_cursor)["items"] == newer["items"]
    assert [i["version"] for i in feed(client, clock)["items"]] == [2, 3, 4]


def test_feed_limit_and_has_more(client: Any, clock: Clock) -> None:
    for _ in range(5):
        new_order(client)
    page = feed(client, clock, limit=2)
    assert len(page["items"]) == 2 and page["hasMore"] is True
    rest = feed(client, clock, page["nextCursor"], limit=200)
    assert len(rest["items"]) == 3 and rest["hasMore"] is False
    seen = [i["gdbh"] for i in page["items"] + rest["items"]]
    assert len(set(seen)) == 5


def test_feed_retention_and_foreign_cursor(client: Any, clock: Clock) -> None:
    old = new_order(client)
    foreign = feed(create_app(clock=clock, rate_limit_per_s=0).test_client(), clock)["nextCursor"]
    clock.now += timedelta(days=31)
    fresh = new_order(client)
    # the old order's changes left the 30-day window; a cursor from another life starts over
    assert [i["gdbh"] for i in feed(client, clock)["items"]] == [fresh["gdbh"]]
    assert [i["gdbh"] for i in feed(client, clock, foreign)["items"]] == [fresh["gdbh"]]
    assert call(client, clock, "GET", f"/openapi/v2/workorders/{old['gdbh']}").get_json()["code"] == 0


@pytest.mark.parametrize("query", ["cursor=%%%bad&limit=10", "cursor=bm9wZQ&limit=10", "limit=0",
                                   "limit=201", "limit=ten"])
def test_feed_parameter_errors(client: Any, clock: Clock, query: str) -> None:
    response = call(client, clock, "GET", f"/openapi/v2/workorders/changes?{query}")
    assert response.get_json()["code"] == 4001


def test_feed_order_becomes_visible_when_redispatched_to_gateway(client: Any, clock: Clock) -> None:
    order = new_order(client, dispatch=False)
    assert call(client, clock, "GET", f"/openapi/v2/workorders/{order['gdbh']}").get_json()["code"] == 4004
    client.post(f"/_sandbox/workorders/{order['gdbh']}/hotline", json={"op": "PD", "cbdw": OTHER_UNIT})
    got = call(client, clock, "GET", f"/openapi/v2/workorders/{order['gdbh']}").get_json()
    assert got["code"] == 0 and got["data"]["cbdw"] == OTHER_UNIT


# ----- actions -----------------------------------------------------------------------------------
def test_action_refusals_in_spec_order(client: Any, clock: Clock) -> None:
    order = new_order(client)
    ghost = {**order, "gdbh": "GD20261123999999"}
    assert act(client, clock, ghost, "QS", czsj="yesterday")["code"] == 4001  # 4001 before 4004
    assert act(client, clock, ghost, "QS")["code"] == 4004
    stale = {**order, "version": order["version"] - 1}
    assert act(client, clock, stale, "QS", cbdw=OTHER_UNIT)["code"] == 4009  # 4009 before 4002
    assert act(client, clock, order, "QS", cbdw=OTHER_UNIT)["code"] == 4002
    refused = act(client, clock, order, "BJ", nr="已现场处理完毕，恢复原状。", bjlx="1")
    assert refused["code"] == 4002  # BJ needs 30/35, order is in 20
    assert act(client, clock, order, "BJ", nr="太短", bjlx="1")["code"] == 4001
    assert act(client, clock, order, "YQ", nr="需协调", yqts=16)["code"] == 4001
    assert act(client, clock, order, "TD")["code"] == 4001
    assert act(client, clock, order, "ZZ")["code"] == 4001
    invisible = new_order(client, dispatch=False)
    assert act(client, clock, invisible, "QS", cbdw=UNIT)["code"] == 4004


def test_missing_request_id_is_4001(client: Any, clock: Clock) -> None:
    order = new_order(client)
    body = {"action": "QS", "expectedVersion": order["version"], "cbdw": UNIT, "czr": "张三",
            "czsj": "2026-11-23 10:00:00"}
    response = call(client, clock, "POST", f"/openapi/v2/workorders/{order['gdbh']}/actions", body)
    assert response.get_json()["code"] == 4001
    assert "X-Request-Id" in response.get_json()["message"]


def test_request_id_is_idempotent(client: Any, clock: Clock) -> None:
    order = new_order(client)
    first = act(client, clock, order, "QS", request_id="rid-1")
    again = act(client, clock, order, "QS", request_id="rid-1")
    assert first["code"] == 0 and again == first
    state = client.get("/_sandbox/state").get_json()
    assert state["workorders"][0]["version"] == first["data"]["version"]
    assert [w["requestId"] for w in state["writes"]] == ["rid-1", "rid-1"]
    assert act(client, clock, order, "QS", request_id="rid-2")["code"] == 4009
    # a stored refusal is repeated even though the action would now succeed
    refused = act(client, clock, first["data"], "BJ", request_id="rid-3", nr="短", bjlx="1")
    assert refused["code"] == 4001
    note = "已现场处理完毕恢复通行"
    repeat = act(client, clock, first["data"], "BJ", request_id="rid-3", nr=note, bjlx="1")
    assert repeat == refused
    clock.now += timedelta(hours=24, seconds=1)
    late = act(client, clock, first["data"], "BJ", request_id="rid-3", nr=note, bjlx="1")
    assert late["code"] == 0 and late["data"]["zt"] == "40"


def test_request_id_retries_after_nonce_refusal(client: Any, clock: Clock) -> None:
    order = new_order(client)
    body = {"action": "QS", "expectedVersion": order["version"], "cbdw": UNIT, "czr": "张三",
            "czsj": "2026-11-23 10:00:00"}
    target = f"/openapi/v2/workorders/{order['gdbh']}/actions"
    call(client, clock, "GET", "/openapi/v2/workorders/changes", nonce="nonce-used-already-1")
    refused = call(client, clock, "POST", target, body, nonce="nonce-used-already-1", request_id="r-9")
    assert refused.get_json()["code"] == 4011
    done = call(client, clock, "POST", target, body, request_id="r-9").get_json()
    assert done["code"] == 0 and done["data"]["zt"] == "30"


def test_lost_answer_then_retry_returns_first_result(client: Any, clock: Clock) -> None:
    order = new_order(client)
    client.put("/_sandbox/faults", json={"lost_answer_rate": 1.0})
    body = {"action": "QS", "expectedVersion": order["version"], "cbdw": UNIT, "czr": "张三",
            "czsj": "2026-11-23 10:00:00"}
    target = f"/openapi/v2/workorders/{order['gdbh']}/actions"
    assert call(client, clock, "POST", target, body, request_id="lost-1").status_code == 504
    client.delete("/_sandbox/faults")
    retried = call(client, clock, "POST", target, body, request_id="lost-1").get_json()
    assert retried["code"] == 0 and retried["data"]["version"] == order["version"] + 1


def test_full_lifecycle_with_deadlines(client: Any, clock: Clock) -> None:
    # 2026-09-18 is a Friday; Sunday 2026-09-20 is a make-up working day (调休)
    order = new_order(client, ldsj="2026-09-18 10:30:00", sqxz="3")
    assert order["blsx"] == "2026-09-21 10:30:00"
    urgent = new_order(client, ldsj="2026-09-18 10:30:00", jjcd="3")
    assert urgent["blsx"] == "2026-09-18 23:59:59"
    # 求决 on the eve of National Day: 10 working days skip 10-01..10-07, count Saturday 10-10
    long = new_order(client, ldsj="2026-09-30 08:00:00", sqxz="1")
    assert long["blsx"] == "2026-10-20 08:00:00"
    signed = act(client, clock, long, "QS")["data"]
    delayed = act(client, clock, signed, "YQ", yqts=2, nr="需协调物业")["data"]
    assert delayed["zt"] == "35" and delayed["blsx"] == "2026-10-22 08:00:00"
    finished = act(client, clock, delayed, "BJ", nr="已现场拆除地锁3处，恢复通行。", bjlx="1")["data"]
    assert finished["zt"] == "40"
    assert [e["czlx"] for e in finished["blgc"]] == ["PD", "QS", "YQ", "BJ"]
    assert finished["blgc"][-1] == {"czsj": "2026-11-23 10:00:00", "czlx": "BJ", "cbdw": UNIT,
                                    "nr": "已现场拆除地锁3处，恢复通行。"}
    visited = client.post(f"/_sandbox/workorders/{long['gdbh']}/hotline",
                          json={"op": "HF", "myd": "1", "sfjj": "1"}).get_json()
    assert visited["zt"] == "50" and visited["hfjg"]["myd"] == "1"


def test_return_and_redispatch(client: Any, clock: Clock) -> None:
    order = new_order(client)
    returned = act(client, clock, order, "TD", nr="非本单位职责")["data"]
    assert returned["zt"] == "60"
    moved = client.post(f"/_sandbox/workorders/{order['gdbh']}/hotline",
                        json={"op": "PD", "cbdw": OTHER_UNIT}).get_json()
    assert moved["zt"] == "20" and moved["cbdw"] == OTHER_UNIT
    assert act(client, clock, moved, "QS")["data"]["zt"] == "30"
    visit = {"op": "HF", "myd": "1", "sfjj": "1"}
    bad = client.post(f"/_sandbox/workorders/{order['gdbh']}/hotline", json=visit)
    assert bad.status_code == 409


def test_duplicate_receives_master_finish_now_and_after_rework(client: Any, clock: Clock) -> None:
    master = new_order(client)
    duplicate = new_order(client)
    assert act(client, clock, duplicate, "CF", zgdbh="GD20990101000001")["code"] == 4001
    assert act(client, clock, duplicate, "CF", zgdbh=duplicate["gdbh"])["code"] == 4001
    marked = act(client, clock, duplicate, "CF", zgdbh=master["gdbh"])["data"]
    assert marked["zt"] == "80" and marked["zgdbh"] == master["gdbh"]
    third = new_order(client)
    assert act(client, clock, third, "CF", zgdbh=duplicate["gdbh"])["code"] == 4001  # master is 80
    cursor = feed(client, clock)["nextCursor"]

    working = act(client, clock, master, "QS")["data"]
    act(client, clock, working, "BJ", nr="摊贩已劝离，现场恢复。", bjlx="1")
    items = feed(client, clock, cursor)["items"]
    copied = [i for i in items if i["gdbh"] == duplicate["gdbh"]]
    assert len(copied) == 1
    assert copied[0]["version"] == marked["version"] + 1 and copied[0]["zt"] == "80"
    assert copied[0]["blgc"][-1]["czlx"] == "BJ" and copied[0]["blgc"][-1]["nr"] == "摊贩已劝离，现场恢复。"

    client.post(f"/_sandbox/workorders/{master['gdbh']}/hotline", json={"op": "HF", "myd": "3", "sfjj": "0"})
    reopened = call(client, clock, "GET", f"/openapi/v2/workorders/{master['gdbh']}").get_json()["data"]
    assert reopened["zt"] == "30" and [e["czlx"] for e in reopened["blgc"]][-2:] == ["HF", "CB"]
    act(client, clock, reopened, "BJ", nr="再次到场，摊贩已取缔。", bjlx="1")
    again = call(client, clock, "GET", f"/openapi/v2/workorders/{duplicate['gdbh']}").get_json()["data"]
    finishes = [e["nr"] for e in again["blgc"] if e["czlx"] == "BJ"]
    assert finishes == ["摊贩已劝离，现场恢复。", "再次到场，摊贩已取缔。"]
    assert again["version"] == marked["version"] + 2

    late = new_order(client)  # marked after the master is finished: gets the finish at once
    late_marked = act(client, clock, late, "CF", zgdbh=master["gdbh"])["data"]
    assert late_marked["blgc"][-1]["nr"] == "再次到场，摊贩已取缔。"


def test_withdrawn_order_and_internal_error_fault(client: Any, clock: Clock) -> None:
    order = new_order(client)
    withdrawn = client.post(f"/_sandbox/workorders/{order['gdbh']}/hotline", json={"op": "CX"}).get_json()
    assert withdrawn["zt"] == "70"
    assert act(client, clock, withdrawn, "QS")["code"] == 4002
    client.put("/_sandbox/faults", json={"internal_error_rate": 1.0})
    assert call(client, clock, "GET", f"/openapi/v2/workorders/{order['gdbh']}").get_json()["code"] == 5000


def test_control_endpoint_validation(client: Any) -> None:
    assert client.post("/_sandbox/workorders", json={"wtfl": "9999"}).status_code == 400
    assert client.post("/_sandbox/workorders", json={"ldsj": "2026/11/23"}).status_code == 400
    assert client.post("/_sandbox/workorders/GD0/hotline", json={"op": "CX"}).status_code == 404
    assert client.get("/_sandbox/state").get_json()["workorders"] == []
