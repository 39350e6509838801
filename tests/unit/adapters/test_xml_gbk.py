from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, Response, request
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters.base import AuthError, BusinessError, PermanentError, TransientError
from adapters.http import HttpTransport
from adapters.xml_gbk import Repeated, XmlGbkClient, build_request, gbk_safe, parse_response

from .conftest import Serve

CREDENTIALS = {"User": "wgzx", "Password": "pw-secret-123"}


def _encodable(ch: str) -> bool:
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def test_gbk_safe_replaces_emoji_and_rare_characters() -> None:
    assert gbk_safe("占道经营😡严重") == "占道经营?严重"
    assert gbk_safe("地锁\U00020000号", replacement="□") == "地锁□号"
    assert gbk_safe("斜土路1175号，１２３") == "斜土路1175号，１２３"


@given(st.text())
def test_gbk_safe_output_encodes_and_keeps_every_encodable_char(text: str) -> None:
    safe = gbk_safe(text)
    safe.encode("gbk")
    assert len(safe) == len(text)
    for before, after in zip(text, safe, strict=True):
        assert after == (before if _encodable(before) else "?")


def test_build_request_layout_and_round_trip() -> None:
    payload = build_request(
        "TransferClue",
        {"User": "wgzx", "Password": "p", "RequestId": "r1", "Time": "20261123091502"},
        {
            "Clue": {
                "ExternalNo": "GD20261123000123",
                "Content": "斜土路日晖新城门口占道经营🍢，影响通行",
                "Lng": 121.4532,
                "Lat": None,
                "ReportTime": datetime(2026, 11, 23, 1, 13, 40, tzinfo=UTC),
                "Urgent": True,
                "Remark": "",
                "Attachments": Repeated("Url", ["http://a/1.jpg", "http://a/2.jpg"]),
                "Tags": ("Tag", [{"Name": "流动摊贩"}]),
            },
            "Note": ["一", "二"],
        },
    )
    assert payload.startswith(b'<?xml version="1.0" encoding="GBK"?>')
    assert b"&#" not in payload
    text = payload.decode("gbk")
    root = etree.fromstring(payload)
    assert [child.tag for child in root] == ["Head", "Body"]
    assert [child.tag for child in root.find("Head")] == ["Method", "User", "Password", "RequestId", "Time"]
    clue = root.find("Body/Clue")
    assert clue.findtext("Content") == "斜土路日晖新城门口占道经营?，影响通行"
    assert clue.findtext("Lng") == "121.4532"
    assert clue.find("Lat") is None
    assert clue.findtext("ReportTime") == "20261123091340"
    assert clue.findtext("Urgent") == "1"
    assert clue.find("Remark") is not None and not clue.findtext("Remark")
    assert [u.text for u in clue.findall("Attachments/Url")] == ["http://a/1.jpg", "http://a/2.jpg"]
    assert clue.findtext("Tags/Tag/Name") == "流动摊贩"
    assert [n.text for n in root.findall("Body/Note")] == ["一", "二"]
    assert "斜土路" in text


def test_build_request_from_an_element_sanitizes_a_copy() -> None:
    clue = etree.Element("Clue")
    etree.SubElement(clue, "Content", Note="附件📎").text = "噪声😀扰民"
    payload = build_request("TransferClue", {}, clue)
    root = etree.fromstring(payload)
    assert root.findtext("Body/Clue/Content") == "噪声?扰民"
    assert root.find("Body/Clue/Content").get("Note") == "附件?"
    assert clue.findtext("Content") == "噪声😀扰民"


def test_build_request_replaces_xml_illegal_control_characters() -> None:
    root = etree.fromstring(build_request("AddRemark", {}, {"Text": "第一行\x01\n第二行\t完"}))
    assert root.findtext("Body/Text") == "第一行?\n第二行\t完"


def test_build_request_refuses_unknown_values() -> None:
    with pytest.raises(TypeError):
        build_request("X", {}, {"A": object()})
    with pytest.raises(TypeError):
        build_request("X", {}, {"A": ("Url", "not-a-list")})


def test_parse_response_ignores_a_wrong_declared_encoding() -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Head><Code>0</Code><Message>成功</Message></Head>'
        "<Body><Cases><Case><ClueNo>ZF-2026-004498</ClueNo><Content>违法建设，群众反映强烈</Content>"
        "</Case></Cases><More>0</More></Body></Response>"
    )
    reply = parse_response(xml.encode("gbk"))
    assert (reply.code, reply.message) == (0, "成功")
    assert reply.find_text("Cases/Case/Content") == "违法建设，群众反映强烈"
    assert reply.find_text("Missing", "x") == "x"


def test_parse_response_malformed() -> None:
    with pytest.raises(PermanentError):
        parse_response(b"<html>502 Bad Gateway</html>")
    with pytest.raises(PermanentError):
        parse_response(b"<Response><Head>")


class Platform:
    """A 综合执法-like exchange endpoint."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.clues: dict[str, str] = {}

    def app(self) -> Flask:
        app = Flask(__name__)

        @app.post("/zfba/ws/exchange")
        def exchange() -> Any:
            raw = request.get_data()
            assert b"&#" not in raw
            root = etree.fromstring(raw.decode("gbk").split("?>", 1)[1])
            self.requests.append(root)
            head = root.find("Head")
            method = head.findtext("Method")
            if head.findtext("Password") != CREDENTIALS["Password"]:
                return _reply(1001, "认证失败 pw-secret-123")
            if method == "TransferClue":
                external_no = root.findtext("Body/Clue/ExternalNo")
                content = root.findtext("Body/Clue/Content")
                if external_no in self.clues:
                    return _reply(2003, self.clues[external_no])
                self.clues[external_no] = f"ZF-2026-{len(self.clues) + 4512:06d}"
                return _reply(0, "成功", f"<ClueNo>{self.clues[external_no]}</ClueNo><Echo>{content}</Echo>")
            if method == "Maintenance":
                return _reply(3001, "系统维护中", status=503)
            if method == "Busy":
                return _reply(1003, "频率超限")
            if method == "AddRemark":
                return _reply(2002, "当前状态不允许该操作")
            if method == "Crash":
                return _reply(9999, "内部错误")
            if method == "Gateway":
                return Response("<html><body>502 Bad Gateway</body></html>", 502, mimetype="text/html")
            return _reply(1002, "参数错误")

        return app


def _reply(code: int, message: str, body: str = "", status: int = 200) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Head><Code>{code}</Code><Message>{message}</Message></Head><Body>{body}</Body></Response>"
    )
    return Response(xml.encode("gbk"), status, content_type="text/xml; charset=UTF-8")


@pytest.fixture
def platform() -> Platform:
    return Platform()


def _client(url: str, **kw: Any) -> XmlGbkClient:
    return XmlGbkClient(url + "/zfba/ws/exchange", kw.pop("credentials", CREDENTIALS), HttpTransport(), **kw)


def test_call_sends_head_and_gbk_body(serve: Serve, platform: Platform) -> None:
    client = _client(serve(platform.app()), clock=lambda: 1763860502.0)  # 2025-11-23 09:15:02 +08:00
    clue = {"Clue": {"ExternalNo": "GD1", "Source": "网格", "Content": "私设地锁😤三处"}}
    reply = client.call("TransferClue", clue)
    assert reply.code == 0 and reply.find_text("ClueNo") == "ZF-2026-004512"
    assert reply.find_text("Echo") == "私设地锁?三处"
    client.call("TransferClue", {"Clue": {"ExternalNo": "GD2"}})
    heads = [root.find("Head") for root in platform.requests]
    assert heads[0].findtext("User") == "wgzx"
    assert heads[0].findtext("Time") == "20251123091502"
    ids = [head.findtext("RequestId") for head in heads]
    assert len(set(ids)) == 2 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_duplicate_transfer_reaches_the_caller_when_accepted(serve: Serve, platform: Platform) -> None:
    client = _client(serve(platform.app()))
    first = client.call("TransferClue", {"Clue": {"ExternalNo": "GD1"}}).find_text("ClueNo")
    again = client.call("TransferClue", {"Clue": {"ExternalNo": "GD1"}}, accept_codes={0, 2003})
    assert (again.code, again.message) == (2003, first)
    with pytest.raises(BusinessError) as info:
        client.call("TransferClue", {"Clue": {"ExternalNo": "GD1"}})
    assert info.value.code == "2003"


def test_maintenance_503_carries_code_3001(serve: Serve, platform: Platform) -> None:
    with pytest.raises(TransientError) as info:
        _client(serve(platform.app())).call("Maintenance", {})
    assert info.value.code == "3001" and info.value.http_status == 503


@pytest.mark.parametrize(
    ("method", "error", "code"),
    [
        ("Busy", TransientError, "1003"),
        ("Crash", TransientError, "9999"),
        ("AddRemark", BusinessError, "2002"),
        ("Nonsense", BusinessError, "1002"),
    ],
)
def test_code_table(serve: Serve, platform: Platform, method: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        _client(serve(platform.app())).call(method, {"ClueNo": "ZF-1"})
    assert info.value.code == code  # type: ignore[attr-defined]


def test_refused_credentials_are_auth_error_without_password(serve: Serve, platform: Platform) -> None:
    client = _client(serve(platform.app()), credentials={"User": "wgzx", "Password": "pw-secret-123x"})
    with pytest.raises(AuthError) as info:
        client.call("QueryCases", {})
    assert info.value.code == "1001"
    assert "pw-secret-123x" not in str(info.value) and "pw-secret" not in repr(client)


def test_gateway_html_is_transient(serve: Serve, platform: Platform) -> None:
    with pytest.raises(TransientError) as info:
        _client(serve(platform.app())).call("Gateway", {})
    assert info.value.http_status == 502 and info.value.code == "502"


def test_connection_refused_is_transient(refused_url: str) -> None:
    with pytest.raises(TransientError):
        _client(refused_url).call("QueryCases", {})
