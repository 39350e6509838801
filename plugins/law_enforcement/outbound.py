"""综合执法 outbound: the hub transfers clues (``TransferClue``) and adds remarks (``AddRemark``).

Nobody outside may change a case's status on this platform, so the hub sends it two effects only:

* ``create`` → ``TransferClue``. The platform de-duplicates on ``ExternalNo`` (the hub's case
  number, or the 12345 ``gdbh`` the clue came from): a repeat is answered 2003 with the existing
  ``ClueNo`` as the head's ``Message``, which is a success. So a retry after a lost answer is
  applied once. The category becomes the platform's 执法事项 code through the mapping's
  ``outbound_codes.category``; a canonical category without one is not a law-enforcement matter
  (a mapping error). The location goes in GCJ-02, converted from the hub's WGS-84.
* ``note`` → ``AddRemark``. The platform keeps no request memory for it: a retry after a lost
  answer may add the remark twice (at least once). A final case answers 2002: refused for good.

Text GBK cannot hold (emoji, rare characters outside GBK) is replaced by ``?`` in the request
encoder (``adapters.xml_gbk``), never sent as a character reference (the platform answers 1002)
or as UTF-8 (stored as mojibake). The head's ``RequestId`` is derived from the effect's
idempotency key, so every attempt of one effect carries the same id in the platform's logs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from adapters.base import AdapterError, AuthError, BusinessError
from adapters.xml_gbk import SHANGHAI, Repeated, XmlGbkClient, XmlReply
from hub.facade import (
    OP_CREATE,
    OP_NOTE,
    DeliveryError,
    DeliveryResult,
    EffectPayload,
    OutboundEffect,
    mapping_error,
    text_of,
)
from mappings.datum import out_of_china, wgs84_to_gcj02
from mappings.document import MappingDocument
from mappings.engine import outbound_code
from mappings.errors import MappingError

OPERATIONS = (OP_CREATE, OP_NOTE)
SOURCES = ("网格", "12345")  # the sources the hub files under; 巡查/举报/移送 are the platform's own
TIME_FORMAT = "%Y%m%d%H%M%S"
COORDINATE_DECIMALS = 6  # about 0.1 m; the platform keeps six

DUPLICATE = 2003  # 重复移送: Message is the existing ClueNo
FINAL = "2002"  # 当前状态不允许该操作 (AddRemark on a final case)
RATE_LIMITED = "1003"
MAINTENANCE = "3001"

RATE_LIMIT_WAIT_S = 2.0  # 5 calls a second per account: a couple of seconds is "slower"
MAINTENANCE_END_HOUR = 2  # the nightly window is [01:00, 02:00) Asia/Shanghai
MAINTENANCE_MARGIN_S = 60.0  # come back a little after 02:00, not on the stroke
# 3001 while our clock says the window ends within this long: the nightly window (with a few
# minutes of clock skew). Otherwise unscheduled maintenance whose end nobody told us.
MAINTENANCE_HORIZON_S = 3600.0 + 300.0
UNSCHEDULED_MAINTENANCE_WAIT_S = 300.0

ClientFactory = Callable[[str], XmlGbkClient]
"""A client for one delivery, given the head ``RequestId`` it must send."""


def request_id(idempotency_key: str) -> str:
    """The head ``RequestId`` for every attempt of one effect: 32 hex digits (the shape of the
    ids the client makes itself), stable for the key whatever characters the key holds."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


# ----- TransferClue -------------------------------------------------------------------------------


def category_code(mapping: Any, category: str, where: str) -> str:
    """The platform's 执法事项 code of canonical ``category`` (``outbound_codes.category``)."""
    if not isinstance(mapping, MappingDocument):
        raise mapping_error(where, "no active mapping document to turn the category into a 执法事项 code")
    try:
        return outbound_code(mapping, "category", category)
    except MappingError as exc:
        raise mapping_error(where, f"category {category or '(none)'} is no 综合执法 matter: {exc}") from None


def gcj02_location(location: Any, where: str) -> tuple[str | None, str | None]:
    """``Lng``/``Lat`` in GCJ-02 for a WGS-84 ``{"lng", "lat"}`` (both ``None`` without one)."""
    if location is None:
        return None, None
    try:
        lng, lat = float(location["lng"]), float(location["lat"])
    except (TypeError, KeyError, ValueError):
        raise mapping_error(where, f"location is not {{lng, lat}} in degrees: {location!r}") from None
    if not (math.isfinite(lng) and math.isfinite(lat)) or out_of_china(lng, lat):
        raise mapping_error(where, f"location ({lng}, {lat}) is outside China; the platform takes "
                                    f"only points inside it")
    gcj_lng, gcj_lat = wgs84_to_gcj02(lng, lat)
    return f"{gcj_lng:.{COORDINATE_DECIMALS}f}", f"{gcj_lat:.{COORDINATE_DECIMALS}f}"


def clue_body(effect: OutboundEffect) -> dict[str, Any]:
    """The ``TransferClue`` body of a ``create`` effect; ``DeliveryError(kind="mapping")`` when the
    effect lacks what the platform requires (``ExternalNo``, ``Source``, ``Category``, ``Content``)."""
    payload = effect.payload
    read = EffectPayload(payload, f"综合执法 TransferClue {text_of(payload, 'external_no') or '?'}")
    where = read.where
    external_no = read.required("external_no", "create effect without external_no (ExternalNo)")
    source = read.one_of("source", SOURCES, "is not one the hub files under")
    content = read.required("description", "create effect without a description (Content is required)")
    lng, lat = gcj02_location(payload.get("location"), where)
    urls = read.photos()
    clue = {
        "ExternalNo": external_no,
        "Source": source,
        "Category": category_code(effect.mapping, read.text("category"), where),
        "Content": content,
        "Address": read.text("address") or None,
        "Lng": lng,
        "Lat": lat,
        "ReportTime": read.local_time("reported_at", TIME_FORMAT, SHANGHAI),
        "Reporter": read.text("reporter") or None,
        "Attachments": Repeated("Url", urls) if urls else None,
    }
    return {"Clue": clue}


def transferred(reply: XmlReply, where: str) -> DeliveryResult:
    """The result of a ``TransferClue`` answered 0 (new ``ClueNo``) or 2003 (the existing one)."""
    if reply.code == DUPLICATE:
        clue_no = reply.message.strip()
        if not clue_no:
            raise DeliveryError(f"{where}: 2003 (重复移送) without the existing ClueNo", "permanent")
        return DeliveryResult(ok=True, detail=f"already transferred as {clue_no} (2003)", external_ref=clue_no)
    clue_no = (reply.find_text("ClueNo") or "").strip()
    if not clue_no:
        # the clue exists now; the retry is answered 2003 with its number
        raise DeliveryError(f"{where}: answer 0 without a ClueNo", "transient")
    return DeliveryResult(ok=True, detail=f"transferred as {clue_no}", external_ref=clue_no)


# ----- AddRemark ----------------------------------------------------------------------------------


def remark_body(effect: OutboundEffect) -> dict[str, Any]:
    """The ``AddRemark`` body of a ``note`` effect. ``AddRemark`` has no attachments, so the
    photo URLs go into the text, where the platform's people can open them."""
    payload = effect.payload
    clue_no = text_of(payload, "external_id")
    where = f"综合执法 AddRemark {clue_no or '?'}"
    if not clue_no:
        raise mapping_error(where, "note effect without external_id (ClueNo)")
    text = text_of(payload, "text")
    urls = EffectPayload(payload, where).photos()
    if urls:
        text = "\n".join([text, "附件：", *urls]) if text else "\n".join(["附件：", *urls])
    if not text:
        raise mapping_error(where, "note effect without text or photos (Text is required)")
    return {"ClueNo": clue_no, "Text": text}


# ----- failures -----------------------------------------------------------------------------------


def maintenance_wait(now: float, told: float | None = None) -> float:
    """Seconds to wait after a 3001 at unix time ``now``: until 02:00 Asia/Shanghai plus a margin
    in the nightly window; otherwise (unscheduled maintenance) what the platform said, or a
    few minutes."""
    local = datetime.fromtimestamp(now, SHANGHAI)
    end = local.replace(hour=MAINTENANCE_END_HOUR, minute=0, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    until_end = (end - local).total_seconds()
    if until_end <= MAINTENANCE_HORIZON_S:
        return until_end + MAINTENANCE_MARGIN_S
    return told if told else UNSCHEDULED_MAINTENANCE_WAIT_S


def delivery_error(where: str, exc: AdapterError, now: float) -> DeliveryError:
    """The adapter's classified error as the outbox's. Messages hold codes and the platform's
    words; the client scrubs the password from them."""
    if exc.kind == "transient":
        if exc.code == MAINTENANCE:
            wait: float | None = maintenance_wait(now, exc.retry_after)
        elif exc.code == RATE_LIMITED:
            wait = exc.retry_after or RATE_LIMIT_WAIT_S
        else:
            wait = exc.retry_after
        return DeliveryError(f"{where}: {exc}", "transient", wait)
    if isinstance(exc, AuthError):
        return DeliveryError(f"{where}: the account (user/password) was refused: {exc}", "permanent")
    if isinstance(exc, BusinessError):
        return DeliveryError(f"{where}: refused by 综合执法: {exc}", "permanent")
    return DeliveryError(f"{where}: {exc}", "permanent")


# ----- the writer ---------------------------------------------------------------------------------


class ClueWriter:
    """Applies ``create`` and ``note`` effects to the platform, one call each."""

    def __init__(self, client_for: ClientFactory, clock: Callable[[], float]) -> None:
        self.client_for = client_for
        self.clock = clock

    def deliver(self, effect: OutboundEffect) -> DeliveryResult:
        """One call per effect; any other operation is a mapping error (no status can be set)."""
        if effect.operation == OP_CREATE:
            return self.transfer_clue(effect)
        if effect.operation == OP_NOTE:
            return self.add_remark(effect)
        raise DeliveryError(f"综合执法 takes only {', '.join(OPERATIONS)} effects, not {effect.operation!r} "
                            f"(nobody outside may change a case's status)", "mapping")

    def transfer_clue(self, effect: OutboundEffect) -> DeliveryResult:
        """``TransferClue``; 2003 (already transferred) is a success with the existing ``ClueNo``."""
        body = clue_body(effect)
        where = f"综合执法 TransferClue {body['Clue']['ExternalNo']}"
        client = self.client_for(request_id(effect.idempotency_key))
        try:
            reply = client.call("TransferClue", body, accept_codes=frozenset({0, DUPLICATE}))
        except AdapterError as exc:
            raise delivery_error(where, exc, self.clock()) from None
        return transferred(reply, where)

    def add_remark(self, effect: OutboundEffect) -> DeliveryResult:
        """``AddRemark``; a final case (2002) refuses it for good: ``ok=False``, no retry."""
        body = remark_body(effect)
        where = f"综合执法 AddRemark {body['ClueNo']}"
        client = self.client_for(request_id(effect.idempotency_key))
        try:
            client.call("AddRemark", body)
        except BusinessError as exc:
            if exc.code != FINAL:
                raise delivery_error(where, exc, self.clock()) from None
            return DeliveryResult(ok=False, detail=f"{where}: the case is final, the platform takes no more "
                                                   f"remarks ({exc.message})", external_ref=body["ClueNo"])
        except AdapterError as exc:
            raise delivery_error(where, exc, self.clock()) from None
        return DeliveryResult(ok=True, detail="remark added", external_ref=body["ClueNo"])


__all__ = ["OPERATIONS", "SOURCES", "ClueWriter", "category_code", "clue_body", "delivery_error",
           "gcj02_location", "maintenance_wait", "remark_body", "request_id", "transferred"]
