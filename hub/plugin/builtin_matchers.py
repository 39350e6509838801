"""The built-in matcher: explicit cross-references link tickets to one case.

Real dedup (issue: cross-system deduplication) registers its own ``hub_match_case`` that runs
first; this one stays as the fallback for explicit links.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.facade import CaseFinder, ExternalRef, MatchDecision, TicketView, hookimpl


@hookimpl(trylast=True)
def hub_match_case(ticket: TicketView, references: Sequence[ExternalRef],
                   finder: CaseFinder) -> MatchDecision | None:
    # This ticket points at a record we already hold (数字城管 source 03 → 12345 gdbh).
    for ref in references:
        case_id = finder.case_of_external(ref.system_type, ref.external_id)
        if case_id is not None:
            return MatchDecision(case_id=case_id, matcher="cross_reference", score=1.0,
                                 reason=f"explicit reference to {ref.system_type} {ref.external_id}",
                                 detail={"relation": ref.relation})
    # Another ticket already points at this one (it arrived first).
    for case_id in finder.cases_referencing(ticket.system_type, ticket.external_id):
        return MatchDecision(case_id=case_id, matcher="cross_reference", score=1.0,
                             reason=f"referenced by a ticket of case {case_id}")
    return None
