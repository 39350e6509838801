"""What a person may see of a stored inbound payload: the raw text with the reporter masked.

One rule for the API (``GET /api/v1/inbound-events/{id}``) and the console's quarantine page:
the linked ticket's reporter values, the values the system's active mapping reads into reporter
fields (a quarantined payload has no ticket yet, but its mapping still finds the name and phone),
and phone numbers anywhere (``redact_text``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.context import HubContext
from hub.models import InboundEvent, System, Ticket
from hub.services import mapping_versions
from hub.services.redact import redact_text
from mappings import preview
from mappings.canonical import PII_FIELDS


def masked_payload(ctx: HubContext, session: Session, ev: InboundEvent) -> str:
    known = _reporter_in_payload(ctx, session, ev)
    if ev.ticket_id is not None:
        ticket = session.get(Ticket, ev.ticket_id)
        reporter = ctx.box.open_json(ticket.reporter_encrypted) if ticket else None
        known += [str(v) for v in (reporter or {}).values()]
    return redact_text(ev.payload, known)


def _reporter_in_payload(ctx: HubContext, session: Session, ev: InboundEvent) -> list[str]:
    system = session.scalar(select(System).where(System.key == ev.system_key))
    stype = ctx.registry.get(system.plugin) if system is not None and system.plugin in ctx.registry else None
    active = mapping_versions.active_version(session, ev.system_key)
    if stype is None or active is None:
        return []
    try:
        payload = stype.decode(ev.payload)
    except ValueError:  # unreadable: the phone pattern is all that applies
        return []
    rows = preview(mapping_versions.parsed(ctx, active), payload)  # never raises
    return [str(v) for r in rows if r.field in PII_FIELDS for v in (r.value, r.raw_value) if v]


__all__ = ["masked_payload"]
