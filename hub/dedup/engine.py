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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from hub.dedup.address import Address
from hub.dedup.blocking import blocking_window, file_keys, lookup_keys, within_window
from hub.dedup.model import DedupModel
from hub.dedup.normalize import NormalizedTicket, normalize
from hub.dedup.scoring import CLOSED_STATUSES, LINK, NEW, RECURRENCE, REVIEW, Decision, Member, decide
from hub.facade import CaseFinder, ExternalRef, MatchDecision, TicketView, hookimpl
from hub.models import Case, DedupEntry, DedupKey, MatchRecord, ReviewStatus, Ticket
from mappings.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SHARED_POINT_THRESHOLD = 5  # distinct addresses pinned on one metre → a centroid
MAX_MEMBERS = 400  # a pathological block (a centroid storm) is cut, newest first


def _point_key(lat: float | None, lng: float | None) -> str:
    return "" if lat is None or lng is None else f"{lat:.5f},{lng:.5f}"


def _address_json(address: Address) -> dict[str, Any]:
    return {k: v for k, v in (("district", address.district), ("street", address.street), ("road", address.road),
                               ("number", address.number), ("compound", address.compound),
                               ("building", address.building), ("level", address.level)) if v}


def _address_of(raw: dict[str, Any]) -> Address:
    return Address(raw.get("district"), raw.get("street"), raw.get("road"), raw.get("number"),
                   raw.get("compound"), raw.get("building"), raw.get("level", "none"))


class DedupEngine:
    """The dedup matcher plugin and its store index (one per process; stateless across tickets
    but for a small cache of the normalization between deciding and indexing)."""

    def __init__(self, model: DedupModel, taxonomy: Taxonomy, hasher: Callable[[str], str]) -> None:
        self.model = model
        self.taxonomy = taxonomy
        self.hasher = hasher
        self._normalized: OrderedDict[int, NormalizedTicket] = OrderedDict()
        self._undecided: dict[int, MatchDecision] = {}

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
        members = self.candidates(session, norm)
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
        record = {"system": ticket.system_type, "external_id": ticket.external_id,
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
        addresses = set(session.scalars(select(DedupEntry.address_key).where(DedupEntry.point_key == key)
                                        .distinct().limit(SHARED_POINT_THRESHOLD)))
        addresses.add(norm.address.key or f"{norm.system}:{norm.external_id}")
        return len(addresses) >= SHARED_POINT_THRESHOLD

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
        for lock in sorted({int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big", signed=True)
                            for k in keys}):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})

    def candidates(self, session: Session, norm: NormalizedTicket) -> list[Member]:
        keys = lookup_keys(norm)
        if not keys:
            return []
        window = blocking_window(self.model, self.taxonomy, norm.group)
        members = [m for m in self._members(session, keys, norm.reported_at - window, norm.reported_at + window,
                                            MAX_MEMBERS)
                   if within_window(self.model, norm, m.ticket)]
        members.extend(self._recurrence_candidates(session, norm, keys, {m.ticket_id for m in members}))
        return members

    def _recurrence_candidates(self, session: Session, norm: NormalizedTicket, keys: list[str],
                               seen: set[int]) -> list[Member]:
        """Members of cases closed within ``recurrence_days`` at the same blocking keys, whatever
        the category's window: a new report there is a recurrence, linked but not merged."""
        since = norm.reported_at - timedelta(days=self.model.recurrence_days)
        closed = (Case.status.in_(sorted(CLOSED_STATUSES)), Case.closed_at >= since)
        return [m for m in self._members(session, keys, since, norm.reported_at, MAX_MEMBERS // 4, *closed)
                if m.ticket_id not in seen]

    def _members(self, session: Session, keys: list[str], since: datetime, until: datetime, limit: int,
                 *case_filters: Any) -> list[Member]:
        """Stored tickets filed under ``keys`` between ``since`` and ``until``, with their case's
        status, start and closure; newest first, at most ``limit``."""
        ids = select(DedupKey.ticket_id).where(
            DedupKey.key.in_(keys), DedupKey.reported_at >= since,
            DedupKey.reported_at <= until).distinct().scalar_subquery()
        rows = session.execute(
            select(DedupEntry, Ticket.case_id, Case.status, Case.reported_at, Case.closed_at)
            .join(Ticket, Ticket.id == DedupEntry.ticket_id)
            .join(Case, Case.id == Ticket.case_id)
            .where(DedupEntry.ticket_id.in_(ids), *case_filters)
            .order_by(DedupEntry.reported_at.desc()).limit(limit))
        return [Member(entry.ticket_id, case_id, self._entry_ticket(entry), status, started, closed_at)
                for entry, case_id, status, started, closed_at in rows if case_id is not None]

    @staticmethod
    def _entry_ticket(entry: DedupEntry) -> NormalizedTicket:
        return NormalizedTicket(
            system=entry.system_type, external_id="", reported_at=entry.reported_at, category=entry.category,
            group=entry.grp, lat=entry.lat, lng=entry.lng, location_weak=entry.location_weak or None,
            address=_address_of(entry.address or {}), tokens=frozenset(entry.tokens.split()),
            phone_hash=entry.phone_hash or None, refs=())

    # --- after the case is known ---------------------------------------------------------------

    def record(self, session: Session, ticket: Ticket, case: Case, decision: MatchDecision) -> MatchRecord:
        """Store a matcher's decision (any matcher's) on the ticket now in ``case``."""
        detail = dict(decision.detail)
        best = detail.get("best") or {}
        action = decision.action if decision.matcher == "dedup" else "link"
        row = MatchRecord(
            ticket_id=ticket.id, case_id=case.id, candidate_case_id=decision.candidate_case_id
            if action != LINK else decision.case_id, action=action, matcher=decision.matcher or "unknown",
            score=best.get("score"), probability=decision.score, member_ticket_id=best.get("member_ticket_id"),
            contributions=list(best.get("contributions") or []), candidates=list(detail.get("candidates") or []),
            thresholds=dict(detail.get("thresholds") or {}), reason=decision.reason[:500],
            model_version=str(detail.get("model_version") or ""),
            review_status=ReviewStatus.PENDING if action == REVIEW else ReviewStatus.NONE)
        session.add(row)
        if action == RECURRENCE and decision.candidate_case_id:
            case.recurrence_of_id = decision.candidate_case_id
        return row

    def index(self, session: Session, ticket: Ticket, view: TicketView) -> None:
        """File (or re-file, after a newer snapshot) the ticket's features and blocking keys."""
        cached = self._normalized.pop(ticket.id, None)
        if cached is None or (cached.system, cached.external_id) != (ticket.system_type, ticket.external_id):
            cached = None
        norm = cached or self.normalize(session, view)
        self._normalized.pop(ticket.id, None)
        entry = session.get(DedupEntry, ticket.id)
        if entry is None:
            entry = DedupEntry(ticket_id=ticket.id)
            session.add(entry)
        else:
            session.execute(delete(DedupKey).where(DedupKey.ticket_id == ticket.id))
        entry.system_type = norm.system
        entry.category, entry.grp, entry.reported_at = norm.category, norm.group, norm.reported_at
        entry.lat, entry.lng, entry.location_weak = norm.lat, norm.lng, norm.location_weak or ""
        entry.address = _address_json(norm.address)
        entry.tokens = " ".join(sorted(norm.tokens))[:4000]
        entry.phone_hash = norm.phone_hash or ""
        entry.point_key = _point_key(norm.lat, norm.lng)
        entry.address_key = (norm.address.key or f"{norm.system}:{norm.external_id}")[:120]
        session.add_all([DedupKey(ticket_id=ticket.id, key=k[:160], reported_at=norm.reported_at)
                         for k in file_keys(norm)])

    def needs_reindex(self, changes: dict[str, Any]) -> bool:
        return bool(set(changes) & {"category", "lat", "lng", "address", "title", "description", "reported_at"})

