"""Grid workers' reports (网格上报) and on-site verification (核查) photos.

A report is made in the hub but flows through the same pipeline as every department record:
it is written to the inbox as a raw JSON record of the built-in ``grid`` system
(``hub.plugin.builtin_systems``), then processed inline by ``hub.services.ingest`` so the
answer carries the ticket and case. It is therefore kept verbatim, mapped by an editable mapping
document, de-duplicated by the matchers and, when it cannot be mapped, quarantined, never lost.

"Add to this case" (``attach_to``) is an explicit reference to a hub case number, the same
mechanism a 数字城管 source-07 case uses to name the hub case it came from.

Idempotency: a phone on a flaky connection resubmits the same draft; ``(reporter, client_id)``
is unique, and a repeat answers the first report's result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.dedup.location import M_PER_DEG_LNG_EQUATOR, haversine_m, metres_per_degree
from hub.facade import GRID_REPORT_TYPE, RawRecord
from hub.models import Case, InboundEvent, InboundStatus, System, Ticket, User
from hub.models.base import utcnow
from hub.models.work import Attachment, GridReport
from hub.plugin.builtin_systems import GRID_SYSTEM_KEY, GRID_SYSTEM_NAME
from hub.services import audit
from hub.services.escalation import FINISHED
from hub.services.inbox import Inbox
from mappings.canonical import CanonicalStatus
from mappings.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

SHORT_LIST: tuple[str, ...] = (
    "garbage_exposed", "illegal_parking_motor", "street_vending", "shopfront_trading",
    "illegal_construction", "group_rental", "construction_waste", "small_ads", "manhole_cover",
    "road_damage", "streetlight", "waterlogging", "noise_construction", "cooking_fumes",
)
"""The categories a grid worker picks from: the common ones, and the hard ones (违法建设, 群租)
made as easy to report as garbage. The grid_report mapping document admits exactly these."""

MAX_TEXT = 500
MAX_PHOTOS = 4
MAX_PHOTO_BYTES = 5 * 1024 * 1024
LOCATION_SOURCES = ("gps", "map")
# mainland China, with margin (WGS-84): a point outside is a wrong datum or a wrong device
CHINA_LNG = (73.0, 135.5)
CHINA_LAT = (18.0, 53.6)


class ReportError(ValueError):
    """Input the hub refuses, with the field and the HTTP status it maps to (400/403/404/409)."""

    def __init__(self, message: str, field: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Photo:
    data: bytes
    mime: str = ""  # as the client said; the bytes decide
    filename: str = ""


@dataclass
class ReportResult:
    report: GridReport
    outcome: str  # new_case | attached | linked | quarantined | pending
    case_number: str = ""
    ticket_id: int | None = None
    case_id: int | None = None
    inbound_id: int | None = None
    repeat: bool = False
    reason: str = ""
    attachment_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        r = self.report
        return {"report": {"id": r.id, "client_id": r.client_id, "category": r.category, "text": r.text,
                           "lat": r.lat, "lng": r.lng, "location_source": r.location_source,
                           "grid_code": r.grid_code, "attach_to": r.attach_to, "created_at": r.created_at,
                           "attachments": self.attachment_ids},
                "outcome": self.outcome, "ticket_id": self.ticket_id, "case_id": self.case_id,
                "case_number": self.case_number, "inbound_id": self.inbound_id, "reason": self.reason}


# ---------------------------------------------------------------- validation


def sniff_image(data: bytes) -> str:
    """The image type by its magic bytes (never by the name or the client's word), or ""."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return ""


def check_photos(photos: list[Photo]) -> list[tuple[Photo, str]]:
    if len(photos) > MAX_PHOTOS:
        raise ReportError(f"at most {MAX_PHOTOS} photos", "photos")
    checked = []
    for n, photo in enumerate(photos, 1):
        if not photo.data:
            raise ReportError(f"photo {n} is empty", "photos")
        if len(photo.data) > MAX_PHOTO_BYTES:
            raise ReportError(f"photo {n} is larger than 5 MB", "photos")
        mime = sniff_image(photo.data)
        if not mime:
            raise ReportError(f"photo {n} is not a JPEG, PNG or WebP image", "photos")
        checked.append((photo, mime))
    return checked


def _store_photos(session: Session, checked: list[tuple[Photo, str]], *, uploaded_by: str, purpose: str,
                  report_id: int | None = None, case_id: int | None = None) -> list[Attachment]:
    """Checked photos (``check_photos``) as attachment rows of a report or a case, flushed (ids set)."""
    rows = [Attachment(sha256=hashlib.sha256(p.data).hexdigest(), mime=mime, size=len(p.data), data=p.data,
                       filename=p.filename[:200], uploaded_by=uploaded_by, report_id=report_id, case_id=case_id,
                       purpose=purpose, created_at=utcnow())
            for p, mime in checked]
    session.add_all(rows)
    session.flush()
    return rows


def decode_base64_photo(data: str, mime: str = "", filename: str = "") -> Photo:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ReportError("photo data is not base64", "photos") from None
    return Photo(raw, mime, filename)


def check_point(lat: float, lng: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise ReportError("coordinates must be numbers", "lat")
    if not (CHINA_LAT[0] <= lat <= CHINA_LAT[1] and CHINA_LNG[0] <= lng <= CHINA_LNG[1]):
        raise ReportError("the point is not in China (WGS-84 lat/lng expected)", "lat")


def _check(category: str, text: str, lat: float, lng: float, location_source: str, client_id: str) -> str:
    if not client_id or len(client_id) > 64:
        raise ReportError("client_id is required (at most 64 characters)", "client_id")
    if category not in SHORT_LIST:
        raise ReportError(f"category {category!r} is not one a grid worker reports", "category")
    text = (text or "").strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise ReportError(f"text must be 1 to {MAX_TEXT} characters", "text")
    if location_source not in LOCATION_SOURCES:
        raise ReportError("location_source must be gps or map", "location_source")
    check_point(lat, lng)
    return text


def locate_in_scope(ctx: HubContext, lat: float, lng: float, scope: str) -> str:
    """The point's grid code, refusing a point outside the reporter's jurisdiction."""
    grid_code = ctx.grids().locate(lng, lat)
    if scope and not grid_code.startswith(scope):
        where = f"grid {grid_code}" if grid_code else "outside every grid"
        raise ReportError(f"the point is {where}, not in your jurisdiction {scope}", "lat", 403)
    return grid_code


# ---------------------------------------------------------------- the grid system


def ensure_grid_system(session: Session) -> System:
    """The hub's own ``grid`` system (type grid_report), created on first use."""
    system = session.scalar(select(System).where(System.key == GRID_SYSTEM_KEY))
    if system is None:
        system = System(key=GRID_SYSTEM_KEY, plugin=GRID_REPORT_TYPE, name=GRID_SYSTEM_NAME, enabled=True,
                        settings={})
        session.add(system)
        session.flush()
    return system


# ---------------------------------------------------------------- submitting


def submit_report(ctx: HubContext, user: User, *, client_id: str, category: str, text: str, lat: float,
                  lng: float, location_source: str = "gps", photos: list[Photo] | None = None,
                  attach_to: str = "") -> ReportResult:
    """Store a grid worker's report and run it through the pipeline; see the module docstring.

    Raises ``ReportError`` for input the hub refuses. A repeat of ``(user, client_id)`` returns
    the first report's result (``repeat=True``) without storing anything again."""
    existing = _existing(ctx, user.id, client_id)
    if existing is not None:
        return _finish(ctx, existing, repeat=True)
    text = _check(category, text, lat, lng, location_source, client_id)
    checked = check_photos(list(photos or ()))
    grid_code = locate_in_scope(ctx, lat, lng, user.scope)
    attach_to = (attach_to or "").strip()
    try:
        with ctx.db.session() as s:
            if attach_to:
                attach_to = _attach_target(s, attach_to, user.scope).number
            ensure_grid_system(s)
            report = GridReport(client_id=client_id, reporter_id=user.id, category=category, text=text,
                                lat=lat, lng=lng, location_source=location_source, grid_code=grid_code,
                                attach_to=attach_to, outcome="", created_at=utcnow())
            s.add(report)
            s.flush()
            attachments = _store_photos(s, checked, uploaded_by=str(user.id), purpose="report",
                                        report_id=report.id)
            record = _record(report, [a.id for a in attachments])
            # stored with the report in one transaction: never a report without its inbox record
            report.inbound_id = Inbox(ctx, GRID_SYSTEM_KEY)._insert(s, record)
            audit.record(s, user.username, "report.submit", "grid_report", str(report.id), None,
                         {"category": category, "grid_code": grid_code, "attach_to": attach_to,
                          "photos": len(attachments)})
            report_id = report.id
    except IntegrityError:  # the same draft arrived twice at once: the other one won
        existing = _existing(ctx, user.id, client_id)
        if existing is None:
            raise
        return _finish(ctx, existing, repeat=True)
    return _finish(ctx, report_id, repeat=False)


def _existing(ctx: HubContext, reporter_id: int, client_id: str) -> int | None:
    with ctx.db.read_session() as s:
        return s.scalar(select(GridReport.id).where(GridReport.reporter_id == reporter_id,
                                                    GridReport.client_id == client_id))


def _attach_target(s: Session, number: str, scope: str) -> Case:
    case = s.scalar(select(Case).where(Case.number == number))
    if case is None or (scope and not case.grid_code.startswith(scope)):
        raise ReportError(f"case {number} not found", "attach_to", 404)
    for _ in range(8):  # merged away: the report joins where it went
        if case.merged_into_id is None:
            break
        nxt = s.get(Case, case.merged_into_id)
        if nxt is None:
            break
        case = nxt
    if case.status in FINISHED:
        raise ReportError(f"case {case.number} is {case.status}; report a new case instead", "attach_to", 409)
    return case


def _record(report: GridReport, attachment_ids: list[int]) -> RawRecord:
    """The verbatim record of a report: the reporter is the user id only, never a name or phone."""
    payload = {"report_id": f"R{report.id}", "client_id": report.client_id, "status": "new",
               "category": report.category, "text": report.text, "lat": report.lat, "lng": report.lng,
               "location_source": report.location_source,
               "reported_at": report.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "reporter": str(report.reporter_id), "grid_code": report.grid_code,
               "attachments": attachment_ids, "attach_to": report.attach_to}
    return RawRecord(event_id=f"report:{report.id}", external_id=f"R{report.id}",
                     raw=json.dumps(payload, ensure_ascii=False, sort_keys=True))


def _finish(ctx: HubContext, report_id: int, *, repeat: bool) -> ReportResult:
    """Process the report's inbox record (a no-op when done already) and record where it went."""
    from hub.services.ingest import process_event  # ingest imports the services: imported when used

    with ctx.db.read_session() as s:
        inbound_id = s.scalar(select(GridReport.inbound_id).where(GridReport.id == report_id))
    reason = ""
    if inbound_id is not None:
        reason = process_event(ctx, inbound_id).reason
    with ctx.db.session() as s:
        report = s.get(GridReport, report_id)
        assert report is not None
        ev = s.get(InboundEvent, report.inbound_id) if report.inbound_id is not None else None
        ticket = s.get(Ticket, ev.ticket_id) if ev is not None and ev.ticket_id is not None else None
        case = s.get(Case, ticket.case_id) if ticket is not None and ticket.case_id is not None else None
        if ev is not None and ev.status == InboundStatus.QUARANTINED:
            report.outcome, reason = "quarantined", ev.error_reason
        elif case is not None and ticket is not None and not report.outcome:
            report.outcome = _how(s, case, ticket, report)
        report.ticket_id = ticket.id if ticket is not None else None
        report.case_id = case.id if case is not None else None
        attachments = list(s.scalars(select(Attachment).where(Attachment.report_id == report.id)
                                     .order_by(Attachment.id)))
        for a in attachments:  # the report's photos belong to the case it went to
            if case is not None and a.case_id is None:
                a.case_id = case.id
        s.flush()
        s.expunge(report)
        return ReportResult(report=report, outcome=report.outcome or "pending",
                            case_number=case.number if case is not None else "",
                            ticket_id=report.ticket_id, case_id=report.case_id, inbound_id=report.inbound_id,
                            repeat=repeat, reason=reason, attachment_ids=[a.id for a in attachments])


def _how(s: Session, case: Case, ticket: Ticket, report: GridReport) -> str:
    first = s.scalar(select(Ticket.id).where(Ticket.case_id == case.id).order_by(Ticket.id).limit(1))
    if first == ticket.id:
        return "new_case"
    return "attached" if report.attach_to and case.number == report.attach_to else "linked"


# ---------------------------------------------------------------- nearby open cases


def nearby_open_cases(session: Session, *, lat: float, lng: float, category: str, scope: str,
                      radius_m: float = 200, limit: int = 5) -> list[tuple[Case, float]]:
    """Open, not merged-away cases of a compatible category within ``radius_m``, nearest first,
    as ``(case, metres)``. A bounding box on lat/lng comes first so the store can use an index."""
    taxonomy = load_taxonomy()
    if category not in taxonomy.codes:  # every case's category is canonical: nothing can match
        return []
    categories = taxonomy.members(taxonomy.group_of(category))
    m_per_lng, m_per_lat = metres_per_degree(lat)
    dlat = radius_m / m_per_lat
    dlng = radius_m / max(m_per_lng, 0.01 * M_PER_DEG_LNG_EQUATOR)
    q = (select(Case).where(Case.lat.between(lat - dlat, lat + dlat), Case.lng.between(lng - dlng, lng + dlng),
                            Case.status.not_in(FINISHED), Case.merged_into_id.is_(None),
                            Case.category.in_(categories))
         .limit(200))
    if scope:
        q = q.where(Case.grid_code.startswith(scope))
    found = []
    for case in session.scalars(q):
        if case.lat is None or case.lng is None:
            continue
        d = haversine_m(lat, lng, case.lat, case.lng)
        if d <= radius_m:
            found.append((case, d))
    found.sort(key=lambda pair: (pair[1], pair[0].id))
    return found[:limit]


# ---------------------------------------------------------------- on-site verification


def waiting_verification(ctx: HubContext, session: Session, scope: str, limit: int = 200) -> list[dict[str, Any]]:
    """RESOLVED cases in ``scope`` waiting for a grid worker's on-site verification, oldest
    first, each with the systems that asked for it (a linked system whose mapping has an action
    for VERIFIED, 数字城管 ``VERIFY`` at its 05 处置完成待核查)."""
    q = (select(Case).where(Case.status == CanonicalStatus.RESOLVED.value, Case.merged_into_id.is_(None))
         .order_by(Case.updated_at, Case.id).limit(limit))
    if scope:
        q = q.where(Case.grid_code.startswith(scope))
    rows = []
    asks: dict[str, bool] = {}  # per system, once per call (its active mapping is one query)
    for case in session.scalars(q):
        for t in case.tickets:
            if t.system_key not in asks:
                asks[t.system_key] = _asks_verification(ctx, session, t.system_key)
        asked = sorted({t.system_key for t in case.tickets if asks[t.system_key]})
        rows.append({"case": case, "asked_by": asked,
                     "status_codes": {t.system_key: t.status_code for t in case.tickets}})
    return rows


def _asks_verification(ctx: HubContext, session: Session, system_key: str) -> bool:
    from hub.services.mapping_versions import active_version, parsed
    from mappings.engine import outbound_action

    key = f"verify_asked:{system_key}"
    version = active_version(session, system_key)
    if version is None:
        return False
    cached = ctx.cache.get(key)
    if cached is None or cached[0] != version.checksum:
        cached = ctx.cache[key] = (version.checksum,
                                   outbound_action(parsed(ctx, version), CanonicalStatus.VERIFIED.value) is not None)
    return bool(cached[1])


def check_verifiable(case: Case) -> None:
    """Refuse (409) a case that cannot be verified on site now: merged away, or not RESOLVED.
    Callers ask before decoding the photos of a request: a refused one costs nothing."""
    if case.merged_into_id is not None:
        raise ReportError(f"case {case.number} was merged away; act on the case it went into", "case", 409)
    if case.status != CanonicalStatus.RESOLVED.value:
        raise ReportError(f"case {case.number} is {case.status}; only a RESOLVED case is verified on site",
                          "case", 409)


def verify_case(session: Session, case: Case, *, result: str, text: str, actor: str,
                photos: list[Photo] | None = None) -> tuple[int, list[int]]:
    """A grid worker's verification of a RESOLVED case: ``pass`` → VERIFIED, ``fail`` →
    REOPENED, every linked system told (``sync.plan_hub_change``); photos are kept as the
    case's ``verify`` attachments. Returns (effects planned, attachment ids). The caller has
    checked jurisdiction and holds the case's row lock."""
    from hub.services import sync

    if result not in ("pass", "fail"):
        raise ReportError("result must be pass or fail", "result")
    check_verifiable(case)
    checked = check_photos(list(photos or ()))
    target = CanonicalStatus.VERIFIED.value if result == "pass" else CanonicalStatus.REOPENED.value
    planned = sync.plan_hub_change(session, case, target, actor=actor, reason=text)
    attachments = _store_photos(session, checked, uploaded_by=actor[:100], purpose="verify", case_id=case.id)
    return planned, [a.id for a in attachments]


def case_photos(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The photos of a case (its reports' and its verifications', and those of the cases merged
    into it), oldest first, without their bytes."""
    merged = select(Case.id).where(Case.merged_into_id == case_id).scalar_subquery()
    rows = session.execute(select(Attachment.id, Attachment.purpose, Attachment.mime, Attachment.created_at)
                           .where((Attachment.case_id == case_id) | Attachment.case_id.in_(merged))
                           .order_by(Attachment.id))
    return [{"id": r.id, "purpose": r.purpose, "mime": r.mime, "created_at": r.created_at} for r in rows]


def attachment_in_scope(session: Session, attachment_id: int, scope: str) -> Attachment | None:
    """An attachment the caller may see: its case's (or its report's) grid is under ``scope``."""
    a = session.get(Attachment, attachment_id)
    if a is None or not scope:
        return a
    grids: list[str] = []
    if a.case_id is not None:
        case = session.get(Case, a.case_id)
        if case is not None:
            grids.append(case.grid_code)
            if case.merged_into_id is not None:  # shown on the case it went into too
                survivor = session.get(Case, case.merged_into_id)
                grids += [survivor.grid_code] if survivor is not None else []
    elif a.report_id is not None:
        report = session.get(GridReport, a.report_id)
        grids += [report.grid_code] if report is not None else []
    return a if any(grid and grid.startswith(scope) for grid in grids) else None
