"""XML over HTTP in GBK (the 综合执法 exchange scheme).

Requests are ``<Request><Head>…</Head><Body>…</Body></Request>`` and answers
``<Response><Head><Code/><Message/></Head><Body>…</Body></Response>``, both
encoded in GBK whatever a header or declaration says. Text GBK cannot hold is
replaced before sending (character references are refused by the platform),
and answers are always decoded as GBK.

Building a body from Python values (``build_request``):

* a ``Mapping`` gives one child element per key, in order;
* ``str`` is text; ``int``/``float``/``Decimal`` their ``str()``; ``bool`` is
  ``1``/``0``; a ``datetime`` is ``yyyyMMddHHmmss`` in Asia/Shanghai (naive
  values are taken as Shanghai time already);
* ``None`` leaves the element out, ``""`` gives an empty element;
* a ``list`` repeats the key itself: ``{"Url": ["a", "b"]}`` →
  ``<Url>a</Url><Url>b</Url>``;
* ``Repeated(tag, items)`` (or a plain ``(tag, items)`` tuple) wraps repeated
  children: ``{"Attachments": Repeated("Url", ["a", "b"])}`` →
  ``<Attachments><Url>a</Url><Url>b</Url></Attachments>``; items may be
  mappings too.

A ready lxml element is accepted as well: a ``<Body>`` is used as the body, any
other element is put inside one; its text is made GBK-safe on a copy.
"""

from __future__ import annotations

import copy
import logging
import re
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from lxml import etree

from adapters.base import CodeKind, PermanentError, Transport, error_for_code, parse_retry_after, scrub
from adapters.http import raise_for_transport

log = logging.getLogger(__name__)

# Shanghai has kept UTC+8 without daylight saving since 1991; a fixed offset
# avoids depending on the host's tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

LAW_ENFORCEMENT_CODE_KINDS: Mapping[int, CodeKind] = {
    1001: "auth",
    1002: "business",
    1003: "transient",
    2001: "business",
    2002: "business",
    2003: "business",  # 重复移送: callers that treat it as done pass accept_codes={0, 2003}
    3001: "transient",
    9999: "transient",
}

# Characters XML 1.0 cannot carry at all, GBK or not.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class Repeated(NamedTuple):
    """Repeated ``tag`` children inside the element of the enclosing key."""

    tag: str
    items: Sequence[Any]


@dataclass(frozen=True)
class XmlReply:
    """An answer's head ``Code`` and ``Message`` and its ``Body`` element (if any)."""

    code: int
    message: str
    body: Any  # lxml ``_Element`` or None (lxml has no type stubs here)

    def find_text(self, path: str, default: str | None = None) -> str | None:
        """Text of the first element at ``path`` below ``Body`` (``""`` if empty), else ``default``."""
        if self.body is None:
            return default
        found = self.body.find(path)
        if found is None:
            return default
        return found.text or ""


def gbk_safe(text: str, replacement: str = "?") -> str:
    """``text`` with every character GBK cannot encode replaced by ``replacement``.

    Replaced, never turned into character references; every encodable
    character is kept as it is.
    """
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        pass
    else:
        return text
    replacement.encode("gbk")  # a replacement that cannot be sent is a programming error
    return "".join(ch if _gbk_encodable(ch) else replacement for ch in text)


def _gbk_encodable(ch: str) -> bool:
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("?", gbk_safe(text))


def shanghai_time(epoch_s: float) -> str:
    """``yyyyMMddHHmmss`` in Asia/Shanghai for a unix time."""
    return datetime.fromtimestamp(epoch_s, SHANGHAI).strftime("%Y%m%d%H%M%S")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        local = value.astimezone(SHANGHAI) if value.tzinfo is not None else value
        return local.strftime("%Y%m%d%H%M%S")
    raise TypeError(f"cannot put a {type(value).__name__} into XML text")


def _append(parent: Any, key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _append(parent, key, item)
        return
    child = etree.SubElement(parent, key)
    if isinstance(value, tuple):
        if len(value) != 2 or not isinstance(value[0], str) or isinstance(value[1], str | bytes):
            raise TypeError(f"{key}: a tuple must be (tag, items), see Repeated")
        tag, items = value
        for item in items:
            _append(child, tag, item)
    elif isinstance(value, Mapping):
        _fill(child, value)
    else:
        child.text = _text(value)


def _fill(parent: Any, fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        _append(parent, key, value)


def _body_element(body: Mapping[str, Any] | Any) -> Any:
    if isinstance(body, Mapping):
        element = etree.Element("Body")
        _fill(element, body)
        return element
    if not etree.iselement(body):
        raise TypeError("body must be a mapping or an lxml element")
    element = copy.deepcopy(body)
    for node in element.iter():
        if node.text:
            node.text = _clean(node.text)
        if node.tail and node is not element:
            node.tail = _clean(node.tail)
        for name, attr in node.attrib.items():
            node.set(name, _clean(attr))
    if element.tag == "Body":
        return element
    wrapper = etree.Element("Body")
    element.tail = None
    wrapper.append(element)
    return wrapper


def build_request(method: str, head_fields: Mapping[str, str], body: Mapping[str, Any] | Any) -> bytes:
    """The GBK bytes of ``<Request>``: ``Method`` then ``head_fields`` in order, then the body."""
    root = etree.Element("Request")
    head = etree.SubElement(root, "Head")
    etree.SubElement(head, "Method").text = _clean(method)
    for key, value in head_fields.items():
        etree.SubElement(head, key).text = _clean(value)
    root.append(_body_element(body))
    # Serialized to text first: asked for GBK directly, lxml would write
    # character references for what GBK lacks (and a single-quoted declaration).
    xml_text: str = etree.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="GBK"?>\n' + xml_text).encode("gbk")


def parse_response(content: bytes) -> XmlReply:
    """Parse a ``<Response>`` decoded as GBK, ignoring the declared encoding.

    Undecodable bytes become U+FFFD (one bad byte must not block a whole
    page); a missing head ``Code`` or broken XML is a ``PermanentError``.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    text = content.decode("gbk", errors="replace")
    if "\ufffd" in text:
        log.warning("XML answer holds bytes that are not GBK; replaced")
    try:
        root = etree.fromstring(_DECLARATION.sub("", text, count=1), _PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PermanentError(f"malformed XML answer: {type(exc).__name__}") from exc
    code_text = root.findtext("Head/Code")
    try:
        code = int((code_text or "").strip())
    except ValueError:
        raise PermanentError(f"XML answer <{root.tag}> without a numeric Head/Code") from None
    return XmlReply(code=code, message=(root.findtext("Head/Message") or "").strip(), body=root.find("Body"))


def _try_parse(content: bytes) -> XmlReply | None:
    try:
        return parse_response(content)
    except PermanentError:
        return None


class XmlGbkClient:
    """One endpoint taking ``<Request>`` documents; credentials go into every head.

    ``credentials`` are the head fields that authenticate (``User``,
    ``Password``), in order; ``RequestId`` (uuid4 hex, new per call) and
    ``Time`` (``yyyyMMddHHmmss`` Shanghai) follow them.
    """

    def __init__(
        self,
        url: str,
        credentials: Mapping[str, str],
        transport: Transport,
        timeout: float = 30,
        code_kinds: Mapping[int, CodeKind] = LAW_ENFORCEMENT_CODE_KINDS,
        clock: Callable[[], float] = time.time,
        request_id_factory: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.url = url
        self._credentials = dict(credentials)
        # Everything but the account name is treated as secret in messages.
        self._secrets = [v for k, v in self._credentials.items() if k.lower() not in {"user", "username"}]
        self.transport = transport
        self.timeout = timeout
        self.code_kinds = dict(code_kinds)
        self.clock = clock
        self.request_id_factory = request_id_factory

    def __repr__(self) -> str:
        return f"XmlGbkClient({self.url!r})"

    def call(
        self,
        method: str,
        body: Mapping[str, Any] | Any = None,
        accept_codes: Collection[int] = frozenset({0}),
    ) -> XmlReply:
        """Call ``method``; return the reply when its code is in ``accept_codes``.

        Raises ``TransientError`` for transport trouble, 429/5xx and transient
        codes (HTTP 503 with code 3001 → code ``"3001"``), ``AuthError`` for
        auth codes and 401/403, ``BusinessError`` for other codes,
        ``PermanentError`` for malformed answers and other 4xx.
        """
        request_id = self.request_id_factory()
        head = {**self._credentials, "RequestId": request_id, "Time": shanghai_time(self.clock())}
        payload = build_request(method, head, body if body is not None else {})
        resp = self.transport.request(
            "POST",
            self.url,
            data=payload,
            headers={"Content-Type": "text/xml; charset=GBK", "Accept": "text/xml"},
            timeout=self.timeout,
        )
        ok_status = 200 <= resp.status_code < 300
        reply = parse_response(resp.content) if ok_status else _try_parse(resp.content)
        if reply is None or (not ok_status and reply.code == 0):
            # A gateway's text/HTML error, or an HTTP error we cannot explain by a code.
            raise_for_transport(resp, secrets=self._secrets)
            status = resp.status_code
            raise PermanentError(f"{method}: unexpected HTTP {status}", http_status=status)
        log.debug("%s request %s -> HTTP %s code %s", method, request_id, resp.status_code, reply.code)
        if ok_status and reply.code in accept_codes:
            return reply
        message = scrub(f"{method}: {reply.code} {reply.message}".rstrip(), self._secrets)
        raise error_for_code(
            self.code_kinds,
            reply.code,
            message,
            http_status=resp.status_code,
            data=reply.body,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")),
        )
