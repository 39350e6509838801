"""数字城管 simulator: auth, moving-set paging, validation and state machine as the spec says."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.city_management import create_app
from sandbox.city_management_rules import add_working_time, grid_code

SHANGHAI = timezone(timedelta(hours=8))
X, Y = 3_448_000.0, 551_000.0  # a point in 徐汇 (northing, easting)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 10, 0, 0, tzinfo=SHANGHAI))


@pytest.fixture
def client(clock: FakeClock) -> FlaskClient:
    return create_app(clock=clock).test_client()


def bearer(client: FlaskClient, client_id: str = "gridhub",
           secret: str = "dcm-demo-secret") -> dict[str, str]:
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                               "client_secret": secret})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['access_token']}"}


def new_case(external_no: str, **overrides: Any) -> dict[str, Any]:
    body = {"source": "07", "externalNo": external_no, "eventType": "2", "bigClass": "05",
            "smallClass": "0504", "description": "店外经营占用人行道", "address": "斜土路1200号",
            "x": X, "y": Y, "reporter": "张网格", "photos": ["http://img/1.jpg"]}
    body.update(overrides)
    return body


def create(client: FlaskClient, headers: dict[str, str], external_no: str, **overrides: Any) -> str:
    answer = client.post("/dcm/api/cases", json=new_case(external_no, **overrides), headers=headers)
    assert answer.status_code == 201, answer.get_json()
    return str(answer.get_json()["caseId"])


def page(client: FlaskClient, headers: dict[str, str], no: int, size: int, **params: str) -> dict[str, Any]:
    answer = client.get("/dcm/api/cases", query_string={"pageNo": no, "pageSize": size, **params},
                        headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return dict(answer.get_json())


# ---- auth ----------------------------------------------------------------------------------------
def test_token_by_form_and_basic_and_wrong_client(client: FlaskClient) -> None:
    headers = bearer(client)
    assert client.get("/dcm/api/cases", headers=headers).status_code == 200
    basic = base64.b64encode(b"gridhub:dcm-demo-secret").decode()
    answer = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"})
    assert answer.status_code == 200
    assert answer.get_json()["token_type"] == "Bearer" and answer.get_json()["expires_in"] == 7200
    wrong = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": "gridhub",
                                              "client_secret": "nope"})
    assert (wrong.status_code, wrong.get_json()) == (401, {"error": "invalid_client"})
    missing = client.get("/dcm/api/cases")
    assert (missing.status_code, missing.get_json()) == (401, {"error": "invalid_token"})


def test_token_expires_on_simulator_clock(client: FlaskClient, clock: FakeClock) -> None:
    headers = bearer(client)
    clock.tick(7199)
    assert client.get("/dcm/api/cases", headers=headers).status_code == 200
    clock.tick(1)
    answer = client.get("/dcm/api/cases", headers=headers)
    assert (answer.status_code, answer.get_json()) == (401, {"error": "invalid_token"})


def test_revocation_by_control_endpoint_and_fault(client: FlaskClient) -> None:
    headers = bearer(client)
    assert client.post("/_sandbox/revoke-tokens").get_json() == {"revoked": 1}
    assert client.get("/dcm/api/cases/x", headers=headers).get_json() == {"error": "invalid_token"}
    headers = bearer(client)
    assert client.get("/dcm/api/cases", headers=headers).status_code == 200
    client.put("/_sandbox/faults", json={"revoke_tokens": True})
    assert client.get("/dcm/api/cases", headers=headers).status_code == 401
    headers = bearer(client)  # one-shot: a fresh token works again
    assert client.get("/dcm/api/cases", headers=headers).status_code == 200


# ---- reading -------------------------------------------------------------------------------------
def test_offset_paging_over_moving_set_skips_and_repeats(client: FlaskClient, clock: FakeClock) -> None:
    headers = bearer(client)
    ids = []
    for n in range(5):
        ids.append(create(client, headers, f"G-{n}"))
        clock.tick(1)
    first = page(client, headers, 1, 2)
    assert [r["caseId"] for r in first["rows"]] == ids[:2] and first["total"] == 5
    # ids[0] is updated while we page: it moves to the end of the set
    supplement = {"op": "SUPPLEMENT", "text": "补充照片"}
    updated = client.post(f"/dcm/api/cases/{ids[0]}/operations", json=supplement, headers=headers)
    assert updated.status_code == 200
    second = page(client, headers, 2, 2)
    third = page(client, headers, 3, 2)
    seen = [r["caseId"] for r in first["rows"] + second["rows"] + third["rows"]]
    assert ids[2] not in seen  # skipped
    assert seen.count(ids[0]) == 2  # repeated, with a higher version
    assert third["rows"][-1]["version"] == 2
    assert page(client, headers, 4, 2)["rows"] == []


def test_updated_from_inclusive_and_sorted_by_id_within_second(client: FlaskClient, clock: FakeClock) -> None:
    headers = bearer(client)
    create(client, headers, "A")
    clock.tick(5)
    same_second = sorted([create(client, headers, "B"), create(client, headers, "C")])
    rows = page(client, headers, 1, 20, updatedFrom="2026-11-23T10:00:05")["rows"]
    assert [r["caseId"] for r in rows] == same_second
    assert rows[0]["updateTime"] == "2026-11-23T10:00:05"
    assert page(client, headers, 1, 20, updatedFrom="2026-11-23T10:00:06")["total"] == 0


@pytest.mark.parametrize(("params", "field"), [
    ({"updatedFrom": "2026-11-23 09:00:00"}, "updatedFrom"),
    ({"updatedFrom": "2026-11-23T09:00:00+08:00"}, "updatedFrom"),
    ({"pageSize": "101"}, "pageSize"),
    ({"pageSize": "0"}, "pageSize"),
    ({"pageNo": "0"}, "pageNo"),
    ({"pageNo": "x"}, "pageNo"),
])
def test_bad_list_parameter_is_422(client: FlaskClient, params: dict[str, str], field: str) -> None:
    answer = client.get("/dcm/api/cases", query_string=params, headers=bearer(client))
    assert (answer.status_code, answer.get_json()) == (422, {"code": "INVALID_FIELD", "field": field})


def test_default_page_size_and_unknown_case(client: FlaskClient) -> None:
    headers = bearer(client)
    body = client.get("/dcm/api/cases", headers=headers).get_json()
    assert (body["pageNo"], body["pageSize"], body["rows"]) == (1, 20, [])
    answer = client.get("/dcm/api/cases/nope", headers=headers)
    assert (answer.status_code, answer.get_json()) == (404, {"code": "NOT_FOUND"})


# ---- creating ------------------------------------------------------------------------------------
def test_create_answers_uuid_and_derives_grid(client: FlaskClient) -> None:
    headers = bearer(client)
    answer = client.post("/dcm/api/cases", json=new_case("G-1"), headers=headers)
    assert answer.status_code == 201 and answer.get_json()["status"] == "01"
    case_id = answer.get_json()["caseId"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", case_id)
    case = client.get(f"/dcm/api/cases/{case_id}", headers=headers).get_json()
    assert re.fullmatch(r"310104\d{9}", case["gridCode"]) and case["gridCode"] == grid_code(X, Y)
    assert (case["caseNo"], case["version"], case["verifyResult"], case["x"]) == ("", 1, None, X)
    assert grid_code(X + 50, Y + 50) == grid_code(X, Y)  # same 100 m cell
    assert grid_code(X + 100, Y) != grid_code(X, Y)


def test_duplicate_external_no_is_409_in_any_status(client: FlaskClient) -> None:
    headers = bearer(client)
    case_id = create(client, headers, "G-9")
    client.post(f"/dcm/api/cases/{case_id}/operations", json={"op": "CANCEL"}, headers=headers)
    again = client.post("/dcm/api/cases", json=new_case("G-9"), headers=headers)
    duplicate = {"code": "DUPLICATE_EXTERNAL_NO", "caseId": case_id}
    assert (again.status_code, again.get_json()) == (409, duplicate)
    create(client, headers, "G-9", source="03")  # unique per source
    invalid = client.post("/dcm/api/cases", json=new_case("G-9", smallClass="9999"), headers=headers)
    assert invalid.status_code == 422  # validation comes first


@pytest.mark.parametrize(("overrides", "field"), [
    ({"smallClass": None}, "smallClass"),
    ({"smallClass": "0102"}, "smallClass"),  # not a small class of 05
    ({"bigClass": "99"}, "bigClass"),
    ({"eventType": "1"}, "eventType"),  # 05 is an event, not a 部件
    ({"eventType": "2", "bigClass": "11", "smallClass": "1101"}, "eventType"),
    ({"source": "01"}, "source"),
    ({"externalNo": ""}, "externalNo"),
    ({"description": None}, "description"),
    ({"x": Y, "y": X}, "x"),  # swapped axes
    ({"y": None}, "y"),
    ({"x": None}, "x"),
    ({"y": 700_000.0}, "y"),
    ({"reportTime": "2026/11/23 10:00"}, "reportTime"),
    ({"photos": "http://img/1.jpg"}, "photos"),
])
def test_invalid_field_is_422_naming_it(client: FlaskClient, overrides: dict[str, Any], field: str) -> None:
    answer = client.post("/dcm/api/cases", json=new_case("G-1", **overrides), headers=bearer(client))
    assert (answer.status_code, answer.get_json()) == (422, {"code": "INVALID_FIELD", "field": field})


def test_component_case_and_case_without_point_are_accepted(client: FlaskClient) -> None:
    headers = bearer(client)
    case_id = create(client, headers, "G-2", eventType="1", bigClass="11", smallClass="1102", x=None, y=None)
    assert client.get(f"/dcm/api/cases/{case_id}", headers=headers).get_json()["gridCode"] == ""


def test_hotline_transfer_and_hub_collide_either_way(client: FlaskClient) -> None:
    headers = bearer(client)
    filed = client.post("/_sandbox/cases", json={"source": "03", "externalNo": "GD001", "bigClass": "01",
                                                 "smallClass": "0102", "description": "垃圾"})
    assert filed.status_code == 201
    legacy_id = filed.get_json()["caseId"]
    assert re.fullmatch(r"c\d{7}-[0-9a-f]{8}", legacy_id)
    hub = client.post("/dcm/api/cases", json=new_case("GD001", source="03"), headers=headers)
    assert hub.get_json() == {"code": "DUPLICATE_EXTERNAL_NO", "caseId": legacy_id}
    hub_id = create(client, headers, "GD002", source="03")
    late = client.post("/_sandbox/cases", json={"source": "03", "externalNo": "GD002"})
    assert (late.status_code, late.get_json()["caseId"]) == (409, hub_id)


# ---- operations and the department's moves -------------------------------------------------------
def advance(client: FlaskClient, case_id: str, *statuses: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for status in statuses:
        answer = client.post(f"/_sandbox/cases/{case_id}/advance", json={"status": status})
        assert answer.status_code == 200, (status, answer.get_json())
        body = answer.get_json()
    return body


def test_cancel_rules(client: FlaskClient) -> None:
    headers = bearer(client)
    mine = create(client, headers, "G-1")
    filed = client.post("/_sandbox/cases", json={"description": "监督员上报"}).get_json()["caseId"]
    other = client.post(f"/dcm/api/cases/{filed}/operations", json={"op": "CANCEL"}, headers=headers)
    assert (other.status_code, other.get_json()) == (403, {"code": "NOT_CREATOR"})
    advance(client, mine, "02")
    late = client.post(f"/dcm/api/cases/{mine}/operations", json={"op": "CANCEL"}, headers=headers)
    assert (late.status_code, late.get_json()) == (409, {"code": "INVALID_STATE", "status": "02"})
    fresh = create(client, headers, "G-2")
    done = client.post(f"/dcm/api/cases/{fresh}/operations", json={"op": "CANCEL", "reason": "重复"},
                       headers=headers)
    assert done.get_json()["status"] == "08" and done.get_json()["version"] == 2
    closed = client.post(f"/dcm/api/cases/{fresh}/operations", json={"op": "SUPPLEMENT", "text": "x"},
                         headers=headers)
    assert (closed.status_code, closed.get_json()) == (409, {"code": "INVALID_STATE", "status": "08"})


def test_department_flow_verify_and_lazy_close(client: FlaskClient, clock: FakeClock) -> None:
    headers = bearer(client)
    case_id = create(client, headers, "G-1", smallClass="0505")  # 机动车乱停放: 2 working hours
    assert advance(client, case_id, "02")["caseNo"].startswith("202611")
    dispatched = advance(client, case_id, "03")
    assert dispatched["deadline"] == "2026-11-23T12:00:00" and dispatched["deptName"]
    early = client.post(f"/dcm/api/cases/{case_id}/operations", json={"op": "VERIFY", "result": "PASS"},
                        headers=headers)
    assert (early.status_code, early.get_json()) == (409, {"code": "INVALID_STATE", "status": "03"})
    advance(client, case_id, "04", "05")
    refused = client.post(f"/_sandbox/cases/{case_id}/advance", json={"status": "06"})
    assert refused.status_code == 409  # source 07 waits for VERIFY through the API
    failed = client.post(f"/dcm/api/cases/{case_id}/operations", json={"op": "VERIFY", "result": "FAIL"},
                         headers=headers).get_json()
    assert (failed["status"], failed["verifyResult"]) == ("09", "FAIL")
    advance(client, case_id, "03", "04", "05")
    clock.tick(10)
    passed = client.post(f"/dcm/api/cases/{case_id}/operations",
                         json={"op": "VERIFY", "result": "PASS", "photos": ["http://img/after.jpg"]},
                         headers=headers).get_json()
    assert (passed["status"], passed["verifyResult"]) == ("06", "PASS")
    assert passed["photos"][-1] == "http://img/after.jpg"
    clock.tick(60)
    closed = client.get(f"/dcm/api/cases/{case_id}", headers=headers).get_json()
    assert closed["status"] == "07" and closed["version"] == passed["version"] + 1
    assert closed["updateTime"] <= (clock.now.replace(tzinfo=None)).isoformat()


def test_illegal_department_moves_and_platform_verified_source(client: FlaskClient) -> None:
    filed = client.post("/_sandbox/cases", json={"source": "01", "x": X, "y": Y}).get_json()
    assert filed["gridCode"] == grid_code(X, Y) and filed["caseNo"] == ""
    case_id = filed["caseId"]
    jump = client.post(f"/_sandbox/cases/{case_id}/advance", json={"status": "05"})
    assert (jump.status_code, jump.get_json()) == (409, {"code": "INVALID_STATE", "status": "01"})
    assert advance(client, case_id, "02", "03", "04", "05", "06")["status"] == "06"
    shelved = client.post("/_sandbox/cases", json={"source": "04"}).get_json()["caseId"]
    assert advance(client, shelved, "02", "10")["status"] == "10"


def test_writes_are_logged_without_secrets(client: FlaskClient) -> None:
    headers = bearer(client)
    create(client, headers, "G-1")
    state = client.get("/_sandbox/state").get_json()
    assert [w["path"] for w in state["writes"]] == ["/dcm/api/cases"]
    assert state["cases"][0]["_reporter"] == "张网格"
    assert "dcm-demo-secret" not in str(state)


# ---- working time --------------------------------------------------------------------------------
@pytest.mark.parametrize(("start", "hours", "expected"), [
    (datetime(2026, 11, 23, 17, 0), 2, datetime(2026, 11, 24, 10, 0)),  # Monday evening
    (datetime(2026, 11, 27, 16, 0), 4, datetime(2026, 11, 30, 11, 0)),  # over a weekend
    (datetime(2026, 9, 30, 17, 0), 2, datetime(2026, 10, 8, 10, 0)),  # over 国庆
    (datetime(2026, 10, 9, 17, 0), 2, datetime(2026, 10, 10, 10, 0)),  # 调休 Saturday works
    (datetime(2026, 11, 23, 20, 0), 2, datetime(2026, 11, 24, 11, 0)),  # after hours
    (datetime(2026, 11, 23, 10, 0), 27, datetime(2026, 11, 26, 10, 0)),  # three working days
])
def test_working_time(start: datetime, hours: int, expected: datetime) -> None:
    assert add_working_time(start, hours * 3600) == expected
