"""综合执法 simulator: the GBK XML envelope (decode requests, encode responses).

The platform reads every request body as GBK whatever the header or XML declaration says, and
cannot tell mis-encoded text: UTF-8 bytes that happen to be valid GBK are read as mojibake.
Characters GBK cannot hold are refused, also when they arrive as character references.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

CODE_MESSAGES = {
    0: "成功",
    1001: "认证失败",
    1002: "参数错误",
    1003: "频率超限",
    2001: "记录不存在",
    2002: "当前状态不允许该操作",
    2003: "重复移送",
    3001: "系统维护中",
    9999: "内部错误",
}
CONTENT_TYPE = "text/xml; charset=GBK"
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class PlatformError(Exception):
    """A business answer other than 0: the code and the head's Message."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else CODE_MESSAGES[code]
        super().__init__(f"{code} {self.message}")


def bad_parameter(name: str) -> PlatformError:
    return PlatformError(1002, f"参数错误：{name}")


@dataclass
class ExchangeRequest:
    """One decoded request: the head's fields and the Body element."""

    method: str
    user: str
    password: str
    request_id: str
    time: str
    body: ET.Element = field(default_factory=lambda: ET.Element("Body"))

    def text(self, name: str) -> str:
        """Text of a direct child of Body ('' when absent)."""
        return child_text(self.body, name)


def child_text(parent: ET.Element, name: str) -> str:
    node = parent.find(name)
    return (node.text or "").strip() if node is not None else ""


def _gbk_safe(root: ET.Element) -> bool:
    for node in root.iter():
        for text in (node.text, node.tail, *node.attrib.values()):
            if text:
                try:
                    text.encode("gbk")
                except UnicodeEncodeError:
                    return False
    return True


def parse_request(raw: bytes) -> ExchangeRequest:
    """Decode a request body as GBK and read its envelope; PlatformError 1002 when it cannot."""
    try:
        text = raw.decode("gbk")
    except UnicodeDecodeError:
        raise PlatformError(1002, "参数错误：报文编码") from None
    text = _DECLARATION.sub("", text, count=1)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise PlatformError(1002, "参数错误：报文格式")
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise PlatformError(1002, "参数错误：报文格式") from None
    if not _gbk_safe(root):
        raise PlatformError(1002, "参数错误：含有非GBK字符")
    head = root.find("Head")
    if root.tag != "Request" or head is None:
        raise PlatformError(1002, "参数错误：报文格式")
    body = root.find("Body")
    return ExchangeRequest(
        method=child_text(head, "Method"), user=child_text(head, "User"),
        password=child_text(head, "Password"), request_id=child_text(head, "RequestId"),
        time=child_text(head, "Time"), body=body if body is not None else ET.Element("Body"),
    )


def element(tag: str, text: str = "") -> ET.Element:
    node = ET.Element(tag)
    node.text = text
    return node


def response_bytes(code: int, message: str | None = None, children: list[ET.Element] | None = None) -> bytes:
    """A whole ``<Response>`` document, GBK-encoded, with the GBK declaration."""
    root = ET.Element("Response")
    head = ET.SubElement(root, "Head")
    head.append(element("Code", str(code)))
    head.append(element("Message", message if message is not None else CODE_MESSAGES[code]))
    body = ET.SubElement(root, "Body")
    body.extend(children or [])
    document = '<?xml version="1.0" encoding="GBK"?>\n' + ET.tostring(root, encoding="unicode")
    # everything stored is GBK-safe already; "replace" only guards control-endpoint data
    return document.encode("gbk", errors="replace")
