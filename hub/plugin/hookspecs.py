"""Every hook GridHub calls, in one module. Prefix ``hub_``; the docstring is the contract.

Each hook is documented in docs/plugins.md under a heading that is its exact name, and
tested by a ``test_hook_<name>`` test (tests/unit/test_hookspecs_documented.py fails otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pluggy

from hub.facade import CaseFinder, CaseView, ExternalRef, MatchDecision, SystemTypeRegistry, TicketView

hookspec = pluggy.HookspecMarker("gridhub")


@hookspec
def hub_register_system_types(registry: SystemTypeRegistry) -> None:
    """Register the system types this plugin can connect.

    :param registry: call ``registry.register(SystemType(...))`` once per type. A key
        registered twice is an error at start-up.
    """


@hookspec
def hub_register_transforms(register: Any) -> None:
    """Add named transforms to the mapping language.

    :param register: ``register(name, fn, arg_schema=None)``; ``fn(value, **args)`` returns
        the transformed value or raises ``MappingError``. Names must be unique.
    """


@hookspec
def hub_ticket_references(ticket: TicketView) -> Sequence[ExternalRef] | None:
    """Explicit cross-references a ticket carries to records of other systems.

    Called for every ticket after mapping. Return the references it carries (a 数字城管 case
    of ``source`` 03 carries the 12345 ``gdbh`` in ``externalNo``), or None for tickets of
    other system types. References are stored and used by matchers in both directions.
    """


@hookspec(firstresult=True)
def hub_match_case(ticket: TicketView, references: Sequence[ExternalRef],
                   finder: CaseFinder) -> MatchDecision | None:
    """Decide which existing case a ticket without a case belongs to.

    The first non-None answer wins (dedup plugs in here, ahead of the built-in
    cross-reference matcher). Return None to let the next matcher decide; when none
    decides, the ticket opens a new case.

    :param ticket: the freshly mapped ticket (no case yet).
    :param references: the ticket's explicit references (``hub_ticket_references``).
    :param finder: read-only look-ups over the store.
    """


@hookspec
def hub_ticket_ingested(ticket: TicketView, case: CaseView, created_case: bool,
                        changes: Mapping[str, Any]) -> None:
    """Notification after a ticket snapshot was applied and committed.

    :param created_case: True when this ticket opened a new case.
    :param changes: canonical fields that changed, ``{field: [old, new]}``.
    Must not raise; exceptions are logged and ignored.
    """


@hookspec
def hub_case_linked(case: CaseView, ticket: TicketView, decision: MatchDecision) -> None:
    """Notification after a ticket was linked to an existing case by a matcher.

    Must not raise; exceptions are logged and ignored.
    """
