"""One test per hook (test_hookspecs_documented.py requires a test_hook_<name> for each)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import HubConfig
from hub.facade import (
    CaseFinder,
    CaseView,
    ExternalRef,
    HubError,
    MatchDecision,
    SystemType,
    SystemTypeRegistry,
    TicketView,
    hookimpl,
)
from hub.models import Case, Ticket
from hub.plugin.manager import build_plugin_manager, build_registry
from tests.support.fake_system import MAPPING, FakeConnector, FakePlugin, record
from tests.unit.hub.conftest import ingest, make_fake_ctx


class Recorder:
    def __init__(self) -> None:
        self.ingested: list[tuple[TicketView, CaseView, bool, dict[str, Any]]] = []
        self.linked: list[tuple[CaseView, TicketView, MatchDecision]] = []

    @hookimpl
    def hub_ticket_ingested(self, ticket: TicketView, case: CaseView, created_case: bool,
                            changes: dict[str, Any]) -> None:
        self.ingested.append((ticket, case, created_case, dict(changes)))

    @hookimpl
    def hub_case_linked(self, case: CaseView, ticket: TicketView, decision: MatchDecision) -> None:
        self.linked.append((case, ticket, decision))


def test_hook_hub_register_system_types() -> None:
    pm = build_plugin_manager(blocked=_missing_plugins(), extra=[FakePlugin()])
    registry = build_registry(pm)
    assert "fakesys" in registry and registry.get("fakesys").title == "测试系统"
    assert registry.owner("fakesys") != ""

    class Twice:
        @hookimpl
        def hub_register_system_types(self, registry: SystemTypeRegistry) -> None:
            registry.register(SystemType(key="fakesys", title="again", connector_factory=FakeConnector,
                                         default_mapping=MAPPING))

    with pytest.raises(HubError, match="registered twice"):
        build_registry(build_plugin_manager(blocked=_missing_plugins(), extra=[FakePlugin(), Twice()]))


def test_hook_hub_register_transforms(hub_config: HubConfig) -> None:
    def shout(value: Any, **_: Any) -> Any:
        return value.upper() + "！" if isinstance(value, str) else value

    class Shouter:
        @hookimpl
        def hub_register_transforms(self, register: Any) -> None:
            register("test_shout", shout)

    ctx = make_fake_ctx(hub_config, Shouter())
    try:
        from hub.services.mapping_versions import create_version

        doc = MAPPING.read_text(encoding="utf-8").replace("transforms: [clean_text]}\n  description",
                                                          "transforms: [test_shout]}\n  description", 1)
        with ctx.db.session() as s:
            create_version(s, "fake", doc, activate=True)
        ingest(ctx, record("T1", title="abc"))
        with ctx.db.read_session() as s:
            assert s.scalars(select(Ticket.title)).one() == "ABC！"
    finally:
        ctx.close()


def test_hook_hub_ticket_references(hub_config: HubConfig) -> None:
    ctx = make_fake_ctx(hub_config)
    try:
        ingest(ctx, record("R1", ref="M1"), record("M1"))
        with ctx.db.read_session() as s:
            tickets = {t.external_id: t for t in s.scalars(select(Ticket))}
            assert [(r.ref_system_type, r.ref_external_id) for r in tickets["R1"].references] == [("fakesys", "M1")]
            assert tickets["R1"].case_id == tickets["M1"].case_id
    finally:
        ctx.close()


def test_hook_hub_match_case(hub_config: HubConfig) -> None:
    class SameTitle:
        """A toy matcher: the same title means the same incident."""

        @hookimpl
        def hub_match_case(self, ticket: TicketView, references: Sequence[ExternalRef],
                           finder: CaseFinder) -> MatchDecision | None:
            if ticket.fields.get("title") == "同一件事" and ticket.external_id != "S1":
                case_id = finder.case_of_external("fakesys", "S1")
                if case_id is not None:
                    return MatchDecision(case_id=case_id, reason="same title", score=0.9, matcher="toy")
            return None

    recorder = Recorder()
    ctx = make_fake_ctx(hub_config, SameTitle(), recorder)
    try:
        ingest(ctx, record("S1", title="同一件事"), record("S2", title="同一件事"), record("S3", title="别的"))
        with ctx.db.read_session() as s:
            cases = {t.external_id: t.case_id for t in s.scalars(select(Ticket))}
            assert cases["S1"] == cases["S2"] != cases["S3"]
            case = s.get(Case, cases["S1"])
            assert case is not None
            linked = [e for e in case.events if e.kind == "ticket_linked"]
            assert linked[0].detail["matcher"] == "toy" and linked[0].detail["score"] == 0.9
        assert [d.matcher for _, _, d in recorder.linked] == ["toy"]
    finally:
        ctx.close()


def test_hook_hub_ticket_ingested(hub_config: HubConfig) -> None:
    recorder = Recorder()
    ctx = make_fake_ctx(hub_config, recorder)
    try:
        ingest(ctx, record("I1"))
        ingest(ctx, record("I1", v=2, st="DONE"))
        ingest(ctx, record("I1", v=1))  # stale: no notification
        assert [(t.external_id, created) for t, _, created, _ in recorder.ingested] == [("I1", True), ("I1", False)]
        changes = recorder.ingested[1][3]
        assert changes["status"] == ["REPORTED", "RESOLVED"] and changes["status_code"] == ["NEW", "DONE"]
        assert recorder.ingested[1][1].status == "RESOLVED"
    finally:
        ctx.close()


def test_hook_hub_case_linked(hub_config: HubConfig) -> None:
    recorder = Recorder()
    ctx = make_fake_ctx(hub_config, recorder)
    try:
        ingest(ctx, record("M1"), record("R1", ref="M1"))
        assert len(recorder.linked) == 1
        case, ticket, decision = recorder.linked[0]
        assert ticket.external_id == "R1" and decision.matcher == "cross_reference" and case.ticket_count == 2
    finally:
        ctx.close()


def test_a_failing_notification_hook_does_not_break_ingest(hub_config: HubConfig) -> None:
    class Broken:
        @hookimpl
        def hub_ticket_ingested(self, **_: Any) -> None:
            raise RuntimeError("boom")

    ctx = make_fake_ctx(hub_config, Broken())
    try:
        ingest(ctx, record("B1"))
        with ctx.db.read_session() as s:
            assert s.scalars(select(Ticket.status)).one() == "REPORTED"
    finally:
        ctx.close()


def test_misspelled_hook_fails_start_up() -> None:
    import pluggy

    class Typo:
        @hookimpl
        def hub_ticket_ingestd(self) -> None: ...

    with pytest.raises(pluggy.PluginValidationError):
        build_plugin_manager(blocked=_missing_plugins(), extra=[Typo()])


def _missing_plugins() -> tuple[str, ...]:
    import os

    return tuple(p for p in os.environ.get("GRIDHUB_BLOCKED_PLUGINS", "").split(",") if p)
