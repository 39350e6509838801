"""The streaming dedup matcher of the hub, over the store.

``DedupEngine`` is registered in every process's plugin manager as the ``hub_match_case``
implementation that runs first (``tryfirst``). For a ticket without a case it resolves nothing
itself when the ticket carries an explicit cross-reference (the built-in cross-reference matcher
links those); otherwise it normalizes the ticket, fetches the blocked candidates from
``dedup_key``/``dedup_entry`` and decides with the model: link, review, recurrence or new.

After ingestion assigned the case, ``record`` stores the decision with its per-feature
contributions (``match_decision``; a ``review`` row is a pending review-queue item) and ``index``
files the ticket's match features and blocking keys, in the same transaction.

On PostgreSQL two workers could decide about two reports of the same incident at once and both
open a case; ``lock_blocks`` takes a transaction-level advisory lock per blocking key, so
tickets that could meet are decided one after the other (SQLite serializes writers anyway).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, text
from sqlalchemy.orm import Session

from hub.dedup.address import Address
from hub.dedup.blocking import blocking_window, file_keys, is_place_key, lookup_keys, place_window, within_window
from hub.dedup.model import DedupModel
from hub.dedup.normalize import NormalizedTicket, normalize
from hub.dedup.scoring import CLOSED_STATUSES, LINK, NEW, RECURRENCE, REVIEW, Decision, Member, decide
from hub.facade import CaseFinder, ExternalRef, MatchDecision, TicketView, hookimpl
from hub.models import Case, DedupEntry, DedupKey, MatchRecord, ReviewStatus, Ticket
from mappings.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SHARED_POINT_THRESHOLD = 5  # distinct addresses pinned on one metre → a centroid
MAX_MEMBERS = 400  # a pathological block (a centroid storm) is cut, newest first


def origin_system(ticket: TicketView) -> str:
    """The system type a ticket comes from: a system that relays other systems' records (``hub
    dedup eval``'s replay source, an aggregator) names the origin in the canonical field
    ``origin_system``, and the matcher's evidence (each system's pin error, same or other system)
    is about the origin."""
    origin = ticket.fields.get("origin_system")
    return str(origin) if isinstance(origin, str) and origin.strip() else ticket.system_type


def _point_key(lat: float | None, lng: float | None) -> str:
    return "" if lat is None or lng is None else f"{lat:.5f},{lng:.5f}"


def _address_json(address: Address) -> dict[str, Any]:
    return {k: v for k, v in (("district", address.district), ("street", address.street), ("road", address.road),
                               ("number", address.number), ("compound", address.compound),
                               ("building", address.building), ("level", address.level)) if v}


def _address_of(raw: dict[str, Any]) -> Address:
    return Address(raw.get("district"), raw.get("street"), raw.get("road"), raw.get("number"),
                   raw.get("compound"), raw.get("building"), raw.get("level", "none"))


def _members_statement(*case_filters: Any) -> Any:
    """Stored tickets filed under the group keys within the group's window or under the exact-place
    keys within the widest window, with their case's status, start and closure; newest first.
    Built once: per ticket only the parameters change (building a statement costs more than
    SQLite takes to run it)."""
    k = DedupKey
    ids = select(k.ticket_id).where(or_(
        and_(k.key.in_(bindparam("keys", expanding=True)),
             k.reported_at >= bindparam("since"), k.reported_at <= bindparam("until")),
        and_(k.key.in_(bindparam("place_keys", expanding=True)),
             k.reported_at >= bindparam("place_since"), k.reported_at <= bindparam("place_until")),
    )).distinct().scalar_subquery()
    e = DedupEntry
    return (select(e.ticket_id, e.system_type, e.reported_at, e.category, e.grp, e.lat, e.lng, e.location_weak,
                   e.address, e.tokens, e.phone_hash, Ticket.case_id, Case.status, Case.reported_at, Case.closed_at)
            .join(Ticket, Ticket.id == e.ticket_id)
            .join(Case, Case.id == Ticket.case_id)
            .where(e.ticket_id.in_(ids), *case_filters)
            .order_by(e.reported_at.desc()).limit(bindparam("limit")))


# plain table inserts: ingestion's hot path needs no unit-of-work bookkeeping for rows nobody edits
_INSERT_ENTRY = insert(DedupEntry.__table__)  # type: ignore[arg-type]
_INSERT_KEY = insert(DedupKey.__table__)  # type: ignore[arg-type]
_INSERT_RECORD = insert(MatchRecord.__table__).returning(MatchRecord.__table__.c.id)  # type: ignore[arg-type]
_OPEN_MEMBERS = _members_statement()
_ADDRESSES_AT_POINT = (select(DedupEntry.address_key).where(DedupEntry.point_key == bindparam("point_key"))
                       .distinct().limit(SHARED_POINT_THRESHOLD))
_CLOSED_MEMBERS = _members_statement(Case.status.in_(bindparam("closed", expanding=True)),
                                     Case.closed_at >= bindparam("since"))


class DedupEngine:
    """The dedup matcher plugin and its store index (one per process; stateless across tickets
    but for a small cache of the normalization between deciding and indexing)."""

    def __init__(self, model: DedupModel, taxonomy: Taxonomy, hasher: Callable[[str], str]) -> None:
        self.model = model
        self.taxonomy = taxonomy
        self.hasher = hasher
        self._normalized: OrderedDict[int, NormalizedTicket] = OrderedDict()
        self._undecided: dict[int, MatchDecision] = {}
        # points known to be shared centroids (a point never stops being one: no need to ask again)
        self._shared_points: OrderedDict[str, None] = OrderedDict()

    # --- plugin hook ---------------------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def hub_match_case(self, ticket: TicketView, references: Sequence[ExternalRef],
                       finder: CaseFinder) -> MatchDecision | None:
        # a rolled-back savepoint can leave state under an id the store hands out again
        self._undecided.pop(ticket.id, None)
        self._normalized.pop(ticket.id, None)
        session = getattr(finder, "session", None)
        if not isinstance(session, Session):
            return None  # a finder without a store: nothing to compare with
        if any(finder.case_of_external(r.system_type, r.external_id) is not None for r in references) \
                or finder.cases_referencing(ticket.system_type, ticket.external_id):
            return None  # an explicit link: the cross-reference matcher decides
        norm = self.normalize(session, ticket)
        self.lock_blocks(session, norm)
        keys = lookup_keys(norm)
        members = self.candidates(session, norm, keys)
        decision = decide(self.model, norm, members)
        if decision.action != LINK:
            # members of closed cases change no open case's score and never outrank a link: the
            # recurrence look-up is made only when no open case is linked
            closed = self._recurrence_candidates(session, norm, keys, {m.ticket_id for m in members})
            if closed:
                members = [*members, *closed]
                decision = decide(self.model, norm, members)
        best = decision.best
        detail = self._detail(decision)
        if decision.action == LINK and best is not None:
            return MatchDecision(case_id=best.case_id, reason=decision.reason, score=best.probability,
                                 matcher="dedup", detail=detail)
        answer = MatchDecision(case_id=0, reason=decision.reason, score=best.probability if best else 0.0,
                               matcher="dedup", detail=detail, action=decision.action,
                               candidate_case_id=best.case_id if best is not None else None)
        if decision.action == NEW:
            # "nothing similar" is no answer: later matchers (plugins) still get their say;
            # ingestion records this decision if none of them links the ticket
            self._undecided[ticket.id] = answer
            return None
        return answer

    def undecided(self, ticket_id: int) -> MatchDecision | None:
        """The "new case" decision this engine made for ``ticket_id`` but did not return."""
        return self._undecided.pop(ticket_id, None)

    def _detail(self, decision: Decision) -> dict[str, Any]:
        best = decision.best
        return {
            "action": decision.action,
            "best": best.as_dict() if best is not None else None,
            "candidates": [c.as_dict() for c in decision.candidates],
            "thresholds": {"auto": decision.thresholds[0], "review": decision.thresholds[1]},
            "blocked": decision.blocked,
            "model_version": self.model.version,
        }

    # --- normalization -------------------------------------------------------------------------

    def normalize(self, session: Session, ticket: TicketView) -> NormalizedTicket:
        fields = ticket.fields
        record = {"system": origin_system(ticket), "external_id": ticket.external_id,
                  "reported_at": fields.get("reported_at"), "category": fields.get("category"),
                  "category_code": fields.get("category_code"), "title": fields.get("title"),
                  "description": fields.get("description"), "address": fields.get("address"),
                  "lat": fields.get("lat"), "lng": fields.get("lng"), "datum": "wgs84"}
        norm = normalize(record, taxonomy=self.taxonomy, hasher=self.hasher)
        row = session.get(Ticket, ticket.id) if ticket.id else None
        if row is not None and row.reporter_phone_hash:
            norm = replace(norm, phone_hash=row.reporter_phone_hash)
        if norm.lat is not None and norm.location_weak != "shared_point" and self._shared_point(session, norm):
            norm = replace(norm, location_weak="shared_point")
        if ticket.id:
            self._normalized[ticket.id] = norm
            while len(self._normalized) > 256:
                self._normalized.popitem(last=False)
        return norm

    def _shared_point(self, session: Session, norm: NormalizedTicket) -> bool:
        """A point where tickets with ≥ 5 different addresses were pinned: a district or street
        centroid that the department system stores when it knows no better."""
        key = _point_key(norm.lat, norm.lng)
        if key in self._shared_points:
            return True
        addresses = set(session.connection().scalars(_ADDRESSES_AT_POINT, {"point_key": key}))
        addresses.add(norm.address.key or f"{norm.system}:{norm.external_id}")
        if len(addresses) < SHARED_POINT_THRESHOLD:
            return False
        self._shared_points[key] = None
        while len(self._shared_points) > 10_000:
            self._shared_points.popitem(last=False)
        return True

    # --- blocking ------------------------------------------------------------------------------

    def keys_of(self, norm: NormalizedTicket) -> list[str]:
        """The keys a ticket is filed under (``dedup_key``; rules in ``hub.dedup.blocking``)."""
        return file_keys(norm)

    def lock_blocks(self, session: Session, norm: NormalizedTicket) -> None:
        """PostgreSQL: serialize the decisions of tickets that share a blocking key (fixed order,
        so two workers cannot deadlock); released at commit."""
        bind = session.get_bind()
        if bind.dialect.name != "postgresql":
            return
        keys = set(file_keys(norm)) | set(lookup_keys(norm))
        locks = sorted({int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big", signed=True) for k in keys})
        if locks:  # one round trip; the ordered sub-select keeps the fixed order
            session.execute(text("SELECT count(pg_advisory_xact_lock(k)) FROM "
                                 "(SELECT unnest(CAST(:locks AS bigint[])) AS k ORDER BY 1) AS ordered"),
                            {"locks": locks})

    def candidates(self, session: Session, norm: NormalizedTicket, keys: list[str]) -> list[Member]:
        """Members blocked with ``norm`` under ``keys`` (its ``lookup_keys``) within its window (older
        members of cases closed lately: ``_recurrence_candidates``)."""
        if not keys:
            return []
        at = norm.reported_at
        group_window, wide = blocking_window(self.model, self.taxonomy, norm.group), place_window(self.model)
        params = {"keys": [k for k in keys if not is_place_key(k)], "since": at - group_window,
                  "until": at + group_window, "place_keys": [k for k in keys if is_place_key(k)],
                  "place_since": at - wide, "place_until": at + wide, "limit": MAX_MEMBERS}
        return [m for m in self._members(session, _OPEN_MEMBERS, params) if within_window(self.model, norm, m.ticket)]

    def _recurrence_candidates(self, session: Session, norm: NormalizedTicket, keys: list[str],
                               seen: set[int]) -> list[Member]:
        """Members of cases closed within ``recurrence_days`` at the same blocking keys, whatever
        the category's window: a new report there is a recurrence, linked but not merged."""
        if not keys:
            return []
        since = norm.reported_at - timedelta(days=self.model.recurrence_days)
        params = {"keys": keys, "since": since, "until": norm.reported_at, "place_keys": [],
                  "place_since": since, "place_until": norm.reported_at, "limit": MAX_MEMBERS // 4,
                  "closed": sorted(CLOSED_STATUSES)}
        return [m for m in self._members(session, _CLOSED_MEMBERS, params) if m.ticket_id not in seen]

    def _members(self, session: Session, statement: Any, params: dict[str, Any]) -> list[Member]:
        # Core on the transaction's connection: the rows asked about are flushed already (a
        # ticket is flushed before it is matched), so no autoflush and no ORM layer is needed
        return [Member(row[0], row[11], self._entry_ticket(row), row[12], row[13], row[14])
                for row in session.connection().execute(statement, params) if row[11] is not None]

    @staticmethod
    def _entry_ticket(row: Any) -> NormalizedTicket:
        (_, system, reported_at, category, group, lat, lng, weak, address, tokens, phone_hash) = row[:11]
        return NormalizedTicket(
            system=system, external_id="", reported_at=reported_at, category=category, group=group,
            lat=lat, lng=lng, location_weak=weak or None, address=_address_of(address or {}),
            tokens=frozenset(tokens.split()), phone_hash=phone_hash or None, refs=())

    # --- after the case is known ---------------------------------------------------------------

    def record(self, session: Session, ticket: Ticket, case: Case, decision: MatchDecision) -> int:
        """Store a matcher's decision (any matcher's) on the ticket now in ``case``; returns the
        ``match_decision`` id. A plain insert: nothing edits the row in this transaction."""
        detail = dict(decision.detail)
        best = detail.get("best") or {}
        action = decision.action if decision.matcher == "dedup" else "link"
        if ticket.id is None or case.id is None:
            session.flush()
        row_id: int = session.connection().execute(_INSERT_RECORD, {
            "ticket_id": ticket.id, "case_id": case.id,
            "candidate_case_id": decision.candidate_case_id if action != LINK else decision.case_id,
            "action": action, "matcher": decision.matcher or "unknown", "score": best.get("score"),
            "probability": decision.score, "member_ticket_id": best.get("member_ticket_id"),
            "contributions": list(best.get("contributions") or []),
            "candidates": list(detail.get("candidates") or []), "thresholds": dict(detail.get("thresholds") or {}),
            "reason": decision.reason[:500], "model_version": str(detail.get("model_version") or ""),
            "review_status": ReviewStatus.PENDING if action == REVIEW else ReviewStatus.NONE}).scalar_one()
        if action == RECURRENCE and decision.candidate_case_id:
            case.recurrence_of_id = decision.candidate_case_id
        return row_id

    def index(self, session: Session, ticket: Ticket, view: TicketView, *, new: bool = False) -> None:
        """File (or re-file, after a newer snapshot) the ticket's features and blocking keys.
        ``new``: the ticket was created in this transaction, so nothing is filed yet (no look-up)."""
        cached = self._normalized.pop(ticket.id, None)
        if cached is None or (cached.system, cached.external_id) != (origin_system(view), ticket.external_id):
            cached = None
        norm = cached or self.normalize(session, view)
        self._normalized.pop(ticket.id, None)
        connection = session.connection()  # plain rows: no unit of work, no autoflush
        if not new:
            connection.execute(delete(DedupKey).where(DedupKey.ticket_id == ticket.id))
            connection.execute(delete(DedupEntry).where(DedupEntry.ticket_id == ticket.id))
        connection.execute(_INSERT_ENTRY, [{
            "ticket_id": ticket.id, "system_type": norm.system, "category": norm.category, "grp": norm.group,
            "reported_at": norm.reported_at, "lat": norm.lat, "lng": norm.lng,
            "location_weak": norm.location_weak or "", "address": _address_json(norm.address),
            "tokens": " ".join(sorted(norm.tokens))[:4000], "phone_hash": norm.phone_hash or "",
            "point_key": _point_key(norm.lat, norm.lng),
            "address_key": (norm.address.key or f"{norm.system}:{norm.external_id}")[:120]}])
        keys = [{"ticket_id": ticket.id, "key": k[:160], "reported_at": norm.reported_at} for k in file_keys(norm)]
        if keys:
            connection.execute(_INSERT_KEY, keys)

    def needs_reindex(self, changes: dict[str, Any]) -> bool:
        return bool(set(changes) & {"category", "lat", "lng", "address", "title", "description", "reported_at"})

