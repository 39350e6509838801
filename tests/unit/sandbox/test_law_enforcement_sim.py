"""综合执法 simulator: GBK XML exchange, paging cursor, refusals, maintenance and rate limit."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask.testing import FlaskClient

from sandbox.law_enforcement import create_app

SHANGHAI = timezone(timedelta(hours=8))


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 23, 9, 15, 0, tzinfo=SHANGHAI))


@pytest.fixture
def client(clock: FakeClock) -> FlaskClient:
    return create_app(clock=clock, latency_s=0, rate_limit_per_s=0).test_client()


def envelope(method: str, body: str, user: str = "wgzx", password: str = "zf-demo-pass",
             declared: str = "GBK") -> str:
    return (f'<?xml version="1.0" encoding="{declared}"?>\n<Request><Head><Method>{method}</Method>'
            f"<User>{user}</User><Password>{password}</Password><RequestId>r-1</RequestId>"
            f"<Time>20261123091502</Time></Head><Body>{body}</Body></Request>")


def post(client: FlaskClient, payload: bytes, status: int = 200) -> ET.Element:
    answer = client.post("/zfba/ws/exchange", data=payload, content_type="text/xml; charset=GBK")
    assert answer.status_code == status
    assert answer.content_type == "text/xml; charset=GBK"
    text = answer.data.decode("gbk")
    assert text.startswith('<?xml version="1.0" encoding="GBK"?>')
    return ET.fromstring(text.split("?>", 1)[1])


def call(client: FlaskClient, method: str, body: str = "", **kwargs: str) -> ET.Element:
    return post(client, envelope(method, body, **kwargs).encode("gbk"))


def code(response: ET.Element) -> str:
    return response.findtext("Head/Code") or ""


def clue(external_no: str, content: str = "店外占道经营，多次劝阻无效", category: str = "CG-0201",
         extra: str = "<Lng>121.437500</Lng><Lat>31.188200</Lat>") -> str:
    return (f"<Clue><ExternalNo>{external_no}</ExternalNo><Source>网格</Source>"
            f"<Category>{category}</Category>"
            f"<Content>{content}</Content><Address>斜土路1200号</Address>{extra}"
            "<ReportTime>20261123091000</ReportTime><Reporter>张网格</Reporter>"
            "<Attachments><Url>http://img/1.jpg</Url><Url>http://img/2.jpg</Url></Attachments></Clue>")


def transfer(client: FlaskClient, external_no: str, **kwargs: str) -> str:
    response = call(client, "TransferClue", clue(external_no, **kwargs))
    assert code(response) == "0", response.findtext("Head/Message")
    return response.findtext("Body/ClueNo") or ""


def fetch(client: FlaskClient, clue_no: str) -> ET.Element:
    response = call(client, "QueryCase", f"<ClueNo>{clue_no}</ClueNo>")
    assert code(response) == "0"
    case = response.find("Body/Case")
    assert case is not None
    return case


# ---- envelope and encoding -----------------------------------------------------------------------
def test_wrong_password_is_1001(client: FlaskClient) -> None:
    response = call(client, "QueryCases", password="wrong")
    assert (code(response), response.findtext("Head/Message")) == ("1001", "认证失败")


def test_gbk_round_trip(client: FlaskClient) -> None:
    clue_no = transfer(client, "WG-1")
    assert re.fullmatch(r"ZF-2026-\d{6}", clue_no)
    raw = client.post("/zfba/ws/exchange", data=envelope("QueryCase", f"<ClueNo>{clue_no}</ClueNo>")
                      .encode("gbk")).data
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the answer really is GBK
    case = fetch(client, clue_no)
    assert case.findtext("Content") == "店外占道经营，多次劝阻无效"
    assert (case.findtext("Status"), case.findtext("Source"), case.findtext("CaseNo")) == ("XSDJ", "网格", "")
    assert (case.findtext("Lng"), case.findtext("Created")) == ("121.437500", "20261123091500")


def test_utf8_bytes_become_mojibake_silently(client: FlaskClient) -> None:
    # a whole message from a client that sends UTF-8; every Chinese text in it happens to be valid GBK
    utf8_clue = ("<Clue><ExternalNo>WG-2</ExternalNo><Source>12345</Source><Category>CG-0201</Category>"
                 "<Content>占道经营</Content></Clue>")
    payload = envelope("TransferClue", utf8_clue, declared="UTF-8").encode("utf-8")
    response = post(client, payload)
    assert code(response) == "0"  # the platform cannot tell
    stored = fetch(client, response.findtext("Body/ClueNo") or "").findtext("Content")
    assert stored == "占道经营".encode().decode("gbk") == "鍗犻亾缁忚惀"
    assert stored != "占道经营"


def test_undecodable_bytes_and_non_gbk_references_are_1002(client: FlaskClient) -> None:
    undecodable = envelope("TransferClue", clue("WG-3", content="违法建设"), declared="UTF-8").encode("utf-8")
    assert code(post(client, undecodable)) == "1002"
    emoji = call(client, "TransferClue", clue("WG-4", content="太吵了&#128545;"))
    assert code(emoji) == "1002"
    assert code(call(client, "TransferClue", clue("WG-5", content="&#x1F621;"))) == "1002"
    held = transfer(client, "WG-6", content="&#20013;午噪声")  # 中: GBK can hold it
    assert fetch(client, held).findtext("Content") == "中午噪声"
    assert code(post(client, b"<Request><Head>")) == "1002"
    assert code(call(client, "DeleteEverything")) == "1002"


# ---- TransferClue --------------------------------------------------------------------------------
def test_repeated_external_no_is_2003_with_the_clue_no(client: FlaskClient) -> None:
    first = transfer(client, "WG-7")
    again = call(client, "TransferClue", clue("WG-7", content="另一段描述"))
    assert (code(again), again.findtext("Head/Message")) == ("2003", first)
    invalid = call(client, "TransferClue", clue("WG-7", category="CG-9999"))
    assert code(invalid) == "1002"  # validation comes first


@pytest.mark.parametrize("body", [
    clue("", content="x"),
    clue("WG-8", category=""),
    clue("WG-8", category="CG-9999"),
    clue("WG-8", content=""),
    clue("WG-8", extra="<Lng>121.4375</Lng>"),
    clue("WG-8", extra="<Lng>31.1882</Lng><Lat>121.4375</Lat>"),  # swapped
    clue("WG-8", extra="<Lng>abc</Lng><Lat>31.1</Lat>"),
    clue("WG-8").replace("<Source>网格</Source>", ""),
    clue("WG-8").replace("20261123091000", "2026-11-23"),
    "<Nothing/>",
])
def test_invalid_clue_is_1002(client: FlaskClient, body: str) -> None:
    assert code(call(client, "TransferClue", body)) == "1002"


def test_clue_without_point_is_accepted(client: FlaskClient) -> None:
    clue_no = transfer(client, "WG-9", extra="")
    assert fetch(client, clue_no).findtext("Lng") == ""


# ---- QueryCases cursor ---------------------------------------------------------------------------
def query(client: FlaskClient, body: str) -> tuple[list[str], str, str, str]:
    response = call(client, "QueryCases", body)
    assert code(response) == "0", response.findtext("Head/Message")
    rows = [c.findtext("ClueNo") or "" for c in response.findall("Body/Cases/Case")]
    return (rows, response.findtext("Body/More") or "", response.findtext("Body/LastModified") or "",
            response.findtext("Body/LastClueNo") or "")


def test_after_clue_no_boundary(client: FlaskClient, clock: FakeClock) -> None:
    a, b, c = (transfer(client, f"S1-{n}") for n in range(3))  # same second
    clock.tick(1)
    d, e = (transfer(client, f"S2-{n}") for n in range(2))
    rows, more, last_modified, last_clue_no = query(client, "<MaxCount>2</MaxCount>")
    assert (rows, more, last_modified, last_clue_no) == ([a, b], "1", "20261123091500", b)
    cursor = f"<ModifiedSince>{last_modified}</ModifiedSince><AfterClueNo>{last_clue_no}</AfterClueNo>"
    rows, more, last_modified, last_clue_no = query(client, cursor + "<MaxCount>2</MaxCount>")
    assert (rows, more, last_clue_no) == ([c, d], "1", d)
    cursor = f"<ModifiedSince>{last_modified}</ModifiedSince><AfterClueNo>{last_clue_no}</AfterClueNo>"
    assert query(client, cursor + "<MaxCount>2</MaxCount>")[:2] == ([e], "0")
    # without AfterClueNo the rows of that second come again
    assert query(client, "<ModifiedSince>20261123091500</ModifiedSince>")[0] == [a, b, c, d, e]
    empty = query(client, "<ModifiedSince>20261123091600</ModifiedSince><AfterClueNo>X</AfterClueNo>")
    assert empty == ([], "0", "20261123091600", "X")


@pytest.mark.parametrize("body", ["<MaxCount>101</MaxCount>", "<MaxCount>0</MaxCount>",
                                  "<MaxCount>ten</MaxCount>", "<ModifiedSince>2026-11-23</ModifiedSince>",
                                  "<AfterClueNo>ZF-2026-004501</AfterClueNo>"])
def test_bad_query_parameters_are_1002(client: FlaskClient, body: str) -> None:
    assert code(call(client, "QueryCases", body)) == "1002"


def test_remark_bumps_modified_until_final(client: FlaskClient, clock: FakeClock) -> None:
    clue_no = transfer(client, "WG-10")
    clock.tick(60)
    answer = call(client, "AddRemark", f"<ClueNo>{clue_no}</ClueNo><Text>当事人已自行整改</Text>")
    assert code(answer) == "0"
    assert query(client, "<ModifiedSince>20261123091600</ModifiedSince>")[0] == [clue_no]
    assert code(call(client, "AddRemark", "<ClueNo>ZF-2026-999999</ClueNo><Text>x</Text>")) == "2001"
    assert code(call(client, "QueryCase", "<ClueNo>ZF-2026-999999</ClueNo>")) == "2001"
    assert code(call(client, "AddRemark", f"<ClueNo>{clue_no}</ClueNo>")) == "1002"
    client.post(f"/_sandbox/cases/{clue_no}/advance", json={"Status": "HC"})
    client.post(f"/_sandbox/cases/{clue_no}/advance", json={"Status": "BYLA", "Result": "已整改"})
    final = call(client, "AddRemark", f"<ClueNo>{clue_no}</ClueNo><Text>再补充</Text>")
    assert code(final) == "2002"
    remarks = client.get("/_sandbox/state").get_json()["cases"][0]["_Remarks"]
    assert [r["Text"] for r in remarks] == ["当事人已自行整改"]


# ---- the department's side -----------------------------------------------------------------------
def test_department_moves(client: FlaskClient, clock: FakeClock) -> None:
    clue_no = transfer(client, "WG-11")
    skip = client.post(f"/_sandbox/cases/{clue_no}/advance", json={"Status": "LA"})
    assert skip.status_code == 409
    for status in ("HC", "LA", "DCQZ", "SC", "CFJD", "ZX", "JA"):
        clock.tick(1)
        answer = client.post(f"/_sandbox/cases/{clue_no}/advance",
                             json={"Status": status, "Penalty": "500", "Result": "罚款500元"})
        assert answer.status_code == 200, answer.get_json()
    case = fetch(client, clue_no)
    assert case.findtext("Status") == "JA" and case.findtext("CaseNo")
    assert (case.findtext("Penalty"), case.findtext("Modified")) == ("500", "20261123091507")
    assert client.post(f"/_sandbox/cases/{clue_no}/advance", json={"Status": "YS"}).status_code == 409
    patrol = client.post("/_sandbox/cases", json={"Content": "巡查发现渣土乱倒", "Category": "CG-0301"})
    assert patrol.status_code == 201 and patrol.get_json()["Source"] == "巡查"
    moved = client.post(f"/_sandbox/cases/{patrol.get_json()['ClueNo']}/advance", json={"Status": "YS"})
    assert moved.get_json()["Status"] == "YS"


def test_writes_logged_without_password(client: FlaskClient) -> None:
    transfer(client, "WG-12")
    call(client, "QueryCases")
    writes = client.get("/_sandbox/state").get_json()["writes"]
    assert [(w["method"], w["code"]) for w in writes] == [("TransferClue", 0)]
    assert writes[0]["body"]["Clue"]["Attachments"]["Url"] == ["http://img/1.jpg", "http://img/2.jpg"]
    assert "zf-demo-pass" not in str(writes)


# ---- maintenance, rate limit, latency ------------------------------------------------------------
def test_nightly_maintenance_window(clock: FakeClock) -> None:
    client = create_app(clock=clock, latency_s=0, rate_limit_per_s=0).test_client()
    clock.now = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)  # 01:00 in Shanghai
    response = post(client, envelope("QueryCases", "").encode("gbk"), status=503)
    assert (code(response), response.findtext("Head/Message")) == ("3001", "系统维护中")
    clock.now = datetime(2026, 11, 24, 1, 59, 59, tzinfo=SHANGHAI)
    assert code(post(client, envelope("QueryCases", "").encode("gbk"), status=503)) == "3001"
    clock.now = datetime(2026, 11, 24, 2, 0, 0, tzinfo=SHANGHAI)
    assert code(call(client, "QueryCases")) == "0"
    client.put("/_sandbox/faults", json={"maintenance": True})
    assert code(post(client, envelope("QueryCases", "").encode("gbk"), status=503)) == "3001"
    assert client.get("/_sandbox/state").status_code == 200  # control endpoints stay up


def test_rate_limit_per_account(clock: FakeClock) -> None:
    client = create_app(clock=clock, latency_s=0, rate_limit_per_s=5).test_client()
    codes = [code(call(client, "QueryCases")) for _ in range(6)]
    assert codes == ["0"] * 5 + ["1003"]
    time.sleep(1.05)
    assert code(call(client, "QueryCases")) == "0"


def test_answers_are_slow_by_default(clock: FakeClock) -> None:
    client = create_app(clock=clock, latency_s=0.2, rate_limit_per_s=0).test_client()
    started = time.monotonic()
    assert code(call(client, "QueryCases")) == "0"
    assert time.monotonic() - started > 0.05
